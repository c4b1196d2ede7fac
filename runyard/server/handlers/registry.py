"""Model registry endpoints (spec §2.8), the cheat sheet's ``registry/register-model`` call, and
runyard's registry history (``GET /api/2.0/runyard/registered-models/history``).

Methods are MLflow's exactly: searches are GET only, ``get-latest-versions`` answers POST and
GET, updates are PATCH, and DELETE endpoints read their arguments from a JSON body. A new
version's unset ``description``, ``run_id`` and ``run_link`` are stored as ``""`` and a tag without
a value gets ``""``, as MLflow's server does (checked against ``mlflow server`` 3.17), so the JSON
matches; an update without a description clears it, as there.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any, cast

from runyard.entities import ModelVersionTag, RegisteredModelTag
from runyard.errors import InvalidParameterValue, ResourceAlreadyExists
from runyard.protocol.registry_codec import (
    model_version_to_json,
    registered_model_to_json,
    registry_event_to_json,
)
from runyard.protocol.requests import Field, missing_parameter
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint, page_response
from runyard.store.registry_base import (
    HISTORY_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    ModelRegistryStore,
)

__all__ = ["ENDPOINTS"]

NAME = Field("name", required=True)
VERSION = Field("version", required=True)
_TAGS = Field("tags", "message", repeated=True)
_REGISTRY = ("registry",)


def _registry(ctx: ServerContext) -> ModelRegistryStore:
    """The registry store: the tracking store, unless ``--registry-store-uri`` names another."""
    return cast(ModelRegistryStore, ctx.registry())


def _tags(items: list[dict[str, Any]], cls: type[Any]) -> list[Any]:
    tags = []
    for i, item in enumerate(items):
        if not item.get("key"):
            raise InvalidParameterValue(f"Missing value for required parameter 'tags[{i}].key'.")
        tags.append(cls(str(item["key"]), str(item.get("value") or "")))
    return tags


def _promotion(p: dict[str, Any], default: str) -> dict[str, Any]:
    """runyard's optional ``action``/``evidence``/``user_id`` fields: how a client's gated
    promotion, and who made a change, get into the history (MLflow clients never send them)."""
    return {"action": p["action"] or default, "evidence": p["evidence"], "user_id": p["user_id"]}


def _model(doc: Any) -> dict[str, Any]:
    return {"registered_model": registered_model_to_json(doc)}


def _version(doc: Any) -> dict[str, Any]:
    return {"model_version": model_version_to_json(doc)}


# -- registered models -----------------------------------------------------------------------
async def create_registered_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST registered-models/create."""
    tags = _tags(p["tags"], RegisteredModelTag)
    model = _registry(ctx).create_registered_model(p["name"], tags, p["description"])
    return _model(model)


async def get_registered_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET registered-models/get."""
    return _model(_registry(ctx).get_registered_model(p["name"]))


async def rename_registered_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST registered-models/rename."""
    return _model(_registry(ctx).rename_registered_model(p["name"], p["new_name"]))


async def update_registered_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """PATCH registered-models/update."""
    return _model(_registry(ctx).update_registered_model(p["name"], p["description"]))


async def delete_registered_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE registered-models/delete (name in the JSON body)."""
    _registry(ctx).delete_registered_model(p["name"])
    return {}


async def search_registered_models(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET registered-models/search."""
    max_results = p["max_results"]
    page = _registry(ctx).search_registered_models(
        p["filter"],
        SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT if max_results is None else max_results,
        p["order_by"],
        p["page_token"],
    )
    return page_response(
        "registered_models", [registered_model_to_json(m) for m in page], page.token
    )


