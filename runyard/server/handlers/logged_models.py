"""Logged-model endpoints (MLflow 3, spec §2.6) and ``POST runs/outputs``.

Paths carry the model id (``/logged-models/{model_id}``); the path is authoritative over a
``model_id`` in the body. As in MLflow, ``POST .../params`` still requires ``model_id`` in the
body. The artifact endpoints list and serve the files under the model's artifact location,
resolving ``mlflow-artifacts:`` locations against the server's artifact destination.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from starlette.responses import Response

from runyard.entities import (
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
)
from runyard.errors import InvalidParameterValue
from runyard.protocol.codec import file_info_to_json
from runyard.protocol.logged_model_codec import logged_model_to_json
from runyard.protocol.requests import Field, missing_parameter
from runyard.server.context import ServerContext

# The file response of the artifact proxy (sendfile for local files, streamed otherwise).
from runyard.server.handlers.artifacts import _file_response
from runyard.server.routing import Endpoint, page_response
from runyard.store.artifact import clean_artifact_path

__all__ = ["ENDPOINTS"]

T = TypeVar("T")
MODEL_ID = Field("model_id")
_TAGS = ("models",)


def _pairs(items: Iterable[Mapping[str, Any]], name: str, cls: Callable[[str, str], T]) -> list[T]:
    """``[{"key", "value"}]`` messages as entities; a missing key is MLflow's missing field."""
    out = []
    for index, item in enumerate(items):
        key = item.get("key")
        if key is None or key == "":
            raise missing_parameter(f"{name}[{index}].key")
        value = item.get("value")
        out.append(cls(str(key), "" if value is None else str(value)))
    return out


