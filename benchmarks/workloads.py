"""MLflow-API tracking workloads, run unchanged against runyard and MLflow.

The same code drives both libraries: the module under test is imported with
``importlib.import_module(name)`` and only MLflow's public API is used.

This file is executed as a script by the interpreter that has the library
installed (the current one for runyard, a virtual environment for MLflow)::

    python benchmarks/workloads.py --lib mlflow --group runs [--quick]

It runs one workload group in the current directory (a fresh temporary
directory chosen by the orchestrator), against ``sqlite:///<cwd>/bench.db``,
and prints one JSON object on the last line of stdout. Anything the library
prints to stdout is diverted to stderr. A workload whose stored data does not
verify is reported with an ``error`` and makes the script exit with status 1.

It only uses the standard library so that it runs in any environment, and it
is also imported by the orchestrator (for :class:`Sizes` and :data:`GROUPS`),
so importing it must not import the library under test.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

Result = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; the defaults are the full benchmark."""

    log_metric_points: int = 10_000
    batch_count: int = 200
    batch_keys: int = 10
    batch_steps: int = 100
    runs: int = 5_000
    search_reps: int = 20
    page_size: int = 1_000
    paging_reps: int = 3
    history_points: int = 100_000
    history_chunk: int = 1_000
    history_reps: int = 5

    @property
    def batch_size(self) -> int:
        """Metrics per ``log_batch`` call."""
        return self.batch_keys * self.batch_steps


FULL = Sizes()
QUICK = Sizes(
    log_metric_points=1_000,
    batch_count=20,
    runs=500,
    search_reps=5,
    page_size=100,
    history_points=10_000,
    history_reps=3,
)

#: Workload groups; each group runs in its own process against a fresh database.
GROUPS: dict[str, tuple[str, ...]] = {
    "log_metric": ("log_metric",),
    "log_batch": ("log_batch",),
    "runs": ("runs", "search", "paging"),
    "history": ("history",),
}

SEARCH_FILTER = "metrics.m1 > 0.5 and params.p1 = 'x'"
SEARCH_ORDER_BY = "metrics.m2 DESC"
SEARCH_MAX_RESULTS = 100


class VerificationError(AssertionError):
    """The library did not store or return what the workload logged."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`VerificationError` with ``message`` unless ``condition``."""
    if not condition:
        raise VerificationError(message)


@dataclass(frozen=True)
class RunRecord:
    """What the run-creation workload logged for one run."""

    p1: str
    m1: float
    m2: float


