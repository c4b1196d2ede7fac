"""Raw-HTTP workloads against a tracking server's MLflow REST API.

Plain HTTP/1.1 over keep-alive connections, no MLflow client: this measures
the server, not a client library. The HTTP client is :mod:`benchmarks.loadgen`
(standard library by default, ``--http-client httpx`` for httpx). Run as a
script, by any Python >= 3.10::

    python benchmarks/server_workloads.py --url http://127.0.0.1:5000 --group runs [--quick]

It prints one JSON object on the last line of stdout; a workload whose data
does not read back exactly as written is reported with an ``error`` and makes
the script exit with status 1. Every request loop is bounded in count and
time, and only the given loopback URL is contacted.

The request layer is :mod:`benchmarks.server_api`; the large-data workloads (1 GB
artifact, 1,000,000-point history) are in :mod:`benchmarks.server_bulk`. The
orchestrator imports this module for :class:`ServerSizes` and :data:`GROUPS`, so it
imports nothing outside the standard library and those sibling modules.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

try:
    from benchmarks import loadgen, rss
    from benchmarks.server_api import API, Result, VerificationError, check, now_ms
    from benchmarks.server_bulk import BulkWorkloads
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import loadgen  # type: ignore[no-redef]
    import rss  # type: ignore[no-redef]
    from server_api import API, Result, VerificationError, check, now_ms  # type: ignore[no-redef]
    from server_bulk import BulkWorkloads  # type: ignore[no-redef]


@dataclass(frozen=True)
class ServerSizes:
    """Sizes of the server workloads; the defaults are the full benchmark."""

    client_log_metric_calls: int = 1_000
    client_runs: int = 200
    batch_count: int = 200
    batch_keys: int = 10
    batch_steps: int = 100
    timed_runs: int = 1_000
    total_runs: int = 5_000
    search_reps: int = 20
    page_size: int = 1_000
    paging_reps: int = 3
    history_points: int = 100_000
    history_chunk: int = 1_000
    history_reps: int = 5
    connections: int = 16
    concurrency_s: float = 5.0
    artifact_bytes: int = 1_000_000_000
    small_artifact_bytes: int = 50_000_000
    artifact_reps: int = 3
    long_history_points: int = 1_000_000
    #: MLflow's series: logging 1,000,000 points takes it ~3 min and each paged read ~1 min
    #: (x3 reps, x2 backends); its rows compare per-point rates and say so.
    mlflow_long_history_points: int = 250_000
    long_history_page: int = 25_000  # MLflow's client: GET_METRIC_HISTORY_MAX_RESULTS
    long_history_reps: int = 3
    downsample_points: int = 2_000  # bulk-interval allows 1 … 2,500 (MAX_RESULTS_PER_RUN)

    @property
    def batch_size(self) -> int:
        """Metrics per ``log-batch`` request."""
        return self.batch_keys * self.batch_steps


SERVER_FULL = ServerSizes()
SERVER_QUICK = ServerSizes(
    client_log_metric_calls=200,
    client_runs=20,
    batch_count=20,
    timed_runs=100,
    total_runs=500,
    search_reps=5,
    page_size=100,
    history_points=10_000,
    history_reps=3,
    concurrency_s=2.0,
    artifact_bytes=20_000_000,
    small_artifact_bytes=5_000_000,
    artifact_reps=2,
    long_history_points=20_000,
    mlflow_long_history_points=20_000,
    long_history_page=5_000,  # smaller than the client's 25,000, so that paging runs
)

#: Raw workload groups; each runs against a freshly started server.
GROUPS: dict[str, tuple[str, ...]] = {
    "log_batch": ("log_batch",),
    "runs": ("runs", "search", "paging"),
    "history": ("history",),
    "long_history": ("history_paged", "history_bulk", "history_downsampled"),
    "concurrency": ("runs_get",),
    # The same load on a runyard server started with one worker per CPU (server_suite.py).
    "concurrency_workers": ("runs_get_workers",),
    "artifacts": ("artifacts",),
    "artifacts_small": ("artifacts_small",),
}

SEARCH_FILTER = "metrics.m1 > 0.5 and params.p1 = 'x'"
SEARCH_ORDER_BY = "metrics.m2 DESC"
SEARCH_MAX_RESULTS = 100
#: Seconds between creating the runs and searching them (see search_workload).
SETTLE_S = 3.0


@dataclass(frozen=True)
class RunRecord:
    """What the run-creation workload logged for one run."""

    p1: str
    m1: float
    m2: float


class RawWorkloads(BulkWorkloads):
    """The raw-HTTP workloads against one server (requests: :class:`ApiClient`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs: dict[str, RunRecord] = {}
        self.runs_experiment_id: str | None = None

    def history(self, run_id: str, key: str) -> tuple[list[dict[str, Any]], float]:
        """``metrics/get-history`` without ``max_results``: the points, exchange seconds.

        Pages are followed if the server sends a token (MLflow sends none here).
        """
        params = {"run_id": run_id, "metric_key": key}
        points: list[dict[str, Any]] = []
        seconds = 0.0
        for _ in range(10_000):  # bounded
            body, elapsed = self.timed_call("GET", "metrics/get-history", params=params)
            seconds += elapsed
            points.extend(body.get("metrics", []))
            token = body.get("next_page_token")
            if not token:
                return points, seconds
            params["page_token"] = token
        raise VerificationError("get-history kept returning page tokens")

    def search(self, experiment_id: str, **extra: Any) -> tuple[dict[str, Any], float]:
        """``runs/search`` in one experiment: the answer and the exchange seconds."""
        payload = {"experiment_ids": [experiment_id], **extra}
        return self.timed_call("POST", "runs/search", payload=payload)

    # -- workloads ------------------------------------------------------------------

    def log_batch_workload(self) -> Result:
        """``batch_count`` × ``log-batch`` of ``batch_size`` metrics, then FINISHED."""
        s = self.sizes
        run_id = self.create_run(self.create_experiment("bench-log-batch"), "batch")["run_id"]
        timestamp = now_ms()
        bodies = [
            json.dumps(
                {
                    "run_id": run_id,
                    "metrics": [
                        {
                            "key": f"k{k}",
                            "value": random.random(),
                            "timestamp": timestamp,
                            "step": b * s.batch_steps + j,
                        }
                        for k in range(s.batch_keys)
                        for j in range(s.batch_steps)
                    ],
                }
            ).encode()
            for b in range(s.batch_count)
        ]
        start = time.perf_counter()
        for body in bodies:
            status, content = self.http.request(
                "POST", f"{API}/runs/log-batch", body=body, content_type="application/json"
            )
            check(status == 200, f"log-batch: HTTP {status}: {content[:300]!r}")
        self.finish_run(run_id)
        elapsed = time.perf_counter() - start
        expected = s.batch_count * s.batch_steps
        for key in ("k0", f"k{s.batch_keys - 1}"):
            stored = len(self.history(run_id, key)[0])
            check(stored == expected, f"key {key} has {stored} points, expected {expected}")
        points = s.batch_count * s.batch_size
        return {
            "batches": s.batch_count,
            "batch_size": s.batch_size,
            "points": points,
            "total_s": elapsed,
            "points_per_s": points / elapsed,
        }

    def _run_payloads(
        self, count: int
    ) -> list[tuple[dict[str, str], dict[str, float], dict[str, str]]]:
        rng = random.Random(42)
        payloads = []
        for i in range(count):
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
        return payloads

    def _create_full_run(
        self,
        experiment_id: str,
        i: int,
        params: dict[str, str],
        metrics: dict[str, float],
        tags: dict[str, str],
    ) -> str:
        run_id = str(self.create_run(experiment_id, f"run-{i}")["run_id"])
        timestamp = now_ms()
        self.log_batch(
            run_id,
            params=[{"key": k, "value": v} for k, v in params.items()],
            metrics=[
                {"key": k, "value": v, "timestamp": timestamp, "step": 0}
                for k, v in metrics.items()
            ],
            tags=[{"key": k, "value": v} for k, v in tags.items()],
        )
        self.finish_run(run_id)
        self.runs[run_id] = RunRecord(params["p1"], metrics["m1"], metrics["m2"])
        return run_id

    def runs_workload(self) -> Result:
        """``timed_runs`` × (create, log-batch of 5 params / 5 metrics / 3 tags, FINISHED).

        Then, untimed, the same for the rest of ``total_runs`` (data for the searches).
        """
        s = self.sizes
        experiment_id = self.runs_experiment_id = self.create_experiment("bench-runs")
        payloads = self._run_payloads(s.total_runs)
        start = time.perf_counter()
        for i, payload in enumerate(payloads[: s.timed_runs]):
            self._create_full_run(experiment_id, i, *payload)
        elapsed = time.perf_counter() - start
        seed_start = time.perf_counter()
        for i, payload in enumerate(payloads[s.timed_runs :], start=s.timed_runs):
            self._create_full_run(experiment_id, i, *payload)
        sample = next(iter(self.runs))
        run = self.call("GET", "runs/get", params={"run_id": sample})["run"]
        check(len(run["data"].get("params", [])) == 5, f"run {sample} has not 5 params: {run}")
        check(len(run["data"].get("metrics", [])) == 5, f"run {sample} has not 5 metrics: {run}")
        check(run["info"]["status"] == "FINISHED", f"run {sample} is not FINISHED: {run['info']}")
        return {
            "runs": s.timed_runs,
            "total_s": elapsed,
            "runs_per_s": s.timed_runs / elapsed,
            "seeded_runs": s.total_runs - s.timed_runs,
            "seed_s": time.perf_counter() - seed_start,
        }

    def search_workload(self) -> Result:
        """Filtered, ordered ``runs/search`` for the top 100; median after a warm-up."""
        experiment_id = self.runs_experiment_id
        check(experiment_id is not None, "search needs the runs workload first")
        assert experiment_id is not None
        expected = [
            run_id
            for run_id, rec in sorted(self.runs.items(), key=lambda item: -item[1].m2)
            if rec.m1 > 0.5 and rec.p1 == "x"
        ][:SEARCH_MAX_RESULTS]
        query = {
            "filter": SEARCH_FILTER,
            "order_by": [SEARCH_ORDER_BY],
            "max_results": SEARCH_MAX_RESULTS,
        }
        # Freshly created runs: on PostgreSQL, give autovacuum (naptime 1 s on the benchmark
        # cluster) the time to ANALYZE them; with the statistics of empty tables its planner
        # loops over every run. Untimed, for every server alike.
        time.sleep(SETTLE_S)
        first, _ = self.search(experiment_id, **query)  # also the warm-up
        found = [r["info"]["run_id"] for r in first.get("runs", [])]
        check(
            found == expected,
            f"search returned {len(found)} runs that differ from the expected top "
            f"{len(expected)} by m2 (first: {found[:3]} vs {expected[:3]})",
        )
        times = []
        for _ in range(self.sizes.search_reps):
            body, elapsed = self.search(experiment_id, **query)
            times.append(elapsed)
            check(len(body.get("runs", [])) == len(found), "search answers changed")
        return {
            "runs": len(self.runs),
            "returned": len(found),
            "reps": len(times),
            "median_ms": statistics.median(times) * 1000,
            "times_ms": [t * 1000 for t in times],
        }

    def paging_workload(self) -> Result:
        """Every run of the experiment, ``page_size`` per page; median total exchange time."""
        experiment_id = self.runs_experiment_id
        check(experiment_id is not None, "paging needs the runs workload first")
        assert experiment_id is not None
        times, pages = [], 0
        max_pages = len(self.runs) // self.sizes.page_size + 2
        for _ in range(self.sizes.paging_reps):
            seen: list[str] = []
            token, pages, total = None, 0, 0.0
            while pages < max_pages:
                extra: dict[str, str] = {"page_token": token} if token else {}
                body, elapsed = self.search(
                    experiment_id, max_results=self.sizes.page_size, **extra
                )
                total += elapsed
                seen.extend(r["info"]["run_id"] for r in body.get("runs", []))
                pages += 1
                token = body.get("next_page_token")
                if not token:
                    break
            times.append(total)
            check(
                len(seen) == len(self.runs) and set(seen) == set(self.runs),
                f"paging saw {len(seen)} runs ({len(set(seen))} distinct) in {pages} pages, "
                f"expected each of {len(self.runs)} once",
            )
        return {
            "runs": len(self.runs),
            "page_size": self.sizes.page_size,
            "pages": pages,
            "median_s": statistics.median(times),
            "times_s": times,
        }

    def history_workload(self) -> Result:
        """``metrics/get-history`` of a ``history_points`` series; median exchange time."""
        s = self.sizes
        run_id = self.create_run(self.create_experiment("bench-history"), "history")["run_id"]
        self.log_series(run_id, "series", s.history_points, s.history_chunk)
        times = []
        for _ in range(s.history_reps):
            points, elapsed = self.history(run_id, "series")
            times.append(elapsed)
            steps_seen = {int(p["step"]) for p in points}
            check(
                len(points) == s.history_points and steps_seen == set(range(s.history_points)),
                f"get-history returned {len(points)} points ({len(steps_seen)} distinct "
                f"steps), expected {s.history_points}",
            )
        return {
            "points": s.history_points,
            "reps": len(times),
            "median_s": statistics.median(times),
            "times_s": times,
        }

    def runs_get_workload(self) -> Result:
        """``runs/get`` of one run over ``connections`` concurrent keep-alive connections."""
        s = self.sizes
        experiment_id = self.create_experiment("bench-runs-get")
        params, metrics, tags = self._run_payloads(1)[0]
        run_id = self._create_full_run(experiment_id, 0, params, metrics, tags)
        run = self.call("GET", "runs/get", params={"run_id": run_id})["run"]
        check(run["info"]["run_id"] == run_id, f"runs/get returned another run: {run['info']}")
        target = f"{API}/runs/get?{urllib.parse.urlencode({'run_id': run_id})}"
        with rss.PeakSampler(self.server_pid) as sampler:
            stats = loadgen.hammer(
                self.http_kind, self.url, target, run_id.encode(), s.connections, s.concurrency_s
            )
        total = stats.ok + stats.bad
        check(stats.bad == 0, f"{stats.bad} of {total} runs/get answers were not 200 with the run")
        check(total >= s.connections, f"only {total} runs/get requests in {stats.wall_s:.1f} s")
        return {
            "connections": s.connections,
            "requests": stats.ok,
            "seconds": stats.wall_s,
            "requests_per_s": stats.ok / stats.wall_s,
            "p50_ms": statistics.median(stats.latencies) * 1000,
            "p99_ms": statistics.quantiles(stats.latencies, n=100)[98] * 1000,
            "client_cpu_fraction": stats.client_cpu_s / stats.wall_s,
            "rss_peak_mb": sampler.peak_mb,
            "rss_samples": sampler.samples,
        }


def run_group(
    url: str,
    group: str,
    sizes: ServerSizes,
    artifacts: str,
    http_kind: str,
    **options: Any,
) -> tuple[dict[str, Result], bool]:
    """Run one group; per-workload results and overall success.

    ``options`` go to :class:`benchmarks.server_api.ApiClient` (``server``,
    ``server_pid``, ``artifact_file``).
    """
    results: dict[str, Result] = {}
    ok = True
    bench = RawWorkloads(http_kind, url, sizes, artifacts, **options)
    try:
        methods: dict[str, Callable[[], Result]] = {
            "log_batch": bench.log_batch_workload,
            "runs": bench.runs_workload,
            "search": bench.search_workload,
            "paging": bench.paging_workload,
            "history": bench.history_workload,
            "runs_get": bench.runs_get_workload,
            "runs_get_workers": bench.runs_get_workload,
            "artifacts": bench.artifacts_workload,
            "artifacts_small": bench.small_artifacts_workload,
            "history_paged": bench.history_paged_workload,
            "history_bulk": bench.history_bulk_workload,
            "history_downsampled": bench.history_downsampled_workload,
        }
        for name in GROUPS[group]:
            try:
                results[name] = methods[name]()
            except Exception as exc:  # report every failure, keep going with the rest
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                ok = False
    finally:
        bench.http.close()
    return results, ok


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON result on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--group", required=True, choices=sorted(GROUPS))
    parser.add_argument("--artifacts", choices=("proxied", "local-get"), default="proxied")
    parser.add_argument("--http-client", choices=("stdlib", "httpx"), default="stdlib")
    parser.add_argument("--quick", action="store_true", help="use the small smoke-test sizes")
    parser.add_argument("--server", default="", help="the server's name (runyard must serve all)")
    parser.add_argument(
        "--server-pid", type=int, help="the server's pid: its process tree's RSS is sampled"
    )
    parser.add_argument(
        "--artifact-file",
        nargs=2,
        metavar=("PATH", "SHA256"),
        help="a prepared file of the artifact size (default: generated in the working directory)",
    )
    args = parser.parse_args(argv)
    host = urllib.parse.urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"refusing a non-loopback server URL: {args.url}")
    sizes = SERVER_QUICK if args.quick else SERVER_FULL
    results, ok = run_group(
        args.url,
        args.group,
        sizes,
        args.artifacts,
        args.http_client,
        server=args.server,
        server_pid=args.server_pid,
        artifact_file=None if args.artifact_file is None else tuple(args.artifact_file),
    )
    payload = {
        "url": args.url,
        "group": args.group,
        "http_client": args.http_client,
        "python": platform.python_version(),
        "sizes": asdict(sizes),
        "results": results,
    }
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
