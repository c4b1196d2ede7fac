"""``/openapi.json``: an OpenAPI 3.1 description generated from the endpoint table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runyard.protocol.requests import Field
from runyard.server.routing import Endpoint, api_prefixes
from runyard.version import __version__

__all__ = ["openapi_document"]

_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
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


def _schema(field: Field) -> dict[str, Any]:
    schema = dict(_TYPES[field.kind])
    return {"type": "array", "items": schema} if field.repeated else schema


def _operation(endpoint: Endpoint, method: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": endpoint.summary or endpoint.path,
        "operationId": f"{method.lower()}_{endpoint.handler.__name__}",
        "tags": list(endpoint.tags),
        "responses": {"200": {"description": "OK"}, "400": _ERROR, "404": _ERROR},
    }
    if method == "GET":
        op["parameters"] = [
            {"name": f.name, "in": "query", "required": f.required, "schema": _schema(f)}
            for f in endpoint.fields
        ]
    else:
        op["requestBody"] = {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {f.name: _schema(f) for f in endpoint.fields},
                        "required": [f.name for f in endpoint.fields if f.required],
                    }
                }
            }
        }
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
