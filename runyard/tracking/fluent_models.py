"""Fluent model and registry functions: ``runyard.register_model``, ``search_registered_models``,
``search_model_versions``, and MLflow 3's logged-model functions (``last_logged_model``, ...)."""

from __future__ import annotations

from typing import Any

from runyard.entities import LoggedModel, ModelVersion, RegisteredModel
from runyard.tracking import fluent

__all__ = [
    "delete_logged_model_tag",
    "finalize_logged_model",
    "get_logged_model",
    "initialize_logged_model",
    "last_logged_model",
    "log_model_params",
    "register_model",
    "search_logged_models",
    "search_model_versions",
    "search_registered_models",
    "set_logged_model_tags",
]

# What the 3.x client sends with every search_registered_models: prompts are not models.
_NOT_A_PROMPT = "tags.`mlflow.prompt.is_prompt` != 'true'"
# Page sizes of the searches that collect every page (MLflow's client uses the same).
_REGISTERED_MODELS_PAGE = 100
_MODEL_VERSIONS_PAGE = 10000
_LOGGED_MODELS_PAGE = 100


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int = 300,
    *,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register ``model_uri`` (``runs:/<run>/model``, ``models:/<model_id>``, a path) as a new
    version of ``name``, creating the registered model if needed."""
    from runyard.models.logging import register_model as _register

    version: ModelVersion = _register(model_uri, name, await_registration_for, tags=tags)
    return version


def _all_pages(fetch: Any, page_size: int, max_results: int | None) -> list[Any]:
    items: list[Any] = []
    token = None
    while max_results is None or len(items) < max_results:
        want = page_size if max_results is None else min(page_size, max_results - len(items))
        page = fetch(want, token)
        items.extend(page)
        token = page.token
        if not token:
            break
    return items


def search_registered_models(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[RegisteredModel]:
    """Every registered model matching the filter (all pages), prompts excluded."""
    client = fluent._client()
    combined = f"{filter_string} AND {_NOT_A_PROMPT}" if filter_string else _NOT_A_PROMPT
    return _all_pages(
        lambda n, tok: client.search_registered_models(combined, n, order_by, tok),
        _REGISTERED_MODELS_PAGE,
        max_results,
    )


def search_model_versions(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[ModelVersion]:
    """Every model version matching the filter (all pages)."""
    client = fluent._client()
    return _all_pages(
        lambda n, tok: client.search_model_versions(filter_string, n, order_by, tok),
        _MODEL_VERSIONS_PAGE,
        max_results,
    )


def get_logged_model(model_id: str) -> LoggedModel:
    """The logged model ``m-...``."""
    return fluent._client().get_logged_model(model_id)


def last_logged_model() -> LoggedModel | None:
    """The model most recently logged by this process, or None."""
    from runyard.models.logging import last_logged_model_id

    model_id = last_logged_model_id()
    return get_logged_model(model_id) if model_id else None


def initialize_logged_model(
    name: str | None = None,
    source_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    model_type: str | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """Create a PENDING logged model in the active (or given) experiment; it becomes the
    ``last_logged_model()``, as in MLflow."""
    from runyard.models.logging import _remember

    run = fluent.active_run()
    if source_run_id is None and run is not None:
        source_run_id = run.info.run_id
    exp = experiment_id or (run.info.experiment_id if run else fluent.active_experiment_id())
    model = fluent._client().create_logged_model(
        exp, name, source_run_id, tags=tags, params=params, model_type=model_type
    )
    _remember(model.model_id)
    return model


def finalize_logged_model(model_id: str, status: Any) -> LoggedModel:
    """Mark a logged model READY or UPLOAD_FAILED."""
    return fluent._client().finalize_logged_model(model_id, status)


def set_logged_model_tags(model_id: str, tags: dict[str, Any]) -> None:
    """Create or replace tags on a logged model."""
    fluent._client().set_logged_model_tags(model_id, tags)


def delete_logged_model_tag(model_id: str, key: str) -> None:
    """Remove a tag from a logged model."""
    fluent._client().delete_logged_model_tag(model_id, key)


def log_model_params(params: dict[str, Any], model_id: str | None = None) -> None:
    """Record parameters of a logged model (default: the last one logged)."""
    from runyard.models.logging import last_logged_model_id

    target = model_id or last_logged_model_id()
    if target is None:
        from runyard.errors import InvalidParameterValue

        raise InvalidParameterValue("No model_id given and no model was logged yet.")
    fluent._client().log_model_params(target, params)


def search_logged_models(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    datasets: list[dict[str, Any]] | None = None,
    max_results: int | None = None,
    order_by: list[dict[str, Any]] | None = None,
    output_format: str = "pandas",
) -> Any:
    """Logged models of the experiments (default: the active one), as a DataFrame or a list."""
    client = fluent._client()
    exps = [str(e) for e in (experiment_ids or [fluent.active_experiment_id()])]
    models: list[LoggedModel] = _all_pages(
        lambda n, tok: client.search_logged_models(exps, filter_string, datasets, n, order_by, tok),
        _LOGGED_MODELS_PAGE,
        max_results,
    )
    if output_format == "list":
        return models
    if output_format != "pandas":
        from runyard.errors import InvalidParameterValue

        raise InvalidParameterValue(
            f"Unsupported output_format '{output_format}': use 'pandas' or 'list'."
        )
    import pandas as pd

    return pd.DataFrame([_row(m) for m in models])


def _row(model: LoggedModel) -> dict[str, Any]:
    return {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "artifact_location": model.artifact_location,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "status": str(model.status),
        "model_type": model.model_type,
        "source_run_id": model.source_run_id,
        "status_message": model.status_message,
        "tags": dict(model.tags),
        "params": dict(model.params),
        "metrics": list(model.metrics or []),
    }
