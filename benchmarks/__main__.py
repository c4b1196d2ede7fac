"""``python -m benchmarks``: runyard vs MLflow vs trackio, side by side.

Runs every workload of :mod:`benchmarks.workloads` against runyard (current
interpreter) and MLflow (its own venv, sync and async logging for the
``log_metric`` loop), the ``log`` loop against trackio (its own venv), prints a
Markdown table and writes it into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import venvs
from benchmarks.report import Collected, render_report, write_results
from benchmarks.runner import (
    TRACKIO_SCRIPT,
    WORKLOADS_SCRIPT,
    Job,
    describe,
    log,
    run_job,
)
from benchmarks.workloads import FULL, GROUPS, QUICK, Sizes

TOOLS = ("runyard", "mlflow", "trackio")
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=TOOLS,
        help="benchmark only this library (repeatable); default: all three",
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
    the machine busy writing back to disk.
    """
    size_args = ("--quick",) if quick else ()
    jobs: list[Job] = []
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
    return jobs


def main(argv: list[str] | None = None) -> int:
    """Run the suite; exit status 1 if anything failed or could not run."""
    args = parse_args(argv)
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
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    block = render_report(data, sizes, quick=args.quick, command=command)
    print(block)
    output = args.output or (None if args.quick else RESULTS_PATH)
    if output is not None:
        write_results(output, block)
        log(f"wrote {output}")
    return 1 if data.problems else 0


if __name__ == "__main__":
    sys.exit(main())
