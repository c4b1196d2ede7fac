"""Official MLflow client workloads against a tracking server.

Executed as a script by the MLflow venv's interpreter, with
``MLFLOW_TRACKING_URI`` pointing at the server under test::

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 \\
        python benchmarks/client_workload.py --group client_log_metric --calls 1000

Groups:

- ``client_log_metric``: ``--calls`` × ``mlflow.log_metric`` in one run, each
  call timed (calls/s over the loop, p50 latency), then the stored history is
  read back and counted;
- ``client_runs``: ``--runs`` × ``with start_run(): log_params(5);
  log_metrics(5); set_tags(3)``, then the runs are counted with ``search_runs``.

Prints one JSON object on the last line of stdout; exits with status 1 when the
stored data does not verify. Standard library and mlflow only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import time
import traceback
from typing import Any

Result = dict[str, Any]
GROUPS: dict[str, tuple[str, ...]] = {
    "client_log_metric": ("client_log_metric",),
    "client_runs": ("client_runs",),
}


def check(condition: bool, message: str) -> None:
    """Raise ``AssertionError`` with ``message`` unless ``condition``."""
    if not condition:
        raise AssertionError(message)


def log_metric_loop(mlflow: Any, calls: int) -> Result:
    """``calls`` × ``log_metric`` in one run; per-call latency and rate."""
    mlflow.set_experiment("bench-client-log-metric")  # untimed: creates the experiment
    latencies = []
    with mlflow.start_run() as run:
        loop_start = time.perf_counter()
        for i in range(calls):
            sent = time.perf_counter()
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
            latencies.append(time.perf_counter() - sent)
        loop_s = time.perf_counter() - loop_start
    stored = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    check(len(stored) == calls, f"get_metric_history returned {len(stored)}, expected {calls}")
    check({m.step for m in stored} == set(range(calls)), "stored steps differ from logged ones")
    return {
        "calls": calls,
        "loop_s": loop_s,
        "calls_per_s": calls / loop_s,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
    }


def create_runs(mlflow: Any, runs: int) -> Result:
    """``runs`` runs of 5 params, 5 metrics and 3 tags each, through the fluent API."""
    experiment_id = mlflow.set_experiment("bench-client-runs").experiment_id
    rng = random.Random(42)
    start = time.perf_counter()
    for i in range(runs):
        with mlflow.start_run():
            params = {"p0": str(i), "p1": rng.choice("xyz"), "p2": "adam", "p3": "4", "p4": "0.1"}
            mlflow.log_params(params)
            mlflow.log_metrics({f"m{k}": rng.random() for k in range(5)})
            mlflow.set_tags({"t0": "bench", "t1": f"group-{i % 10}", "t2": "v1"})
    elapsed = time.perf_counter() - start
    found = mlflow.search_runs([experiment_id], max_results=runs + 1, output_format="list")
    check(len(found) == runs, f"search_runs found {len(found)} runs, expected {runs}")
    sample = found[0].data
    check(len(sample.params) == 5 and len(sample.metrics) == 5, f"run data: {sample}")
    return {"runs": runs, "total_s": elapsed, "runs_per_s": runs / elapsed}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON result on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", required=True, choices=sorted(GROUPS))
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    check(uri.startswith(("http://127.0.0.1:", "http://localhost:")), f"not a loopback URI: {uri}")
    out = sys.stdout
    results: dict[str, Result] = {}
    ok = True
    with contextlib.redirect_stdout(sys.stderr):
        import mlflow

        try:
            if args.group == "client_log_metric":
                results["client_log_metric"] = log_metric_loop(mlflow, args.calls)
            else:
                results["client_runs"] = create_runs(mlflow, args.runs)
        except Exception as exc:
            traceback.print_exc()
            results[GROUPS[args.group][0]] = {"error": f"{type(exc).__name__}: {exc}"}
            ok = False
    payload = {
        "library": "mlflow",
        "version": mlflow.__version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "tracking_uri": uri,
        "group": args.group,
        "results": results,
    }
    out.write(json.dumps(payload) + "\n")
    out.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
