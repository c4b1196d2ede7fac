"""Workloads at scale, run unchanged against runyard and MLflow: a 100,000-run store and a
1,000,000-point metric history.

Executed as a script by the interpreter that has the library installed (the current one for
runyard, a virtual environment for MLflow)::

    python benchmarks/scale_workloads.py --lib mlflow --group scale [--quick]

Like :mod:`benchmarks.workloads` it runs one group in the current directory (a fresh temporary
directory) against ``sqlite:///<cwd>/bench.db``, prints one JSON object on the last line of
stdout and exits with status 1 when a workload's data does not verify. Standard library only;
importing it must not import the library under test (the orchestrator imports it for
:class:`ScaleSizes` and :data:`SCALE_GROUPS`).

Groups:

``scale``
    A store of N runs (20 metrics ``m0..m19`` of one point each, 5 params ``p0..p4`` drawn from
    ``x y z w``, start times one second apart) in one experiment, seeded untimed and in bulk in
    each library's own schema: MLflow's API creates ~40 runs/s, so its store is written with
    ``sqlite3`` ``executemany`` exactly as its ``SqlAlchemyStore`` writes runs (the experiment,
    and so the schema, is created through its API); runyard's is written through its SQL store
    (``create_run`` + ``log_batch`` + ``update_run_info``). Then three ``search_runs`` of the
    public client, each verified against the answer computed from the seeded values and timed
    as the median of ``search_reps`` after a warm-up.
``history_1m``
    One run with a ``loss`` series of N points logged untimed with ``log_batch`` of 1,000
    metrics, then ``get_metric_history`` (median of 3; the peak RSS growth of the first read is
    recorded too) and, for runyard, the series downsampled to 2,000 points.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import platform
import random
import re
import sqlite3
import statistics
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

Result = dict[str, Any]


@dataclass(frozen=True)
class ScaleSizes:
    """Sizes of the scale groups; the defaults are the full benchmark."""

    scale_runs: int = 100_000
    scale_metrics: int = 20
    scale_params: int = 5
    seed_chunk: int = 5_000
    search_reps: int = 20
    # A search stops repeating once it has run this long and at least search_min_reps times,
    # and one whose verifying run alone took this long is timed by that run only: MLflow takes
    # ~3 minutes for search (a) at 100k runs, 21 runs of it would take an hour.
    search_budget_s: float = 60.0
    search_min_reps: int = 3
    history_points: int = 1_000_000
    history_chunk: int = 1_000
    history_reps: int = 3
    downsample_points: int = 2_000


SCALE_FULL = ScaleSizes()
SCALE_QUICK = ScaleSizes(scale_runs=2_000, seed_chunk=1_000, history_points=20_000)

#: Workload groups of this script; each runs in its own process against a fresh database.
SCALE_GROUPS: dict[str, tuple[str, ...]] = {
    "scale": ("scale_search_order", "scale_search_default", "scale_search_selective"),
    "history_1m": ("history_1m_raw", "history_1m_downsampled"),
}

PARAM_VALUES = ("x", "y", "z", "w")
SEARCH_MAX_RESULTS = 100
T0 = 1_700_000_000_000
EXPERIMENT = "bench-scale"


@dataclass(frozen=True)
class Search:
    """One timed search: its filter, order and how to compute the expected answer."""

    workload: str
    filter: str
    order_by: tuple[str, ...]
    matches: Callable[[list[float], list[str]], bool]
    sort_key: Callable[[int, list[float], list[str]], Any]


#: (a) filter + order by a metric; (b) the same filter in the default order (start_time DESC,
#: then run id); (c) a selective metric filter ordered by a param (ties: start_time DESC).
SEARCHES = (
    Search(
        "scale_search_order",
        "metrics.m1 > 0.5 and params.p1 = 'x'",
        ("metrics.m2 DESC",),
        lambda m, p: m[1] > 0.5 and p[1] == "x",
        lambda i, m, p: -m[2],
    ),
    Search(
        "scale_search_default",
        "metrics.m1 > 0.5 and params.p1 = 'x'",
        (),
        lambda m, p: m[1] > 0.5 and p[1] == "x",
        lambda i, m, p: -i,
    ),
    Search(
        "scale_search_selective",
        "metrics.m3 > 0.999",
        ("params.p2",),
        lambda m, p: m[3] > 0.999,
        lambda i, m, p: (p[2], -i),
    ),
)


class VerificationError(AssertionError):
    """The library did not store or return what the workload logged."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`VerificationError` with ``message`` unless ``condition``."""
    if not condition:
        raise VerificationError(message)