async def get_latest_versions(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST (and GET) registered-models/get-latest-versions."""
    versions = _registry(ctx).get_latest_versions(p["name"], p["stages"])
    return page_response("model_versions", [model_version_to_json(v) for v in versions], None)


async def set_registered_model_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST registered-models/set-tag."""
    tag = RegisteredModelTag(p["key"], p["value"] or "")
    _registry(ctx).set_registered_model_tag(p["name"], tag)
    return {}


async def delete_registered_model_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE registered-models/delete-tag."""
    _registry(ctx).delete_registered_model_tag(p["name"], p["key"])
    return {}


# -- aliases ---------------------------------------------------------------------------------
async def set_registered_model_alias(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST registered-models/alias."""
    if p["version"] is None:
        raise missing_parameter("version")
    _registry(ctx).set_registered_model_alias(
        p["name"], p["alias"], p["version"], **_promotion(p, "set_alias")
    )
    return {}


async def delete_registered_model_alias(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE registered-models/alias."""
    _registry(ctx).delete_registered_model_alias(p["name"], p["alias"], user_id=p["user_id"])
    return {}


async def get_model_version_by_alias(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET registered-models/alias."""
    return _version(_registry(ctx).get_model_version_by_alias(p["name"], p["alias"]))


# -- model versions --------------------------------------------------------------------------
async def create_model_version(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST model-versions/create: READY at once, so clients never poll."""
    version = _registry(ctx).create_model_version(
        p["name"],
        p["source"],
        p["run_id"] or "",
        _tags(p["tags"], ModelVersionTag),
        p["run_link"] or "",
        p["description"] or "",
        model_id=p["model_id"],
        user_id=p["user_id"],
    )
    return _version(version)


def _run_of(source: str) -> str | None:
    """The run id in a ``runs:/<run_id>/<path>`` source."""
    if not source.startswith("runs:/"):
        return None
    return source[len("runs:/") :].lstrip("/").split("/")[0] or None


async def register_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST registry/register-model (the cheat sheet's call): create the registered model when
    it does not exist yet, then a version of ``source``."""
    registry = _registry(ctx)
    with contextlib.suppress(ResourceAlreadyExists):
        registry.create_registered_model(p["name"])
    version = registry.create_model_version(
        p["name"],
        p["source"],
        p["run_id"] or _run_of(p["source"]) or "",
        _tags(p["tags"], ModelVersionTag),
        "",
        p["description"] or "",
    )
    return _version(version)


async def get_model_version(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET model-versions/get."""
    return _version(_registry(ctx).get_model_version(p["name"], p["version"]))


async def update_model_version(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """PATCH model-versions/update."""
    version = _registry(ctx).update_model_version(p["name"], p["version"], p["description"])
    return _version(version)


async def transition_model_version_stage(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST model-versions/transition-stage."""
    version = _registry(ctx).transition_model_version_stage(
        p["name"],
        p["version"],
        p["stage"],
        p["archive_existing_versions"],
        **_promotion(p, "transition_stage"),
    )
    return _version(version)


async def delete_model_version(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE model-versions/delete."""
    _registry(ctx).delete_model_version(p["name"], p["version"], user_id=p["user_id"])
    return {}


async def get_model_version_download_uri(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET model-versions/get-download-uri: the resolved storage location."""
    uri = _registry(ctx).get_model_version_download_uri(p["name"], p["version"])
    return {"artifact_uri": uri}


async def search_model_versions(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET model-versions/search (no max_results: the proto default, 200,000)."""
    max_results = p["max_results"]
    page = _registry(ctx).search_model_versions(
        p["filter"],
        SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD if max_results is None else max_results,
        p["order_by"],
        p["page_token"],
    )
    return page_response("model_versions", [model_version_to_json(v) for v in page], page.token)


async def set_model_version_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST model-versions/set-tag."""
    tag = ModelVersionTag(p["key"], p["value"] or "")
    _registry(ctx).set_model_version_tag(p["name"], p["version"], tag)
    return {}


async def delete_model_version_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE model-versions/delete-tag."""
    _registry(ctx).delete_model_version_tag(p["name"], p["version"], p["key"])
    return {}


# -- runyard: history ------------------------------------------------------------------------
async def get_registered_model_history(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET /api/2.0/runyard/registered-models/history: the model's changes, oldest first."""
    max_results = p["max_results"]
    page = _registry(ctx).get_registered_model_history(
        p["name"],
        HISTORY_MAX_RESULTS_DEFAULT if max_results is None else max_results,
        p["page_token"],
    )
    return page_response("events", [registry_event_to_json(e) for e in page], page.token)


_SEARCH_FIELDS = (
    Field("filter"),
    Field("max_results", "int"),
    Field("order_by", repeated=True),
    Field("page_token"),
)
_TAG_KEY = Field("key", required=True)
# runyard's additions to MLflow's messages, see _promotion. ``user_id`` is trusted as MLflow
# trusts the one of runs/create; the auth layer will replace it with the authenticated user.
_USER = Field("user_id")
_PROMOTION = (Field("action"), Field("evidence", "message"), _USER)


def _endpoint(path: str, methods: tuple[str, ...], handler: Any, *fields: Field) -> Endpoint:
    summary = (handler.__doc__ or "").split("\n")[0].rstrip(".")
    return Endpoint(path, methods, handler, fields, summary, tags=_REGISTRY)


ENDPOINTS = [
    _endpoint(
        "/registered-models/create",
        ("POST",),
        create_registered_model,
        NAME,
        _TAGS,
        Field("description"),
        Field("deployment_job_id"),
    ),
    _endpoint("/registered-models/get", ("GET",), get_registered_model, NAME),
    _endpoint(
        "/registered-models/rename",
        ("POST",),
        rename_registered_model,
        NAME,
        Field("new_name", required=True),
    ),
    _endpoint(
        "/registered-models/update",
        ("PATCH",),
        update_registered_model,
        NAME,
        Field("description"),
        Field("deployment_job_id"),
    ),
    _endpoint("/registered-models/delete", ("DELETE",), delete_registered_model, NAME),
    replace(
        _endpoint("/registered-models/search", ("GET",), search_registered_models, *_SEARCH_FIELDS),
        reads_replica=True,
    ),
    _endpoint(
        "/registered-models/get-latest-versions",
        ("POST", "GET"),
        get_latest_versions,
        NAME,
        Field("stages", repeated=True),
    ),
    _endpoint(
        "/registered-models/set-tag",
        ("POST",),
        set_registered_model_tag,
        NAME,
        _TAG_KEY,
        Field("value"),
    ),
    _endpoint(
        "/registered-models/delete-tag", ("DELETE",), delete_registered_model_tag, NAME, _TAG_KEY
    ),
    Endpoint(
        "/registered-models/alias",
        ("POST", "DELETE", "GET"),
        get_model_version_by_alias,
        # ``version`` is required for POST only; its handler checks.
        (NAME, Field("alias", required=True), Field("version"), *_PROMOTION),
        "Set (POST), delete (DELETE) or read (GET) a registered model alias",
        tags=_REGISTRY,
        method_handlers=(
            ("POST", set_registered_model_alias),
            ("DELETE", delete_registered_model_alias),
        ),
    ),
    _endpoint(
        "/model-versions/create",
        ("POST",),
        create_model_version,
        NAME,
        Field("source", required=True),
        Field("run_id"),
        _TAGS,
        Field("run_link"),
        Field("description"),
        Field("model_id"),
        _USER,
    ),
    _endpoint(
        "/registry/register-model",
        ("POST",),
        register_model,
        NAME,
        Field("source", required=True),
        Field("run_id"),
        _TAGS,
        Field("description"),
    ),
    _endpoint("/model-versions/get", ("GET",), get_model_version, NAME, VERSION),
    _endpoint(
        "/model-versions/update",
        ("PATCH",),
        update_model_version,
        NAME,
        VERSION,
        Field("description"),
    ),
    _endpoint(
        "/model-versions/transition-stage",
        ("POST",),
        transition_model_version_stage,
        NAME,
        VERSION,
        Field("stage", required=True),
        Field("archive_existing_versions", "bool", required=True),
        *_PROMOTION,
    ),
    _endpoint("/model-versions/delete", ("DELETE",), delete_model_version, NAME, VERSION, _USER),
    _endpoint(
        "/model-versions/get-download-uri",
        ("GET",),
        get_model_version_download_uri,
        NAME,
        VERSION,
    ),
    replace(
        _endpoint("/model-versions/search", ("GET",), search_model_versions, *_SEARCH_FIELDS),
        reads_replica=True,
    ),
    _endpoint(
        "/model-versions/set-tag",
        ("POST",),
        set_model_version_tag,
        NAME,
        VERSION,
        _TAG_KEY,
        Field("value"),
    ),
    _endpoint(
        "/model-versions/delete-tag",
        ("DELETE",),
        delete_model_version_tag,
        NAME,
        VERSION,
        _TAG_KEY,
    ),
    Endpoint(
        "/registered-models/history",
        ("GET",),
        get_registered_model_history,
        (NAME, Field("max_results", "int"), Field("page_token")),
        "A registered model's history: version, stage and alias changes, oldest first",
        tags=_REGISTRY,
        namespace="runyard",
    ),
]