class TrackingWorkloads:
    """The workloads, bound to one library and one tracking database."""

    def __init__(self, lib: ModuleType, sizes: Sizes, workdir: Path) -> None:
        self.lib = lib
        self.sizes = sizes
        lib.set_tracking_uri(f"sqlite:///{workdir / 'bench.db'}")
        self.client = lib.MlflowClient()
        self.runs: dict[str, RunRecord] = {}
        self.runs_experiment_id: str | None = None

    def _experiment(self, name: str) -> str:
        """Create and activate an experiment (creating the database, untimed)."""
        return str(self.lib.set_experiment(name).experiment_id)

    def _history_length(self, run_id: str, key: str) -> int:
        return len(self.client.get_metric_history(run_id, key))

    def log_metric(self) -> Result:
        """10,000 ``log_metric`` calls in one run, then verify the stored history."""
        lib, n = self.lib, self.sizes.log_metric_points
        self._experiment("bench-log-metric")
        values = [1.0 / (i + 1) for i in range(n)]
        start = time.perf_counter()
        run = lib.start_run()
        loop_start = time.perf_counter()
        for i, value in enumerate(values):
            lib.log_metric("loss", value, step=i)
        loop_end = time.perf_counter()
        lib.end_run()
        end = time.perf_counter()
        stored = self._history_length(run.info.run_id, "loss")
        check(stored == n, f"get_metric_history returned {stored} points, expected {n}")
        return {
            "points": n,
            "loop_s": loop_end - loop_start,
            "calls_per_s": n / (loop_end - loop_start),
            "end_to_end_s": end - start,
            "stored_points": stored,
        }

    def log_batch(self) -> Result:
        """``batch_count`` ``log_batch`` calls of ``batch_size`` metrics each.

        Timed from the first call until ``end_run`` returns, when every point is stored.
        """
        lib, s = self.lib, self.sizes
        self._experiment("bench-log-batch")
        metric_cls = lib.entities.Metric
        timestamp = int(time.time() * 1000)
        batches = [
            [
                metric_cls(f"k{k}", random.random(), timestamp, b * s.batch_steps + j)
                for k in range(s.batch_keys)
                for j in range(s.batch_steps)
            ]
            for b in range(s.batch_count)
        ]
        run_id = lib.start_run().info.run_id
        start = time.perf_counter()
        for batch in batches:
            self.client.log_batch(run_id, metrics=batch)
        calls_done = time.perf_counter()
        lib.end_run()  # a library may write in the background: stop once all is stored
        elapsed = time.perf_counter() - start
        points = s.batch_count * s.batch_size
        expected = s.batch_count * s.batch_steps
        stored = self._history_length(run_id, "k0")
        check(stored == expected, f"key k0 has {stored} points, expected {expected}")
        return {
            "batches": s.batch_count,
            "batch_size": s.batch_size,
            "points": points,
            "call_site_s": calls_done - start,
            "total_s": elapsed,
            "points_per_s": points / elapsed,
            "stored_points_k0": stored,
        }

    def create_runs(self) -> Result:
        """Runs with 5 params, 5 metrics and 3 tags each (data for the searches)."""
        lib, n = self.lib, self.sizes.runs
        self.runs_experiment_id = self._experiment("bench-runs")
        rng = random.Random(42)
        payloads = []
        for i in range(n):
            params = {
                "p0": str(i),
                "p1": rng.choice("xyz"),
                "p2": "adam",
                "p3": str(rng.randint(1, 8)),
                "p4": "0.001",
            }
            metrics = {f"m{k}": rng.random() for k in range(5)}
            tags = {"t0": "bench", "t1": f"group-{i % 10}", "t2": "v1"}
            payloads.append((params, metrics, tags))
        start = time.perf_counter()
        for params, metrics, tags in payloads:
            with lib.start_run() as run:
                lib.log_params(params)
                lib.log_metrics(metrics)
                lib.set_tags(tags)
            self.runs[run.info.run_id] = RunRecord(params["p1"], metrics["m1"], metrics["m2"])
        elapsed = time.perf_counter() - start
        return {"runs": n, "total_s": elapsed, "runs_per_s": n / elapsed}

    def search(self) -> Result:
        """Filtered, ordered ``search_runs``; median over repetitions after a warm-up."""
        check(self.runs_experiment_id is not None, "search needs the runs workload first")
        expected = [
            run_id
            for run_id, rec in sorted(self.runs.items(), key=lambda item: -item[1].m2)
            if rec.m1 > 0.5 and rec.p1 == "x"
        ][:SEARCH_MAX_RESULTS]

        def query() -> list[str]:
            page = self.client.search_runs(
                [self.runs_experiment_id],
                SEARCH_FILTER,
                order_by=[SEARCH_ORDER_BY],
                max_results=SEARCH_MAX_RESULTS,
            )
            return [run.info.run_id for run in page]

        found = query()
        check(
            found == expected,
            f"search returned {len(found)} runs that differ from the expected "
            f"top {len(expected)} by m2 (first: {found[:3]} vs {expected[:3]})",
        )
        times = []
        for _ in range(self.sizes.search_reps):
            start = time.perf_counter()
            query()
            times.append(time.perf_counter() - start)
        return {
            "filter": SEARCH_FILTER,
            "order_by": SEARCH_ORDER_BY,
            "returned": len(found),
            "reps": len(times),
            "median_ms": statistics.median(times) * 1000,
            "times_ms": [t * 1000 for t in times],
        }

    def paging(self) -> Result:
        """Page through all runs of the experiment; median total time."""
        check(self.runs_experiment_id is not None, "paging needs the runs workload first")
        active_only = self.lib.entities.ViewType.ACTIVE_ONLY
        times, pages = [], 0
        for _ in range(self.sizes.paging_reps):
            seen: set[str] = set()
            token, pages = None, 0
            start = time.perf_counter()
            while True:
                page = self.client.search_runs(
                    [self.runs_experiment_id],
                    "",
                    run_view_type=active_only,
                    max_results=self.sizes.page_size,
                    page_token=token,
                )
                seen.update(run.info.run_id for run in page)
                pages += 1
                token = page.token
                if not token:
                    break
            times.append(time.perf_counter() - start)
            check(seen == set(self.runs), f"paging saw {len(seen)} runs, expected {len(self.runs)}")
        return {
            "runs": len(self.runs),
            "page_size": self.sizes.page_size,
            "pages": pages,
            "median_s": statistics.median(times),
            "times_s": times,
        }

    def history(self) -> Result:
        """Read back a long metric series with ``get_metric_history``."""
        lib, s = self.lib, self.sizes
        self._experiment("bench-history")
        metric_cls = lib.entities.Metric
        timestamp = int(time.time() * 1000)
        with lib.start_run() as run:
            run_id = run.info.run_id
            for offset in range(0, s.history_points, s.history_chunk):
                chunk = range(offset, min(offset + s.history_chunk, s.history_points))
                metrics = [metric_cls("series", 1.0 / (i + 1), timestamp, i) for i in chunk]
                self.client.log_batch(run_id, metrics=metrics)
        times = []
        for _ in range(s.history_reps):
            start = time.perf_counter()
            points = self.client.get_metric_history(run_id, "series")
            times.append(time.perf_counter() - start)
            check(
                len(points) == s.history_points,
                f"get_metric_history returned {len(points)} points, expected {s.history_points}",
            )
        return {
            "points": s.history_points,
            "reps": len(times),
            "median_s": statistics.median(times),
            "times_s": times,
        }


