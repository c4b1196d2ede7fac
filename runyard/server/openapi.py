"""``/openapi.json``: an OpenAPI 3.1 description generated from the endpoint table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from runyard.protocol.requests import Field
from runyard.server.routing import Endpoint, api_prefixes
from runyard.version import __version__

__all__ = ["openapi_document"]

_INT64 = 2**63
_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int": {"type": "integer", "format": "int64", "minimum": -_INT64, "maximum": _INT64 - 1},
    "double": {"oneOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]},
    "bool": {"type": "boolean"},
    "message": {"type": "object"},
    "ViewType": {"enum": ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]},
    "RunStatus": {"enum": ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]},
}
_ERROR = {
    "description": "MLflow error body",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["error_code", "message"],
            }
        }
    },
}


_PATH_PARAM = re.compile(r"\{(\w+)\}")


def _object(required: Sequence[str] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


_STR, _INT = _TYPES["string"], _TYPES["int"]
_KEY_VALUE = _object(["key"], key=_STR, value=_STR)
_DATASET = _object(
    ["name", "digest"],
    **{k: _STR for k in ("name", "digest", "source_type", "source", "schema", "profile")},
)
#: The messages inside requests, by field name (``(path, name)`` where one name has two shapes).
_MESSAGES: dict[str | tuple[str, str], dict[str, Any]] = {
    "tags": _KEY_VALUE,
    "params": _KEY_VALUE,
    "metrics": _object(
        ["key", "value", "timestamp"],
        key=_STR,
        value=_TYPES["double"],
        timestamp=_INT,
        step=_INT,
        model_id=_STR,
        dataset_name=_STR,
        dataset_digest=_STR,
    ),
    "models": _object(["model_id"], model_id=_STR, step=_INT),
    "datasets": _object(["dataset"], dataset=_DATASET, tags={"type": "array", "items": _KEY_VALUE}),
    ("/logged-models/search", "datasets"): _object(
        ["dataset_name"], dataset_name=_STR, dataset_digest=_STR
    ),
    ("/logged-models/search", "order_by"): _object(
        ["field_name"],
        field_name=_STR,
        ascending=_TYPES["bool"],
        dataset_name=_STR,
        dataset_digest=_STR,
    ),
}


def _schema(field: Field, path: str = "") -> dict[str, Any]:
    schema = dict(_TYPES[field.kind])
    if field.kind == "message":
        schema = _MESSAGES.get((path, field.name)) or _MESSAGES.get(field.name) or schema
    if field.kind == "string" and field.required and not field.repeated:
        schema["minLength"] = 1  # an empty required string is refused like a missing one
    return {"type": "array", "items": schema} if field.repeated else schema


def _operation(endpoint: Endpoint, method: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": endpoint.summary or endpoint.path,
        "operationId": f"{method.lower()}_{endpoint.handler.__name__}",
        "tags": list(endpoint.tags),
        # Every error, whatever its status, is MLflow's error body.
        "responses": {
            "200": {"description": "OK"},
            "400": _ERROR,
            "404": _ERROR,
            "default": _ERROR,
        },
    }
    # A ``{name}`` in the path is a path parameter; it wins over a field of the same name.
    path = endpoint.path
    in_path = _PATH_PARAM.findall(path)
    fields = [f for f in endpoint.fields if f.name not in in_path]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in in_path
    ]
    if method == "GET":
        parameters += [
            {"name": f.name, "in": "query", "required": f.required, "schema": _schema(f, path)}
            for f in fields
        ]
    else:
        op["requestBody"] = {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {f.name: _schema(f, path) for f in fields},
                        "required": [f.name for f in fields if f.required],
                    }
                }
            }
        }
    if parameters:
        op["parameters"] = parameters
    return op


def _artifact_paths() -> dict[str, Any]:
    base = "/api/2.0/mlflow-artifacts/artifacts"
    item = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
    ok = {"200": {"description": "OK"}, "404": _ERROR}
    return {
        base: {
            "get": {
                "summary": "List a directory of the artifact proxy",
                "parameters": [{"name": "path", "in": "query", "schema": {"type": "string"}}],
                "responses": ok,
                "tags": ["artifacts"],
            }
        },
        base + "/{path}": {
            "get": {"summary": "Download", "parameters": [item], "responses": ok},
            "put": {"summary": "Upload (raw body)", "parameters": [item], "responses": ok},
            "delete": {"summary": "Delete", "parameters": [item], "responses": ok},
        },
    }


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The document: every endpoint under its first prefix (the others are aliases)."""
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        path = api_prefixes(endpoint.major, endpoint.namespace)[0] + endpoint.path
        paths[path] = {m.lower(): _operation(endpoint, m) for m in endpoint.methods}
    paths.update(_artifact_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "runyard tracking server",
            "version": __version__,
            "description": (
                "MLflow's REST protocol. Every /api/2.0/mlflow path is also served under "
                "/ajax-api/2.0/mlflow and /api/2.0/preview/mlflow."
            ),
        },
        "paths": paths,
    }
