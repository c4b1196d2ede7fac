"""Parameter search (GridSearchCV, RandomizedSearchCV): best params and score, and one child run
per explored candidate (the ``max_tuning_runs`` best), as MLflow's sklearn autologging does."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from runyard.autolog._sklearn_utils import (
    estimator_tags,
    is_search_estimator,
    log_params,
    warn,
)
from runyard.autolog.config import AutologConfig
from runyard.autolog.runs import AUTOLOGGING_TAG
from runyard.tracking import fluent

__all__ = ["log_search_results"]

_EXCLUDED_PREFIXES = ("param", "split")


def _rank_column(config: AutologConfig, columns: list[str], max_runs: int) -> str | None:
    if "rank_test_score" in columns:
        return "rank_test_score"
    custom = next((c for c in columns if "rank_test_" in c), None)
    if custom is not None:
        warn(
            config,
            "Top %s child runs will be created based on ordering in %s column. You can choose "
            "not to limit the number of child runs created by setting `max_tuning_runs=None`.",
            max_runs,
            custom,
        )
    return custom


def _child_runs(config: AutologConfig, run_id: str, search: Any, integration: str) -> None:
    import numpy as np
    import pandas as pd

    seed = search.estimator
    base_params = seed.get_params(deep=not is_search_estimator(seed))
    results = pd.DataFrame.from_dict(search.cv_results_)
    max_runs = config.extra("max_tuning_runs", 5)
    if max_runs is not None:
        rank = _rank_column(config, list(results.columns), max_runs)
        results = results.nsmallest(max_runs, rank) if rank else results.head(max_runs)
    tags = {AUTOLOGGING_TAG: integration, **estimator_tags(seed)}
    for _, row in results.iterrows():
        child = fluent.start_run(nested=True, parent_run_id=run_id, tags=tags)
        try:
            child_id = child.info.run_id
            log_params(child_id, {**base_params, **dict(row.get("params", {}))})
            metrics = {
                str(key): float(value)
                for key, value in row.items()
                if not str(key).startswith(_EXCLUDED_PREFIXES)
                and isinstance(value, (int, float, np.number))
                and not isinstance(value, (bool, np.bool_))
            }
            fluent.log_metrics(metrics, run_id=child_id)
        finally:
            fluent.end_run()


def log_search_results(
    config: AutologConfig,
    run_id: str,
    search: Any,
    integration: str,
    log_best_model: Any,
) -> None:
    """Log a fitted search's best estimator (through ``log_best_model(estimator)``),
    ``best_cv_score``, ``best_<param>`` params, child runs and ``cv_results.csv``."""
    if hasattr(search, "best_estimator_") and config.log_models:
        try:
            log_best_model(search.best_estimator_)
        except Exception as exc:
            warn(config, "Failed to log the best estimator of the parameter search: %s", exc)
    if hasattr(search, "best_score_"):
        fluent.log_metrics({"best_cv_score": float(search.best_score_)}, run_id=run_id)
    if hasattr(search, "best_params_"):
        log_params(run_id, {f"best_{k}": v for k, v in search.best_params_.items()})
    if not hasattr(search, "cv_results_"):
        return
    try:
        _child_runs(config, run_id, search, integration)
    except Exception as exc:
        warn(
            config,
            "Encountered exception during creation of child runs for parameter search. "
            "Child runs may be missing. Exception: %s",
            exc,
        )
    try:
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix="runyard-autolog-") as tmp:
            path = os.path.join(tmp, "cv_results.csv")
            pd.DataFrame.from_dict(search.cv_results_).to_csv(path, index=False)
            fluent.log_artifact(path, run_id=run_id)
    except Exception as exc:
        warn(config, "Failed to log parameter search results as an artifact. Exception: %s", exc)
