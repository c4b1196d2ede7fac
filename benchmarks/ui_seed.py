"""Seed a tracking store for the UI benchmark; runs under runyard or under MLflow's venv.

``python ui_seed.py --lib runyard|mlflow --db PATH --artifacts DIR --runs N [--chart-runs R
--chart-points P]`` writes, straight through the library's own SQL store (no server): an
experiment ``bench-runs`` of N runs (10 params ``p0..p9``, 10 metrics ``m0..m9``, names ``run-<i>``,
start times increasing) and, when asked, an experiment ``bench-charts`` of R runs with a P-point
``loss`` series each. Prints one JSON line: experiment ids, chart run ids, seconds taken.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import random
import time
from typing import Any

T0 = 1_700_000_000_000
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")


def _store(lib: str, db: str, artifacts: str) -> Any:
    if lib == "runyard":
        from runyard.store.sql.store import SqlTrackingStore

        return SqlTrackingStore(f"sqlite:///{db}", artifacts)
    module = importlib.import_module("mlflow.store.tracking.sqlalchemy_store")
    return module.SqlAlchemyStore(f"sqlite:///{db}", artifacts)


def seed(
    lib: str, db: str, artifacts: str, runs: int, chart_runs: int, chart_points: int
) -> dict[str, Any]:
    """Fill the store; what was made."""
    entities = importlib.import_module(f"{lib}.entities")
    Metric, Param = entities.Metric, entities.Param
    store = _store(lib, db, artifacts)
    rng = random.Random(0)
    began = time.perf_counter()
    exp = store.create_experiment("bench-runs")
    for i in range(runs):
        run = store.create_run(exp, "bench", T0 + i * 1000, [], f"run-{i}")
        params = [Param(f"p{k}", str(rng.randint(0, 1000))) for k in range(8)]
        params += [Param("p8", rng.choice(OPTIMIZERS)), Param("p9", str(rng.random()))]
        metrics = [Metric(f"m{k}", rng.random(), T0 + i * 1000, 0) for k in range(10)]
        store.log_batch(run.info.run_id, metrics, params, [])
    chart_ids: list[str] = []
    chart_exp = None
    if chart_runs:
        chart_exp = store.create_experiment("bench-charts")
        for r in range(chart_runs):
            run = store.create_run(chart_exp, "bench", T0 + r, [], f"chart-{r}")
            run_id = run.info.run_id
            for start in range(0, chart_points, 1000):
                store.log_batch(
                    run_id,
                    [
                        Metric("loss", math.exp(-s / 3000) + 0.02 * math.sin(s / 5 + r), T0 + s, s)
                        for s in range(start, min(start + 1000, chart_points))
                    ],
                    [],
                    [],
                )
            chart_ids.append(run_id)
    return {
        "experiment_id": str(exp),
        "chart_experiment_id": None if chart_exp is None else str(chart_exp),
        "chart_run_ids": chart_ids,
        "seconds": time.perf_counter() - began,
    }


def main() -> None:
    """Parse the arguments, seed, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", choices=("runyard", "mlflow"), required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--chart-runs", type=int, default=0)
    parser.add_argument("--chart-points", type=int, default=0)
    args = parser.parse_args()
    result = seed(args.lib, args.db, args.artifacts, args.runs, args.chart_runs, args.chart_points)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