@dataclass(frozen=True)
class SeededRun:
    """The values one seeded run holds."""

    name: str
    start_time: int
    metrics: list[float]
    params: list[str]


def seeded_values(sizes: ScaleSizes) -> list[SeededRun]:
    """The runs of the scale store, the same for every library (fixed random seed)."""
    rng = random.Random(11)
    runs = []
    for i in range(sizes.scale_runs):
        metrics = [rng.random() for _ in range(sizes.scale_metrics)]
        params = [rng.choice(PARAM_VALUES) for _ in range(sizes.scale_params)]
        runs.append(SeededRun(f"run-{i}", T0 + i * 1000, metrics, params))
    return runs


def _chunks(runs: list[SeededRun], size: int) -> Iterator[list[SeededRun]]:
    for start in range(0, len(runs), size):
        yield runs[start : start + size]


def seed_mlflow(client: Any, db: Path, runs: list[SeededRun], sizes: ScaleSizes) -> str:
    """MLflow's rows, written as its ``SqlAlchemyStore.create_run``/``log_batch``/
    ``set_terminated`` write them (``mlflow/store/tracking/dbmodels/models.py``): the run row,
    its ``mlflow.runName`` tag, params, and for each metric a ``metrics`` and a
    ``latest_metrics`` row. The experiment is created through the API, which creates the schema.
    """
    exp_id = str(client.create_experiment(EXPERIMENT))
    location = str(client.get_experiment(exp_id).artifact_location).rstrip("/")
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for chunk in _chunks(runs, sizes.seed_chunk):
            run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
            for run in chunk:
                run_id = uuid.uuid4().hex
                run_rows.append(
                    (
                        run_id,
                        run.name,
                        "UNKNOWN",
                        "",
                        "",
                        "bench",
                        "FINISHED",
                        run.start_time,
                        run.start_time + 500,
                        "",
                        "active",
                        f"{location}/{run_id}/artifacts",
                        int(exp_id),
                        None,
                    )
                )
                tag_rows.append(("mlflow.runName", run.name, run_id))
                param_rows += [(f"p{k}", v, run_id) for k, v in enumerate(run.params)]
                metric_rows += [
                    (f"m{k}", v, run.start_time, run_id, 0, 0) for k, v in enumerate(run.metrics)
                ]
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name,"
                " user_id, status, start_time, end_time, source_version, lifecycle_stage,"
                " artifact_uri, experiment_id, deleted_time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                run_rows,
            )
            conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tag_rows)
            conn.executemany(
                "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", param_rows
            )
            conn.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                metric_rows,
            )
            conn.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                metric_rows,
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    return exp_id


def seed_runyard(lib: ModuleType, db: Path, runs: list[SeededRun]) -> str:
    """runyard's rows, through its SQL store: ``create_run``, one ``log_batch`` of the run's
    metrics and params, ``update_run_info`` to FINISHED."""
    store_module = importlib.import_module("runyard.store.sql.store")
    metric_cls, param_cls = lib.entities.Metric, lib.entities.Param
    store = store_module.SqlTrackingStore(f"sqlite:///{db}", str(db.parent / "artifacts"))
    try:
        exp_id = str(store.create_experiment(EXPERIMENT))
        for run in runs:
            run_id = store.create_run(exp_id, "bench", run.start_time, [], run.name).info.run_id
            store.log_batch(
                run_id,
                [metric_cls(f"m{k}", v, run.start_time, 0) for k, v in enumerate(run.metrics)],
                [param_cls(f"p{k}", v) for k, v in enumerate(run.params)],
                [],
            )
            store.update_run_info(run_id, "FINISHED", run.start_time + 500, None)
    finally:
        store.close()
    return exp_id


