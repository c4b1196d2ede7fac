"""``python -m benchmarks --smoke``: every core suite at tiny sizes, runyard only, for CI.

It runs, one after the other, with no venv created or installed into and no MLflow,
trackio or FastTrackML:

- the embedded suite's groups at their ``--quick`` sizes (``--only runyard``);
- the tracking-server suite's raw-HTTP groups and runyard's own client groups at their
  ``--quick`` sizes against ``runyard server`` on SQLite (the official-client groups need
  the MLflow venv: skipped);
- the soak suite for 15 s (:data:`benchmarks.soak.SOAK_SMOKE`).

Every workload verifies what it reads back, exactly as in a full run, so a smoke run
fails (exit status 1) whenever a workload breaks. It writes nothing unless ``--output``
is given; the per-step wall times are logged at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import server_suite
from benchmarks.report import END_MARKER, START_MARKER, write_results
from benchmarks.runner import log
from benchmarks.server_report import (
    SERVER_END_MARKER,
    SERVER_START_MARKER,
    SERVERS,
    ServerCollected,
    render_server_report,
)
from benchmarks.soak import SOAK_END_MARKER, SOAK_SMOKE, SOAK_START_MARKER, run_soak_suite
from benchmarks.soak import render as render_soak

#: A suite's runner: (its Markdown block, whether everything passed).
Step = Callable[[], tuple[str, bool]]


def server_smoke(command: str, http_client: str) -> tuple[str, bool]:
    """The server suite's raw groups at ``--quick`` sizes, runyard on SQLite only."""
    options = server_suite.SuiteOptions(
        servers=("runyard",),
        quick=True,
        install=False,
        mlflow_workers="1",
        http_client=http_client,
    )
    data = ServerCollected(
        server_suite.ALL_GROUPS, not_run={s for s in SERVERS if s not in options.servers}
    )
    specs = server_suite.server_specs(options, data)
    artifact = server_suite.ArtifactSource(options.sizes.artifact_bytes)
    try:
        for group in server_suite.GROUP_ORDER:
            if "runyard" not in specs or "runyard" not in server_suite.GROUP_SERVERS.get(
                group, SERVERS
            ):
                continue
            if group in server_suite.CLIENT_GROUPS and group not in server_suite.OWN_CLIENT_GROUPS:
                continue  # the official client lives in the MLflow venv
            python = Path(sys.executable)
            server_suite.run_one(specs["runyard"], group, options, python, data, artifact)
    finally:
        artifact.remove()
    block = render_server_report(
        data, options.sizes, quick=True, command=command, http_client=http_client
    )
    return block, not data.problems


def soak_smoke(command: str, http_client: str) -> tuple[str, bool]:
    """The soak suite for :data:`SOAK_SMOKE`'s 15 s, runyard only."""
    data = run_soak_suite(
        {"runyard"}, SOAK_SMOKE, mode="smoke", install=False, http_client=http_client
    )
    return render_soak(data, command=command), not data.problems


def run_smoke(
    args: argparse.Namespace,
    command: str,
    embedded: Callable[[argparse.Namespace, str], tuple[str, bool]],
) -> int:
    """Run every smoke step; print their blocks; 0 if all passed, else 1.

    ``embedded`` is the embedded suite's runner (``benchmarks.__main__.run_embedded``),
    called with ``args`` set to quick sizes, runyard only and no installs.
    """
    args.quick, args.only, args.no_install = True, ["runyard"], True
    steps: list[tuple[str, Step, tuple[str, str], str | None]] = [
        ("embedded", lambda: embedded(args, command), (START_MARKER, END_MARKER), None),
        (
            "server",
            lambda: server_smoke(command, args.http_client),
            (SERVER_START_MARKER, SERVER_END_MARKER),
            END_MARKER,
        ),
        (
            "soak",
            lambda: soak_smoke(command, args.http_client),
            (SOAK_START_MARKER, SOAK_END_MARKER),
            SERVER_END_MARKER,
        ),
    ]
    began = time.perf_counter()
    ok, timings = True, []
    for name, step, markers, after in steps:
        log(f"smoke: {name}…")
        start = time.perf_counter()
        block, passed = step()
        timings.append(
            f"{name} {'ok' if passed else 'FAILED'} ({time.perf_counter() - start:.0f} s)"
        )
        print(block, flush=True)
        ok &= passed
        if args.output is not None:
            write_results(args.output, block, markers, after)
    log(f"smoke: {', '.join(timings)}; total {time.perf_counter() - began:.0f} s")
    return 0 if ok else 1
