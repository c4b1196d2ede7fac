"""Client workloads against a tracking server: the official MLflow client, or runyard's.

Executed as a script with ``MLFLOW_TRACKING_URI`` pointing at the server under test, by the
MLflow venv's interpreter (``--library mlflow``, the default) or by runyard's
(``--library runyard``: the script then runs ``import runyard as mlflow``, what a user who
switched writes)::

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 \\
        python benchmarks/client_workload.py --group client_log_metric --calls 1000

Groups:

- ``client_log_metric``: ``--calls`` × ``mlflow.log_metric`` in one run, each
  call timed (calls/s over the loop, p50 latency), and the whole run timed from
  ``start_run`` until ``end_run`` has returned (end to end); then the stored history
  is read back and counted;
- ``client_log_metric_async``: the same with MLflow's asynchronous logging
  (``MLFLOW_ENABLE_ASYNC_LOGGING=true``, set by the caller); ``mlflow.flush_async_logging()``
  runs before ``end_run``, inside the end-to-end time, since ``end_run`` alone does not wait
  for the queued values to be stored;
- ``client_runs``: ``--runs`` × ``with start_run(): log_params(5);
  log_metrics(5); set_tags(3)``, then the runs are counted with ``search_runs``;
- ``client_log_metric_own``, ``client_runs_own`` (``--library runyard``): ``client_log_metric``
  and ``client_runs`` through runyard's client. runyard's ``end_run`` returns once every
  queued value is stored, so nothing extra is called.

Prints one JSON object on the last line of stdout; exits with status 1 when the
stored data does not verify. Standard library and the client library only.
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
from typing import Any

Result = dict[str, Any]
GROUPS: dict[str, tuple[str, ...]] = {
    "client_log_metric": ("client_log_metric",),
    "client_log_metric_async": ("client_log_metric_async",),
    "client_runs": ("client_runs",),
    "client_log_metric_own": ("client_log_metric_own",),
    "client_runs_own": ("client_runs_own",),
}


def check(condition: bool, message: str) -> None:
    """Raise ``AssertionError`` with ``message`` unless ``condition``."""
    if not condition:
        raise AssertionError(message)


def log_metric_loop(mlflow: Any, calls: int, flush_async: bool = False) -> Result:
    """``calls`` × ``log_metric`` in one run; per-call latency and rate over the loop, and the
    rate over the whole run, ``start_run`` → ``end_run`` returned (all stored)."""
    mlflow.set_experiment("bench-client-log-metric")  # untimed: creates the experiment
    latencies = []
    run_start = time.perf_counter()
    with mlflow.start_run() as run:
        loop_start = time.perf_counter()
        for i in range(calls):
            sent = time.perf_counter()
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
            latencies.append(time.perf_counter() - sent)
        loop_s = time.perf_counter() - loop_start
        if flush_async:
            mlflow.flush_async_logging()
    total_s = time.perf_counter() - run_start
    stored = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    check(len(stored) == calls, f"get_metric_history returned {len(stored)}, expected {calls}")
    check({m.step for m in stored} == set(range(calls)), "stored steps differ from logged ones")
    return {
        "calls": calls,
        "loop_s": loop_s,
        "calls_per_s": calls / loop_s,
        "total_s": total_s,
        "end_to_end_calls_per_s": calls / total_s,
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


def run_workload(mlflow: Any, name: str, args: argparse.Namespace) -> Result:
    """The workload ``name`` of a group."""
    if name == "client_log_metric_async":
        check(
            os.environ.get("MLFLOW_ENABLE_ASYNC_LOGGING") == "true",
            "client_log_metric_async needs MLFLOW_ENABLE_ASYNC_LOGGING=true",
        )
        return log_metric_loop(mlflow, args.calls, flush_async=True)
    if name.startswith("client_log_metric"):
        return log_metric_loop(mlflow, args.calls)
    return create_runs(mlflow, args.runs)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON result on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", required=True, choices=sorted(GROUPS))
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--library", choices=("mlflow", "runyard"), default="mlflow")
    args = parser.parse_args(argv)
    check(
        args.group.endswith("_own") == (args.library == "runyard"),
        "the *_own groups go with --library runyard, and only they",
    )
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    check(uri.startswith(("http://127.0.0.1:", "http://localhost:")), f"not a loopback URI: {uri}")
    out = sys.stdout
    results: dict[str, Result] = {}
    ok = True
    with contextlib.redirect_stdout(sys.stderr):
        mlflow: Any = importlib.import_module(args.library)
        for name in GROUPS[args.group]:
            try:
                results[name] = run_workload(mlflow, name, args)
            except Exception as exc:
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                ok = False
    payload = {
        "library": args.library,
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