#: Row counts of the seeded experiment, per library schema: (runs, params, latest metric rows).
COUNT_QUERIES = {
    "mlflow": (
        "SELECT COUNT(*) FROM runs WHERE experiment_id = ?",
        "SELECT COUNT(*) FROM params JOIN runs USING (run_uuid) WHERE experiment_id = ?",
        "SELECT COUNT(*) FROM latest_metrics JOIN runs USING (run_uuid) WHERE experiment_id = ?",
    ),
    "runyard": (
        "SELECT COUNT(*) FROM runs WHERE experiment_id = ?",
        "SELECT COUNT(*) FROM params JOIN runs USING (run_uuid) WHERE experiment_id = ?",
        "SELECT COUNT(*) FROM metric_summaries JOIN runs USING (run_uuid) WHERE experiment_id = ?",
    ),
}


def count_rows(lib_name: str, db: Path, exp_id: str) -> tuple[int, int, int]:
    """Runs, params and per-run metric rows stored in the experiment (read-only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        runs, params, metrics = (
            int(conn.execute(sql, (int(exp_id),)).fetchone()[0]) for sql in COUNT_QUERIES[lib_name]
        )
    finally:
        conn.close()
    return runs, params, metrics


def rss_kib() -> tuple[int, int]:
    """This process's current and peak resident set size (``VmRSS``, ``VmHWM``), in KiB."""
    text = Path("/proc/self/status").read_text()
    found = {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+)", text, re.MULTILINE)}
    return found["VmRSS"], found["VmHWM"]


