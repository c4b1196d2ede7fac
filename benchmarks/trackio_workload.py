"""The ``log`` loop workload for trackio (the reference for runyard's log loop).

Executed as a script by the trackio virtual environment's interpreter::

    python benchmarks/trackio_workload.py --points 10000

in a fresh temporary directory, with ``TRACKIO_DIR`` pointing into it and no
Space or server configured, so trackio logs to its local SQLite database only.
Prints one JSON object on the last line of stdout; trackio's own console
messages are diverted to stderr.

How trackio behaves (checked against its installed source, 0.4x): ``trackio.log``
only appends the entry to an in-memory queue; a background thread writes the
queue to ``<TRACKIO_DIR>/<project>.db`` every 0.5 s, and ``trackio.finish``
wakes that thread and joins it. So the end-to-end time (``init`` until
``finish`` returns) includes the data being written, which this script checks
by counting the rows in the database directly. The project database and its
schema are created lazily by that thread on the first write; a short untimed
warm-up run creates them first, as ``set_experiment`` does for the MLflow-API
workloads, so schema creation is excluded for every library.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = "bench"
# No automatic CPU/GPU sampling threads: only the logged metric is measured.
INIT_OPTIONS: dict[str, Any] = {"embed": False, "auto_log_cpu": False, "auto_log_gpu": False}


def stored_points(trackio_dir: Path, run_id: str, key: str) -> int:
    """Count rows of ``run_id`` holding ``key`` in trackio's SQLite databases."""
    total = 0
    for db_path in sorted(trackio_dir.glob("*.db")):
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            has_metrics = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metrics'"
            ).fetchone()
            if has_metrics:
                (count,) = conn.execute(
                    "SELECT COUNT(*) FROM metrics WHERE run_id = ? "
                    "AND json_extract(metrics, ?) IS NOT NULL",
                    (run_id, f"$.{key}"),
                ).fetchone()
                total += count
    return total


def log_loop(points: int) -> dict[str, Any]:
    """Time ``init`` → ``points`` × ``log`` → ``finish`` and verify the stored rows."""
    import trackio

    trackio.init(project=PROJECT, **INIT_OPTIONS)  # warm-up: creates the database
    trackio.log({"loss": 0.0})
    trackio.finish()

    values = [1.0 / (i + 1) for i in range(points)]
    start = time.perf_counter()
    run = trackio.init(project=PROJECT, **INIT_OPTIONS)
    loop_start = time.perf_counter()
    for value in values:
        trackio.log({"loss": value})
    loop_end = time.perf_counter()
    trackio.finish()
    end = time.perf_counter()

    stored = stored_points(Path(os.environ["TRACKIO_DIR"]), run.id, "loss")
    if stored != points:
        raise AssertionError(f"trackio stored {stored} points, expected {points}")
    return {
        "points": points,
        "loop_s": loop_end - loop_start,
        "calls_per_s": points / (loop_end - loop_start),
        "end_to_end_s": end - start,
        "stored_points": stored,
        "version": trackio.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON result on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000, help="number of log calls")
    parser.add_argument("--json", action="store_true", help="no-op: output is always JSON")
    args = parser.parse_args(argv)
    if "TRACKIO_DIR" not in os.environ:
        parser.error("set TRACKIO_DIR to a scratch directory")
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = log_loop(args.points)
    payload = {
        "library": "trackio",
        "version": result.pop("version"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "group": "log_metric",
        "results": {"log_metric": result},
    }
    out.write(json.dumps(payload) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
