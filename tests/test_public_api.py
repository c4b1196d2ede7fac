"""The public API is declared once: ``__all__`` is sorted and complete."""

from __future__ import annotations

import types

import runyard

MLFLOW_FLUENT_NAMES = [
    "set_tracking_uri",
    "get_tracking_uri",
    "set_experiment",
    "start_run",
    "end_run",
    "active_run",
    "last_active_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "set_tag",
    "set_tags",
    "delete_tag",
    "log_artifact",
    "log_artifacts",
    "log_text",
    "log_dict",
    "log_image",
    "log_figure",
    "log_table",
    "log_input",
    "get_run",
    "search_runs",
    "get_artifact_uri",
    "MlflowClient",
    "register_model",
    "autolog",
    "search_registered_models",
    "search_model_versions",
    "search_logged_models",
    "get_logged_model",
    "last_logged_model",
    "pyfunc",
    "sklearn",
    "pytorch",
    "xgboost",
    "lightgbm",
    "models",
]


def test_all_is_sorted_and_complete() -> None:
    assert runyard.__all__ == sorted(runyard.__all__)
    public = {
        name
        for name, value in vars(runyard).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public |= {"__version__"}
    modules = {n for n, v in vars(runyard).items() if isinstance(v, types.ModuleType)}
    assert public <= set(runyard.__all__)
    assert set(runyard.__all__) <= public | modules


def test_mlflow_names_exist() -> None:
    missing = [name for name in MLFLOW_FLUENT_NAMES if not hasattr(runyard, name)]
    assert missing == []
    from runyard.tracking import MlflowClient

    assert MlflowClient is runyard.MlflowClient is runyard.Client