@contextlib.contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Measure the peak RSS of the block: the kernel's high-water mark, reset before the block
    (``/proc/self/clear_refs``, Linux ≥ 4.0), or, where it cannot be reset, VmRSS sampled
    every 5 ms by a thread."""
    out: dict[str, float] = {}
    gc.collect()
    reset = True
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        reset = False
    before, _ = rss_kib()
    sampled = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            sampled.append(rss_kib()[0])

    thread = threading.Thread(target=sample, daemon=True)
    if not reset:
        thread.start()
    try:
        yield out
    finally:
        done.set()
        if not reset:
            thread.join()
        now, hwm = rss_kib()
        peak = max(max(sampled), now, hwm if reset else 0)
        out.update(
            rss_before_mb=before / 1024,
            rss_peak_mb=peak / 1024,
            rss_growth_mb=(peak - before) / 1024,
            hwm_reset=reset,
        )


class ScaleWorkloads:
    """The scale workloads, bound to one library and one tracking database."""

    def __init__(self, lib: ModuleType, lib_name: str, sizes: ScaleSizes, workdir: Path) -> None:
        self.lib, self.lib_name, self.sizes = lib, lib_name, sizes
        self.db = workdir / "bench.db"
        lib.set_tracking_uri(f"sqlite:///{self.db}")
        self.client = lib.MlflowClient()
        self.runs: list[SeededRun] = []
        self.exp_id: str | None = None
        self.seed: Result = {}

    def seed_scale(self) -> None:
        """Seed the scale store (untimed for the report) and verify it."""
        s = self.sizes
        runs = seeded_values(s)
        start = time.perf_counter()
        if self.lib_name == "mlflow":
            self.exp_id = seed_mlflow(self.client, self.db, runs, s)
        else:
            self.exp_id = seed_runyard(self.lib, self.db, runs)
        seconds = time.perf_counter() - start
        self.runs = runs
        counts = count_rows(self.lib_name, self.db, self.exp_id)
        expected = (s.scale_runs, s.scale_runs * s.scale_params, s.scale_runs * s.scale_metrics)
        check(counts == expected, f"stored (runs, params, metrics) {counts}, expected {expected}")
        for index in sorted({0, len(runs) // 2, len(runs) - 1}):
            self._check_run(runs[index])
        self.seed = {"seed_s": seconds, "seed_runs_per_s": s.scale_runs / seconds}

    def _check_run(self, run: SeededRun) -> None:
        """Read one seeded run back through the public API, by its name."""
        found = self.client.search_runs(
            [self.exp_id], f"attributes.run_name = '{run.name}'", max_results=2
        )
        check(len(found) == 1, f"{len(found)} runs named {run.name}, expected 1")
        got = found[0]
        metrics = {f"m{k}": v for k, v in enumerate(run.metrics)}
        params = {f"p{k}": v for k, v in enumerate(run.params)}
        check(got.data.metrics == metrics, f"{run.name}: metrics differ from the seeded ones")
        check(got.data.params == params, f"{run.name}: params differ from the seeded ones")
        check(got.info.status == "FINISHED", f"{run.name}: status {got.info.status}")
        check(got.info.start_time == run.start_time, f"{run.name}: wrong start_time")

    def search(self, spec: Search) -> Result:
        """One search: verified against the seeded values, then timed."""
        check(self.exp_id is not None, "the scale store was not seeded")
        ranked = sorted(
            (i for i, r in enumerate(self.runs) if spec.matches(r.metrics, r.params)),
            key=lambda i: spec.sort_key(i, self.runs[i].metrics, self.runs[i].params),
        )
        expected = [self.runs[i].name for i in ranked[:SEARCH_MAX_RESULTS]]
        order_by = list(spec.order_by) or None

        def query() -> list[str]:
            page = self.client.search_runs(
                [self.exp_id], spec.filter, order_by=order_by, max_results=SEARCH_MAX_RESULTS
            )
            return [run.info.run_name for run in page]

        began = time.perf_counter()
        found = query()  # also the warm-up
        first_s = time.perf_counter() - began
        check(
            found == expected,
            f"search returned {len(found)} runs that differ from the expected {len(expected)} "
            f"(first: {found[:3]} vs {expected[:3]})",
        )
        s = self.sizes
        # A search too slow to repeat is timed by its verifying run (cold: no warm-up).
        times: list[float] = [first_s] if first_s >= s.search_budget_s else []
        cold = bool(times)
        while (
            not cold
            and len(times) < s.search_reps
            and (len(times) < s.search_min_reps or sum(times) < s.search_budget_s)
        ):
            start = time.perf_counter()
            query()
            times.append(time.perf_counter() - start)
        return {
            "filter": spec.filter,
            "order_by": list(spec.order_by),
            "runs": len(self.runs),
            "matching": len(ranked),
            "returned": len(found),
            "reps": len(times),
            "cold": cold,
            "median_ms": statistics.median(times) * 1000,
            "times_ms": [t * 1000 for t in times],
            **self.seed,
        }

    def history_1m(self) -> tuple[Result, Result | None]:
        """Log the long series (untimed), then read it raw and (runyard) downsampled."""
        s, lib, client = self.sizes, self.lib, self.client
        exp_id = str(lib.set_experiment("bench-history-1m").experiment_id)
        run_id = client.create_run(exp_id, run_name="history-1m").info.run_id
        metric_cls = lib.entities.Metric
        start = time.perf_counter()
        for offset in range(0, s.history_points, s.history_chunk):
            steps = range(offset, min(offset + s.history_chunk, s.history_points))
            client.log_batch(
                run_id, metrics=[metric_cls("loss", 1.0 / (i + 1), T0 + i, i) for i in steps]
            )
        client.set_terminated(run_id)
        log_s = time.perf_counter() - start
        times: list[float] = []
        memory: dict[str, float] = {}
        for rep in range(s.history_reps):
            gc.collect()
            with peak_rss() if rep == 0 else contextlib.nullcontext({}) as measured:
                began = time.perf_counter()
                points = client.get_metric_history(run_id, "loss")
                times.append(time.perf_counter() - began)
            check(
                len(points) == s.history_points,
                f"get_metric_history returned {len(points)} points, expected {s.history_points}",
            )
            if rep == 0:
                memory = dict(measured)
                steps_seen = {p.step for p in points}
                check(len(steps_seen) == s.history_points, "steps repeat or are missing")
                check(min(steps_seen) == 0 and max(steps_seen) == s.history_points - 1, "steps")
            del points
        raw = {
            "points": s.history_points,
            "log_s": log_s,
            "log_points_per_s": s.history_points / log_s,
            "reps": len(times),
            "median_s": statistics.median(times),
            "times_s": times,
            **memory,
        }
        return raw, self._downsampled(run_id)

    def _downsampled(self, run_id: str) -> Result | None:
        """runyard's downsampled read; None for a library without an embedded one."""
        reader = getattr(self.client, "get_metric_history_downsampled", None)
        api = "MlflowClient().get_metric_history_downsampled"
        if reader is None and self.lib_name == "runyard":
            reader = self.client.store.get_metric_history_downsampled
            api = "MlflowClient().store.get_metric_history_downsampled"
        if reader is None:
            return None
        s = self.sizes
        times = []
        for _ in range(s.history_reps):
            began = time.perf_counter()
            total, reduced, points = reader(run_id, "loss", max_points=s.downsample_points)
            times.append(time.perf_counter() - began)
            steps = [p.step for p in points]
            check(total == s.history_points, f"total {total}, expected {s.history_points}")
            check(reduced, "the series was not reported as downsampled")
            check(len(points) <= s.downsample_points, f"{len(points)} points came back")
            check(steps[0] == 0, f"first step {steps[0]}, expected 0")
            check(steps[-1] == s.history_points - 1, f"last step {steps[-1]}")
        return {
            "api": api,
            "max_points": s.downsample_points,
            "returned": len(points),
            "total": total,
            "reps": len(times),
            "median_ms": statistics.median(times) * 1000,
            "times_ms": [t * 1000 for t in times],
        }


