"""``python -m benchmarks``: runyard vs MLflow vs trackio / FastTrackML, side by side.

The default run (``--suite core``) is the embedded suite, then the server suite on SQLite
and on PostgreSQL, then the model-serving suite. The embedded suite (``--suite embedded``)
runs every workload of :mod:`benchmarks.workloads` against runyard (current interpreter) and
MLflow (its own venv, sync and async logging for the ``log_metric`` loop), the ``log`` loop
against trackio (its own venv). The server suite (``--servers``) runs
:mod:`benchmarks.server_suite` against ``runyard server``, ``mlflow server`` and
FastTrackML. The serving suite (``--suite serving``) runs :mod:`benchmarks.serving` against
``runyard models serve`` and ``mlflow models serve``. The autolog suite (``--suite
autolog``) runs :mod:`benchmarks.autolog`: the overhead of runyard's and MLflow's
autologging on LightGBM, XGBoost and Lightning training. The UI suite (``--suite ui``) runs
:mod:`benchmarks.ui`: the web UI's pages at 100k runs in headless Chromium. The auth suite
(``--suite auth``) runs :mod:`benchmarks.auth`: ``runs/get`` and ``log-batch`` throughput
with authentication off and on, runyard and MLflow's basic-auth app. The soak suite
(``--suite soak``) runs :mod:`benchmarks.soak`: the server's memory under minutes of mixed
traffic. ``--smoke`` runs every core suite at tiny sizes, runyard only
(:mod:`benchmarks.smoke`, for CI). Each prints a Markdown table and writes it into its own
section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import venvs
from benchmarks.auth import AUTH_END_MARKER, AUTH_START_MARKER, run_auth_suite
from benchmarks.auth import render as render_auth
from benchmarks.autolog import AUTOLOG_END_MARKER, AUTOLOG_START_MARKER, run_autolog_suite
from benchmarks.autolog import render as render_autolog
from benchmarks.report import END_MARKER, START_MARKER, Collected, render_report, write_results
from benchmarks.runner import (
    SCALE_GROUP_SCRIPTS,
    STARTUP_GROUP_SCRIPTS,
    TRACKIO_SCRIPT,
    WORKLOADS_SCRIPT,
    Job,
    describe,
    log,
    run_job,
)
from benchmarks.server_report import (
    SERVER_END_MARKER,
    SERVER_PG_END_MARKER,
    SERVER_PG_START_MARKER,
    SERVER_START_MARKER,
    SERVERS,
    render_server_report,
)
from benchmarks.server_suite import SuiteOptions, run_server_suite
from benchmarks.serving import SERVING_END_MARKER, SERVING_START_MARKER, run_serving_suite
from benchmarks.serving import render as render_serving
from benchmarks.smoke import run_smoke
from benchmarks.soak import SOAK_END_MARKER, SOAK_START_MARKER, run_soak_suite, sizes_for
from benchmarks.soak import render as render_soak
from benchmarks.ui import UI_END_MARKER, UI_START_MARKER, run_ui_suite
from benchmarks.ui import render as render_ui
from benchmarks.workloads import FULL, GROUPS, QUICK, Sizes

TOOLS = ("runyard", "mlflow", "trackio")
SUITES = ("core", "embedded", "server", "serving", "autolog", "ui", "auth", "soak", "all")
#: What ``core`` (the default) and ``all`` run besides their own suites.
CORE_SUITES = ("embedded", "server", "serving")
BACKENDS = ("sqlite", "postgres", "both")
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI smoke run: every core suite at tiny sizes, runyard only, no venvs "
        "(benchmarks/smoke.py); writes nothing unless --output is given",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        help="soak suite: minutes of traffic against runyard (default 10, 1 with --quick)",
    )
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="core",
        help="core (default): the embedded libraries, then the tracking servers on SQLite and "
        "on PostgreSQL, then model serving; or one suite: embedded, server (tracking "
        "servers, SQLite unless --backend), serving (benchmarks/serving.py), autolog "
        "(benchmarks/autolog.py), ui (the web UI in Chromium, benchmarks/ui.py), auth "
        "(benchmarks/auth.py), soak (benchmarks/soak.py); or all: core and every other "
        "suite",
    )
    parser.add_argument(
        "--servers",
        dest="suite",
        action="store_const",
        const="server",
        help="shorthand for --suite server",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted({*TOOLS, *SERVERS}),
        help="benchmark only this library or server (repeatable); default: all; "
        "trackio applies to the embedded suite, fasttrackml to the server suite",
    )
    parser.add_argument(
        "--mlflow-workers",
        default="1",
        help="server suite: `mlflow server --workers` value, or 'default' to leave "
        "MLflow's own default (4) (default: 1)",
    )
    parser.add_argument(
        "--http-client",
        choices=("stdlib", "httpx"),
        default="stdlib",
        help="server suite: HTTP client of the raw workloads (default: stdlib, whose "
        "per-request cost is a fraction of httpx's; see benchmarks/README.md)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="server suite: the servers' store: a SQLite file, a database of one PostgreSQL "
        "server started for the run (needs initdb; written to its own section, 'Tracking "
        "servers on PostgreSQL'), or both, one after the other (default: sqlite for "
        "--suite server, both for core and all)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help=f"never create or install into the venvs under ${venvs.VENVS_ENV}",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="Markdown file to update (default: benchmarks/RESULTS.md for full runs; "
        "quick runs write nothing unless this is given)",
    )
    return parser.parse_args(argv)


def interpreters(tools: list[str], install: bool, data: Collected) -> dict[str, Path]:
    """The Python interpreter for each tool that can run; others are marked unavailable."""
    providers: dict[str, Callable[[], Path]] = {
        "runyard": lambda: venvs.current_python_with("runyard"),
        "mlflow": lambda: venvs.ensure_venv(venvs.MLFLOW, install=install),
        "trackio": lambda: venvs.ensure_venv(venvs.TRACKIO, install=install),
    }
    found: dict[str, Path] = {}
    for tool in tools:
        try:
            found[tool] = providers[tool]()
        except venvs.EnvironmentUnavailable as exc:
            log(f"[{tool}] unavailable: {exc}")
            data.unavailable(tool, str(exc))
    return found


def plan(pythons: dict[str, Path], sizes: Sizes, quick: bool) -> list[Job]:
    """All jobs, interleaved by workload so that compared numbers run close in time.

    Within a workload the fast libraries go first, before MLflow's long runs leave
    the machine busy writing back to disk. The start-up group goes first of all, while the
    machine is quiet; the scale groups (100k runs, a 1M-point history) last.
    """
    size_args = ("--quick",) if quick else ()

    def runyard_and_mlflow(scripts: dict[str, Path]) -> list[Job]:
        return [
            Job(
                lib,
                group,
                pythons[lib],
                (str(script), "--json", "--group", group, *size_args, "--lib", lib),
            )
            for group, script in scripts.items()
            for lib in ("runyard", "mlflow")
            if lib in pythons
        ]

    jobs: list[Job] = runyard_and_mlflow(STARTUP_GROUP_SCRIPTS)
    for group in GROUPS:
        args = (str(WORKLOADS_SCRIPT), "--json", "--group", group, *size_args)
        if "runyard" in pythons:
            jobs.append(Job("runyard", group, pythons["runyard"], (*args, "--lib", "runyard")))
        if group == "log_metric" and "trackio" in pythons:
            points = ("--points", str(sizes.log_metric_points))
            jobs.append(Job("trackio", group, pythons["trackio"], (str(TRACKIO_SCRIPT), *points)))
        if "mlflow" in pythons:
            mlflow_args = (*args, "--lib", "mlflow")
            jobs.append(Job("mlflow", group, pythons["mlflow"], mlflow_args))
            if group == "log_metric":
                async_env = {"MLFLOW_ENABLE_ASYNC_LOGGING": "true"}
                jobs.append(Job("mlflow_async", group, pythons["mlflow"], mlflow_args, async_env))
    return jobs + runyard_and_mlflow(SCALE_GROUP_SCRIPTS)


def run_embedded(args: argparse.Namespace, command: str) -> tuple[str, bool]:
    """The embedded-library suite; its Markdown block and whether all went well."""
    tools = [tool for tool in TOOLS if tool in (args.only or TOOLS)]
    sizes = QUICK if args.quick else FULL
    data = Collected(not_run={tool for tool in TOOLS if tool not in tools})
    if "mlflow" in data.not_run:
        data.not_run.add("mlflow_async")
    pythons = interpreters(tools, install=not args.no_install, data=data)
    for job in plan(pythons, sizes, args.quick):
        log(f"[{job.column}] {job.group}: running…")
        outcome = run_job(job)
        data.add(outcome)
        log(describe(outcome))
        if outcome.error:
            log(f"{outcome.stderr_tail}\n{outcome.error}")
    return render_report(data, sizes, quick=args.quick, command=command), not data.problems


def run_servers(args: argparse.Namespace, command: str, backend: str) -> tuple[str, bool]:
    """The tracking-server suite on ``backend``; its Markdown block and whether all went well."""
    options = SuiteOptions(
        servers=tuple(s for s in SERVERS if s in (args.only or SERVERS)),
        quick=args.quick,
        install=not args.no_install,
        mlflow_workers=None if args.mlflow_workers == "default" else args.mlflow_workers,
        http_client=args.http_client,
        backend=backend,
    )
    data = run_server_suite(options)
    block = render_server_report(
        data, options.sizes, quick=args.quick, command=command, http_client=args.http_client
    )
    return block, not data.problems


def run_serving(args: argparse.Namespace, command: str, only: set[str]) -> tuple[str, bool]:
    """The model-serving suite; its Markdown block and whether all went well."""
    results, problems, sizes = run_serving_suite(
        only & {"runyard", "mlflow"}, quick=args.quick, install=not args.no_install
    )
    block = render_serving(results, problems, sizes, quick=args.quick, command=command)
    return block, not problems


def run_autolog(args: argparse.Namespace, command: str, only: set[str]) -> tuple[str, bool]:
    """The autologging-overhead suite; its Markdown block and whether all went well."""
    results, problems, sizes = run_autolog_suite(
        only & {"runyard", "mlflow"}, quick=args.quick, install=not args.no_install
    )
    block = render_autolog(results, problems, sizes, quick=args.quick, command=command)
    return block, not problems


def run_ui(args: argparse.Namespace, command: str, only: set[str]) -> tuple[str, bool]:
    """The web-UI suite; its Markdown block and whether all went well."""
    results, problems, sizes = run_ui_suite(
        args.quick, install=not args.no_install, with_mlflow="mlflow" in only
    )
    block = render_ui(results, problems, sizes, quick=args.quick, command=command)
    return block, not problems


def run_auth(args: argparse.Namespace, command: str, only: set[str]) -> tuple[str, bool]:
    """The authentication-overhead suite; its Markdown block and whether all went well."""
    data = run_auth_suite(
        only & {"runyard", "mlflow"},
        quick=args.quick,
        install=not args.no_install,
        http_client=args.http_client,
    )
    return render_auth(data, quick=args.quick, command=command), not data.problems


def run_soak(args: argparse.Namespace, command: str, only: set[str]) -> tuple[str, bool]:
    """The soak suite (memory under mixed traffic); its Markdown block and whether all went well."""
    data = run_soak_suite(
        only & {"runyard", "mlflow"},
        sizes_for(args.quick, args.minutes),
        mode="quick" if args.quick else "full",
        install=not args.no_install,
        http_client=args.http_client,
    )
    return render_soak(data, command=command), not data.problems


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suite(s); exit status 1 if anything failed or could not run."""
    args = parse_args(argv)
    # A terminated run (``timeout``, a CI cancel, ``kill``) unwinds like Ctrl-C: the servers and
    # the PostgreSQL cluster run in their own sessions and are stopped only by the ``finally``
    # blocks that start them.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    if args.smoke:
        return run_smoke(args, command, run_embedded)
    output = args.output or (None if args.quick else RESULTS_PATH)
    ok = True
    only = set(args.only or (*TOOLS, *SERVERS))
    suites = {args.suite, *(CORE_SUITES if args.suite in ("core", "all") else ())}
    if "embedded" in suites and not only & set(TOOLS):
        log("embedded suite: none of runyard, mlflow, trackio selected; skipped")
    elif "embedded" in suites:
        block, passed = run_embedded(args, command)
        print(block)
        ok &= passed
        if output is not None:
            write_results(output, block, (START_MARKER, END_MARKER))
            log(f"wrote the embedded section of {output}")
    backend = args.backend or ("sqlite" if args.suite == "server" else "both")
    if "server" in suites and not only & set(SERVERS):
        log("server suite: none of runyard, mlflow, fasttrackml selected; skipped")
    elif "server" in suites:
        for store in ("sqlite", "postgres") if backend == "both" else (backend,):
            block, passed = run_servers(args, command, store)
            print(block)
            ok &= passed
            if output is None:
                continue
            if store == "postgres":
                markers = (SERVER_PG_START_MARKER, SERVER_PG_END_MARKER)
                write_results(output, block, markers, SERVER_END_MARKER)
            else:
                markers = (SERVER_START_MARKER, SERVER_END_MARKER)
                write_results(output, block, markers, END_MARKER)
            log(f"wrote the server section ({store}) of {output}")
    if "serving" in suites:
        block, passed = run_serving(args, command, only)
        print(block)
        ok &= passed
        if output is not None:
            markers = (SERVING_START_MARKER, SERVING_END_MARKER)
            write_results(output, block, markers, SERVER_END_MARKER)
            log(f"wrote the serving section of {output}")
    if args.suite in ("autolog", "all"):
        block, passed = run_autolog(args, command, only)
        print(block)
        ok &= passed
        if output is not None:
            markers = (AUTOLOG_START_MARKER, AUTOLOG_END_MARKER)
            write_results(output, block, markers, SERVING_END_MARKER)
            log(f"wrote the autolog section of {output}")
    if args.suite in ("ui", "all"):
        block, passed = run_ui(args, command, only)
        print(block)
        ok &= passed
        if output is not None:
            write_results(output, block, (UI_START_MARKER, UI_END_MARKER), AUTOLOG_END_MARKER)
            log(f"wrote the UI section of {output}")
    if args.suite in ("auth", "all"):
        block, passed = run_auth(args, command, only)
        print(block)
        ok &= passed
        if output is not None:
            write_results(output, block, (AUTH_START_MARKER, AUTH_END_MARKER), UI_END_MARKER)
            log(f"wrote the auth section of {output}")
    if args.suite in ("soak", "all"):
        block, passed = run_soak(args, command, only)
        print(block)
        ok &= passed
        if output is not None:
            write_results(output, block, (SOAK_START_MARKER, SOAK_END_MARKER), AUTH_END_MARKER)
            log(f"wrote the soak section of {output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
