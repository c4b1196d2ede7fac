"""runyard: an ML lifecycle platform that speaks MLflow. ``import runyard as mlflow`` works.

This module holds imports and ``__all__`` only; ``tests/test_public_api.py`` keeps them in step.
"""

from importlib import import_module as _import_module
from types import ModuleType as _ModuleType

from runyard import artifacts, data, entities, exceptions, tracking
from runyard._project_run import run

# The function, imported eagerly: were it bound lazily, loading the ``runyard.autolog`` package
# (by ``runyard.sklearn.autolog()``) would set ``runyard.autolog`` to the package instead.
from runyard.autolog import autolog
from runyard.exceptions import MlflowException
from runyard.tracking.client import Client, MlflowClient
from runyard.tracking.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_tag,
    end_run,
    flush,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_parent_run,
    get_run,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    search_experiments,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_tag,
    set_tags,
    start_run,
)
from runyard.tracking.fluent_models import (
    delete_logged_model_tag,
    finalize_logged_model,
    get_logged_model,
    initialize_logged_model,
    last_logged_model,
    log_model_params,
    register_model,
    search_logged_models,
    search_model_versions,
    search_registered_models,
    set_logged_model_tags,
)
from runyard.tracking.search import search_runs
from runyard.tracking.uri import (
    get_registry_uri,
    get_tracking_uri,
    is_tracking_uri_set,
    set_registry_uri,
    set_tracking_uri,
)
from runyard.version import __version__

# Model submodules import pandas, numpy or an ML framework; they load on first attribute access
# (``runyard.sklearn.log_model``) so ``import runyard`` stays fast. Add new flavors here.
_LAZY_SUBMODULES = frozenset(
    {
        "deployments",
        "lightgbm",
        "models",
        "projects",
        "pyfunc",
        "pytorch",
        "sklearn",
        "types",
        "xgboost",
    }
)


def __getattr__(name: str) -> _ModuleType:
    if name in _LAZY_SUBMODULES:
        return _import_module(f"runyard.{name}")
    raise AttributeError(f"module 'runyard' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES)


__all__ = [
    "ActiveRun",
    "Client",
    "MlflowClient",
    "MlflowException",
    "__version__",
    "active_run",
    "artifacts",
    "autolog",
    "create_experiment",
    "data",
    "delete_experiment",
    "delete_logged_model_tag",
    "delete_tag",
    "end_run",
    "entities",
    "exceptions",
    "finalize_logged_model",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_logged_model",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "initialize_logged_model",
    "is_tracking_uri_set",
    "last_active_run",
    "last_logged_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model_params",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "register_model",
    "run",
    "search_experiments",
    "search_logged_models",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_logged_model_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "tracking",
]