def run_group(lib_name: str, group: str, sizes: ScaleSizes) -> tuple[dict[str, Result], bool]:
    """Run one group; per-workload results and overall success."""
    lib = importlib.import_module(lib_name)
    bench = ScaleWorkloads(lib, lib_name, sizes, Path.cwd())
    results: dict[str, Result] = {}
    ok = True

    def attempt(names: tuple[str, ...], action: Callable[[], None]) -> bool:
        nonlocal ok
        try:
            action()
            return True
        except Exception as exc:  # report every failure, keep going with the rest
            traceback.print_exc()
            for name in names:
                results.setdefault(name, {"error": f"{type(exc).__name__}: {exc}"})
            ok = False
            return False

    if group == "scale":
        if attempt(SCALE_GROUPS["scale"], bench.seed_scale):
            for spec in SEARCHES:

                def one(spec: Search = spec) -> None:
                    results[spec.workload] = bench.search(spec)

                attempt((spec.workload,), one)
    else:

        def history() -> None:
            raw, downsampled = bench.history_1m()
            results["history_1m_raw"] = raw
            if downsampled is not None:
                results["history_1m_downsampled"] = downsampled

        attempt(SCALE_GROUPS["history_1m"], history)
    return results, ok


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON result on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True, choices=("runyard", "mlflow"))
    parser.add_argument("--group", required=True, choices=sorted(SCALE_GROUPS))
    parser.add_argument("--quick", action="store_true", help="use the small smoke-test sizes")
    parser.add_argument("--json", action="store_true", help="no-op: output is always JSON")
    args = parser.parse_args(argv)
    sizes = SCALE_QUICK if args.quick else SCALE_FULL
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        results, ok = run_group(args.lib, args.group, sizes)
    payload = {
        "library": args.lib,
        "version": str(getattr(sys.modules[args.lib], "__version__", "unknown")),
        "python": platform.python_version(),
        "executable": sys.executable,
        "group": args.group,
        "sizes": asdict(sizes),
        "results": results,
    }
    out.write(json.dumps(payload) + "\n")
    out.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