def run_group(lib_name: str, group: str, sizes: Sizes) -> tuple[dict[str, Result], bool]:
    """Run one workload group; return per-workload results and overall success."""
    lib = importlib.import_module(lib_name)
    bench = TrackingWorkloads(lib, sizes, Path.cwd())
    methods: dict[str, Callable[[], Result]] = {
        "log_metric": bench.log_metric,
        "log_batch": bench.log_batch,
        "runs": bench.create_runs,
        "search": bench.search,
        "paging": bench.paging,
        "history": bench.history,
    }
    results: dict[str, Result] = {}
    ok = True
    for name in GROUPS[group]:
        try:
            results[name] = methods[name]()
        except Exception as exc:  # report every failure, keep going with the rest
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            ok = False
            with contextlib.suppress(Exception):
                lib.end_run()
    return results, ok


def library_version(lib_name: str) -> str:
    """The installed version of ``lib_name`` (after it has been imported)."""
    return str(getattr(sys.modules[lib_name], "__version__", "unknown"))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON result on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True, help="module to import, e.g. runyard or mlflow")
    parser.add_argument("--group", required=True, choices=sorted(GROUPS))
    parser.add_argument("--quick", action="store_true", help="use the small smoke-test sizes")
    parser.add_argument("--json", action="store_true", help="no-op: output is always JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        results, ok = run_group(args.lib, args.group, sizes)
    payload = {
        "library": args.lib,
        "version": library_version(args.lib),
        "python": platform.python_version(),
        "executable": sys.executable,
        "async_logging": os.environ.get("MLFLOW_ENABLE_ASYNC_LOGGING", ""),
        "group": args.group,
        "sizes": asdict(sizes),
        "results": results,
    }
    out.write(json.dumps(payload) + "\n")
    out.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
