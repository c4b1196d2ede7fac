"""``<flavor>.log_model``: save a model, store it as an MLflow 3 logged model, link it to the
active run, and register it when asked (the official client's call sequence, spec §14.5).

1. create the LoggedModel (PENDING) in the active run's experiment (or the active experiment);
2. ``flavor.save_model`` into a temporary directory, with the MLmodel pointing at the model;
3. upload the directory to the model's artifact location;
4. finalize READY (UPLOAD_FAILED when anything above fails, and the error propagates);
5. record the model as an output of the run; 6. register it if ``registered_model_name``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from types import ModuleType
from typing import Any

from runyard.errors import ResourceAlreadyExists

__all__ = ["forget_last_logged_model", "last_logged_model_id", "log_model", "register_model"]

log = logging.getLogger(__name__)
_last = threading.local()
_last_any: list[str] = []


def forget_last_logged_model() -> None:
    """Forget the last logged model (tests; a fresh fluent state)."""
    _last.model_id = None
    _last_any.clear()


def last_logged_model_id() -> str | None:
    """The id of the model most recently logged in this thread (else in the process)."""
    found: str | None = getattr(_last, "model_id", None)
    return found or (_last_any[-1] if _last_any else None)


def _remember(model_id: str) -> None:
    _last.model_id = model_id
    _last_any[:] = [model_id]


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int = 300,
    *,
    tags: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> Any:
    """Register the model at ``model_uri`` as a new version of ``name`` (created if needed)."""
    from runyard.models.download import resolve_registry_source
    from runyard.tracking.client import Client

    client = Client(tracking_uri)
    with contextlib.suppress(ResourceAlreadyExists):
        client.create_registered_model(name)
    source, run_id = resolve_registry_source(client, model_uri)
    model_id = source[len("models:/") :] if source.startswith("models:/m-") else None
    version = client.create_model_version(
        name,
        source,
        run_id,
        tags=tags,
        await_creation_for=await_registration_for,
        model_id=model_id,
    )
    if model_id is not None:
        _record_registration(client, model_id, name, version.version)
    log.info("Created version %s of registered model '%s'.", version.version, name)
    return version


def _record_registration(client: Any, model_id: str, name: str, version: str) -> None:
    """MLflow keeps a logged model's registrations in its ``mlflow.modelVersions`` tag."""
    model = client.get_logged_model(model_id)
    try:
        entries = json.loads(model.tags.get("mlflow.modelVersions", "[]"))
    except ValueError:
        entries = []
    entries.append({"name": name, "version": str(version)})
    client.set_logged_model_tags(model_id, {"mlflow.modelVersions": json.dumps(entries)})


def log_model(
    flavor: ModuleType,
    name: str | None = None,
    *,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    await_registration_for: int = 300,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **save_kwargs: Any,
) -> Any:
    """Log a model with ``flavor.save_model(path=..., **save_kwargs)``; returns a ModelInfo."""
    from runyard.models.model import Model, ModelInfo
    from runyard.store.artifact import get_artifact_repository
    from runyard.tracking import fluent
    from runyard.tracking.client import Client

    name = name or artifact_path or "model"
    client = Client()
    run = fluent.active_run()
    run_id = run.info.run_id if run is not None else None
    if model_id is not None:
        # Only its location is needed here: finalize below returns the model with its metrics.
        client.flush()
        model = client.store.get_logged_model(model_id, include_metrics=False)
    else:
        experiment_id = run.info.experiment_id if run is not None else fluent.active_experiment_id()
        # As MLflow 3: the model carries the run's params (the ones given here win).
        merged = {**client.get_run(run_id).data.params, **(params or {})} if run_id else params
        model = client.create_logged_model(
            experiment_id, name, run_id, tags=tags, params=merged, model_type=model_type
        )
    if run_id is not None:
        from runyard.entities import LoggedModelOutput

        # Linked before saving, so a failed save still shows on the run (as UPLOAD_FAILED).
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    _remember(model.model_id)
    try:
        with tempfile.TemporaryDirectory(prefix="runyard-model-") as tmp:
            local = os.path.join(tmp, "model")
            flavor.save_model(path=local, **save_kwargs)
            mlmodel = Model.load(local)
            mlmodel.artifact_path = model.artifact_location
            mlmodel.run_id = run_id
            mlmodel.model_id = model.model_id
            mlmodel.model_uuid = model.model_id
            mlmodel.save(os.path.join(local, "MLmodel"))
            repo = get_artifact_repository(model.artifact_location, client.tracking_uri)
            repo.log_artifacts(local)
    except BaseException:
        try:
            client.finalize_logged_model(model.model_id, "LOGGED_MODEL_UPLOAD_FAILED")
        except Exception:  # the original failure is the one to report
            log.debug("Could not mark %s as failed", model.model_id, exc_info=True)
        raise
    model = client.store.finalize_logged_model(
        model.model_id, "LOGGED_MODEL_READY", include_metrics=False
    )
    version = None
    if registered_model_name:
        version = register_model(
            f"models:/{model.model_id}", registered_model_name, await_registration_for
        )
    return _model_info(ModelInfo, mlmodel, model, version, name, client)


def _model_info(cls: Any, mlmodel: Any, model: Any, version: Any, name: str, client: Any) -> Any:
    return cls(
        artifact_path=model.artifact_location,
        flavors=mlmodel.flavors,
        model_uri=f"models:/{model.model_id}",
        model_uuid=mlmodel.model_uuid,
        run_id=mlmodel.run_id,
        saved_input_example_info=mlmodel.saved_input_example_info,
        signature=mlmodel.signature,
        utc_time_created=mlmodel.utc_time_created,
        mlflow_version=mlmodel.mlflow_version,
        metadata=mlmodel.metadata,
        registered_model_version=version.version if version is not None else None,
        model_id=model.model_id,
        name=name,
        params=dict(model.params),
        tags=dict(model.tags),
        # Read when asked for: a model trained for 1,000 iterations has thousands of points.
        metrics_loader=lambda: client.get_logged_model(model.model_id).metrics,
        creation_timestamp=model.creation_timestamp,
    )