def _model(ctx: ServerContext, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
    return {"model": logged_model_to_json(ctx.tracking().get_logged_model(model_id, allow_deleted))}


# -- the model ---------------------------------------------------------------------------------
async def create_logged_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST logged-models: a new PENDING model."""
    model = ctx.tracking().create_logged_model(
        p["experiment_id"],
        p["name"],
        p["source_run_id"],
        _pairs(p["tags"], "tags", LoggedModelTag),
        _pairs(p["params"], "params", LoggedModelParameter),
        p["model_type"],
    )
    return {"model": logged_model_to_json(model)}


async def get_logged_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET logged-models/{model_id} (``allow_deleted=true`` shows a deleted model)."""
    return _model(ctx, p["model_id"], bool(p["allow_deleted"]))


async def finalize_logged_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """PATCH logged-models/{model_id}: the final status, by name or number."""
    if p["status"] is None:
        raise missing_parameter("status")
    status = LoggedModelStatus.parse(p["status"])
    if status is LoggedModelStatus.UNSPECIFIED:
        raise InvalidParameterValue(
            "A logged model is finalized with LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED, "
            f"not {status.proto_name}."
        )
    model = ctx.tracking().finalize_logged_model(p["model_id"], status)
    return {"model": logged_model_to_json(model)}


async def delete_logged_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE logged-models/{model_id}: a soft delete."""
    ctx.tracking().delete_logged_model(p["model_id"])
    return {}


async def search_logged_models(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST logged-models/search: one page, newest first unless ordered otherwise."""
    page = ctx.tracking().search_logged_models(
        p["experiment_ids"],
        p["filter"],
        p["datasets"],
        p["max_results"],
        p["order_by"],
        p["page_token"],
    )
    return page_response("models", [logged_model_to_json(m) for m in page], page.token)


# -- tags and params ---------------------------------------------------------------------------
async def set_logged_model_tags(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """PATCH logged-models/{model_id}/tags: upserts; MLflow answers ``{}``."""
    ctx.tracking().set_logged_model_tags(p["model_id"], _pairs(p["tags"], "tags", LoggedModelTag))
    return {}


async def delete_logged_model_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE logged-models/{model_id}/tags/{tag_key}."""
    ctx.tracking().delete_logged_model_tag(p["model_id"], p["tag_key"])
    return {}


async def log_logged_model_params(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST logged-models/{model_id}/params."""
    params = _pairs(p["params"], "params", LoggedModelParameter)
    ctx.tracking().log_logged_model_params(p["model_id"], params)
    return {}


# -- artifacts ---------------------------------------------------------------------------------
async def list_logged_model_artifacts(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET logged-models/{model_id}/artifacts/directories: paths relative to the model root."""
    root = ctx.tracking().get_logged_model(p["model_id"]).artifact_location
    path = clean_artifact_path(p["artifact_directory_path"])
    files = ctx.repo_for(root).list_artifacts(path or None)
    out: dict[str, Any] = {"root_uri": root}
    if files:
        out["files"] = [file_info_to_json(f) for f in files]
    return out


async def get_logged_model_artifact(ctx: ServerContext, p: dict[str, Any]) -> Response:
    """GET logged-models/{model_id}/artifacts/files?artifact_file_path= (the UI's download)."""
    path = clean_artifact_path(p["artifact_file_path"])
    if not path:
        raise missing_parameter("artifact_file_path")
    model_id = p["model_id"]
    root = ctx.tracking().get_logged_model(model_id).artifact_location.rstrip("/")
    parent, name = posixpath.dirname(path), posixpath.basename(path)
    repo = ctx.repo_for(f"{root}/{parent}" if parent else root)
    return _file_response(repo, name, f"No such artifact: '{path}' in logged model {model_id}")


# -- runs --------------------------------------------------------------------------------------
async def log_outputs(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/outputs: the logged models a run produced, each at a step."""
    outputs = []
    for index, item in enumerate(p["models"]):
        model_id = item.get("model_id")
        if not model_id:
            raise missing_parameter(f"models[{index}].model_id")
        try:
            step = int(item.get("step") or 0)
        except (TypeError, ValueError):
            raise InvalidParameterValue(
                f"Invalid value {item.get('step')!r} for 'models[{index}].step': expected an "
                "integer."
            ) from None
        outputs.append(LoggedModelOutput(str(model_id), step))
    ctx.tracking().log_outputs(p["run_id"], outputs)
    return {}


def _messages(name: str) -> Field:
    return Field(name, "message", repeated=True)


ENDPOINTS = [
    Endpoint(
        "/logged-models",
        ("POST",),
        create_logged_model,
        (
            Field("experiment_id", required=True),
            Field("name"),
            Field("model_type"),
            Field("source_run_id"),
            _messages("params"),
            _messages("tags"),
        ),
        "Create a logged model",
        tags=_TAGS,
    ),
    Endpoint(
        "/logged-models/search",
        ("POST",),
        search_logged_models,
        (
            Field("experiment_ids", repeated=True),
            Field("filter"),
            _messages("datasets"),
            Field("max_results", "int"),
            _messages("order_by"),
            Field("page_token"),
        ),
        "Search logged models",
        tags=_TAGS,
        reads_replica=True,
    ),
    Endpoint(
        "/logged-models/{model_id}",
        ("GET", "PATCH", "DELETE"),
        get_logged_model,
        (MODEL_ID, Field("allow_deleted", "bool"), Field("status")),
        "Get (GET), finalize (PATCH) or delete (DELETE) a logged model",
        tags=_TAGS,
        method_handlers=(("PATCH", finalize_logged_model), ("DELETE", delete_logged_model)),
    ),
    Endpoint(
        "/logged-models/{model_id}/tags",
        ("PATCH",),
        set_logged_model_tags,
        (MODEL_ID, _messages("tags")),
        "Set tags of a logged model",
        tags=_TAGS,
    ),
    Endpoint(
        "/logged-models/{model_id}/tags/{tag_key}",
        ("DELETE",),
        delete_logged_model_tag,
        (MODEL_ID,),
        "Delete a tag of a logged model",
        tags=_TAGS,
    ),
    Endpoint(
        "/logged-models/{model_id}/params",
        ("POST",),
        log_logged_model_params,
        (Field("model_id", required=True), _messages("params")),
        "Log params of a logged model",
        tags=_TAGS,
    ),
    Endpoint(
        "/logged-models/{model_id}/artifacts/directories",
        ("GET",),
        list_logged_model_artifacts,
        (Field("artifact_directory_path"), Field("page_token")),
        "List a logged model's artifacts",
        tags=_TAGS,
    ),
    Endpoint(
        "/logged-models/{model_id}/artifacts/files",
        ("GET",),
        get_logged_model_artifact,
        (Field("artifact_file_path"),),
        "Download a file of a logged model (the web UI's link)",
        tags=_TAGS,
    ),
    Endpoint(
        "/runs/outputs",
        ("POST",),
        log_outputs,
        (
            Field("run_id", required=True, aliases=("run_uuid",)),
            Field("models", "message", required=True, repeated=True),
        ),
        "Record the logged models a run produced",
    ),
]
