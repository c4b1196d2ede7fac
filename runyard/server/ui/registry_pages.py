"""The model registry pages: ``/models``, ``/models/<name>`` and ``/models/<name>/versions/<v>``.

Pages read the registry store directly and render HTML; every write (create a model, edit a
description, tags, aliases, stage transitions) is done by ``static/js/registry.js`` through
MLflow's REST API, after which the script re-reads the page and swaps its sections in.

Model names may contain ``/`` in stores written by older clients, so one ``{name:path}`` route
serves both the model page and, when the path ends in ``/versions/<v>``, a version's page.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode

import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.entities import ModelVersion, RegisteredModel, RegistryEvent
from runyard.entities.model_registry import STAGES
from runyard.errors import ResourceDoesNotExist, RunyardError
from runyard.server.context import ServerContext
from runyard.server.ui import access
from runyard.server.ui.markdown import render_markdown
from runyard.server.ui.render import page, prefix_of, render
from runyard.store.registry_base import HISTORY_MAX_RESULTS_THRESHOLD, ModelRegistryStore

__all__ = [
    "MODELS_PAGE_SIZE",
    "model_path",
    "read_mlmodel",
    "routes",
    "signature_tables",
]

#: Registered models per page of ``/models``, and versions per page of a model's page.
MODELS_PAGE_SIZE = 100
#: History rows a model's page shows (the newest ones).
HISTORY_ROWS = 100
#: The most of an MLmodel file a version page reads (the file is YAML metadata, normally < 4 KiB).
MLMODEL_MAX_BYTES = 1024 * 1024
_VERSION_SUFFIX = re.compile(r"^(?P<name>.+)/versions/(?P<version>[^/]+)/?$")
_EVENT_LABELS = {
    "create_version": "Version created",
    "delete_version": "Version deleted",
    "transition_stage": "Stage transition",
    "promote": "Promotion",
    "set_alias": "Alias set",
    "delete_alias": "Alias removed",
}
_EXAMPLE = 'runyard.register_model("runs:/<run_id>/model", "name")'


def model_path(name: str, version: str | int | None = None) -> str:
    """The UI path of a registered model (or one of its versions), its name percent-encoded."""
    path = "/models/" + quote(name, safe="/")
    return path if version is None else f"{path}/versions/{quote(str(version), safe='')}"


def _quoted(value: str) -> str:
    """A string literal of the registry filter grammar (a quote is written twice)."""
    return "'" + value.replace("'", "''") + "'"


def _registry(ctx: ServerContext) -> ModelRegistryStore:
    return cast(ModelRegistryStore, ctx.registry())


def _latest(model: RegisteredModel) -> ModelVersion | None:
    """The highest-numbered version (``latest_versions`` holds the highest of every stage)."""
    return max(model.latest_versions, key=lambda v: int(v.version), default=None)


def _by_stage(model: RegisteredModel) -> dict[str, ModelVersion]:
    return {v.current_stage: v for v in model.latest_versions}


# -- /models --------------------------------------------------------------------------------
def list_models(ctx: ServerContext, request: Request) -> Response:
    """``/models?q=&page_token=``: registered models whose name contains ``q``."""
    query = request.query_params.get("q", "").strip()
    token = request.query_params.get("page_token") or None
    filter_string = f"name ILIKE {_quoted('%' + query + '%')}" if query else None
    models, next_token = access.readable_page(
        ctx,
        request,
        access.REGISTERED_MODEL,
        lambda page_token: _registry(ctx).search_registered_models(
            filter_string, MODELS_PAGE_SIZE, ["name ASC"], page_token
        ),
        lambda m: m.name,
        token,
        MODELS_PAGE_SIZE,
    )
    rows = [
        {
            "model": m,
            "href": model_path(m.name),
            "latest": _latest(m),
            "stages": _by_stage(m),
            "aliases": sorted(m.aliases.items(), key=lambda a: (-int(a[1]), a[0])),
        }
        for m in models
    ]
    return render(
        request,
        "registry/models.html",
        section="models",
        query=query,
        rows=rows,
        next_token=next_token,
        is_first_page=token is None,
        model_path=model_path,
        example=_EXAMPLE,
    )


# -- /models/<name>[/versions/<v>] --------------------------------------------------------------
def model_or_version(ctx: ServerContext, request: Request) -> Response:
    """Dispatch ``/models/<name>`` and ``/models/<name>/versions/<v>`` (names may hold ``/``)."""
    path = str(request.path_params["name"])
    match = _VERSION_SUFFIX.match(path)
    if match:
        access.require_model(ctx, request, match["name"])
        return version_page(ctx, request, match["name"], match["version"])
    name = path.rstrip("/")
    if not name:
        return RedirectResponse(prefix_of(request) + "/models", status_code=302)
    access.require_model(ctx, request, name)
    return model_page(ctx, request, name)


def _recent_history(store: ModelRegistryStore, name: str) -> list[RegistryEvent]:
    """The newest :data:`HISTORY_ROWS` events, newest first (the store pages oldest first)."""
    recent: deque[RegistryEvent] = deque(maxlen=HISTORY_ROWS)
    token: str | None = None
    while True:
        events = store.get_registered_model_history(name, HISTORY_MAX_RESULTS_THRESHOLD, token)
        recent.extend(events)
        token = events.token
        if not token:
            return list(reversed(recent))


def _event_detail(event: RegistryEvent) -> str:
    """What an event changed: ``Staging → Production`` or ``@champion (was v1)``."""
    if event.alias:
        moved = f" (was v{event.previous_version})" if event.previous_version else ""
        return f"@{event.alias}{moved}"
    if event.action in ("transition_stage", "promote"):
        return f"{event.from_stage or 'None'} → {event.to_stage or 'None'}"
    return ""


def model_page(ctx: ServerContext, request: Request, name: str) -> Response:
    """One registered model: description, tags, aliases, versions and history."""
    store = _registry(ctx)
    model = store.get_registered_model(name)
    token = request.query_params.get("page_token") or None
    versions = store.search_model_versions(
        f"name = {_quoted(model.name)}", MODELS_PAGE_SIZE, ["version_number DESC"], token
    )
    history = [
        {"event": e, "label": _EVENT_LABELS.get(e.action, e.action), "detail": _event_detail(e)}
        for e in _recent_history(store, model.name)
    ]
    return render(
        request,
        "registry/model.html",
        section="models",
        model=model,
        description=render_markdown(model.description or ""),
        aliases=sorted(model.aliases.items()),
        versions=versions,
        next_token=versions.token,
        is_first_page=token is None,
        history=history,
        history_rows=HISTORY_ROWS,
        model_path=model_path,
    )


# -- the version page: signature and MLmodel ------------------------------------------------------
@dataclass(frozen=True)
class SignatureTable:
    """One part of a signature (inputs, outputs or params) as table rows."""

    title: str
    columns: list[str]
    rows: list[list[str]]


def _type_text(spec: dict[str, Any]) -> str:
    """A schema entry's type as people read it: ``double``, ``tensor float64``, ``array<long>``."""
    kind = str(spec.get("type", ""))
    if kind == "tensor":
        return f"tensor {spec.get('tensor-spec', {}).get('dtype', '')}".strip()
    if kind == "array":
        items = spec.get("items")
        return f"array<{_type_text(items) if isinstance(items, dict) else '?'}>"
    if kind in ("object", "map"):
        return json.dumps({k: v for k, v in spec.items() if k not in ("name", "required")})
    return kind


def _shape(spec: dict[str, Any]) -> str:
    shape = spec.get("tensor-spec", {}).get("shape") if spec.get("type") == "tensor" else None
    shape = spec.get("shape") if shape is None else shape
    return "(" + ", ".join(str(d) for d in shape) + ")" if isinstance(shape, list) else ""


def _schema_rows(text: Any, params: bool) -> list[list[str]]:
    try:
        entries = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return []
    rows = []
    for spec in entries if isinstance(entries, list) else []:
        if not isinstance(spec, dict):
            continue
        name = str(spec.get("name") or "(unnamed)")
        if params:
            default = json.dumps(spec.get("default"))
            rows.append([name, _type_text(spec), default, _shape(spec)])
        else:
            required = "yes" if spec.get("required", True) else "no"
            rows.append([name, _type_text(spec), _shape(spec), required])
    return rows


def signature_tables(mlmodel: dict[str, Any]) -> list[SignatureTable]:
    """The signature of an MLmodel document (parsed YAML) as inputs/outputs/params tables;
    empty when the model has no signature. Each schema part is JSON text in the file."""
    signature = mlmodel.get("signature")
    if not isinstance(signature, dict):
        return []
    columns = ["Name", "Type", "Shape", "Required"]
    tables = [
        SignatureTable(title, columns, _schema_rows(signature.get(key), params=False))
        for title, key in (("Inputs", "inputs"), ("Outputs", "outputs"))
    ]
    if signature.get("params"):
        params = _schema_rows(signature["params"], params=True)
        tables.append(SignatureTable("Params", ["Name", "Type", "Default", "Shape"], params))
    return tables


def read_mlmodel(ctx: ServerContext, location: str) -> str | None:
    """The MLmodel text of the model stored at ``location`` (at most 1 MiB); None when the
    location has no readable MLmodel file."""
    data = bytearray()
    try:
        chunks = ctx.repo_for(location).open_chunks("MLmodel")
        try:
            for chunk in chunks:
                data += chunk
                if len(data) >= MLMODEL_MAX_BYTES:
                    break
        finally:
            # A generator stopped early keeps its file open until it is closed.
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
    except (RunyardError, OSError):
        return None
    return bytes(data[:MLMODEL_MAX_BYTES]).decode("utf-8", errors="replace")


def _parse_mlmodel(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _files_links(
    ctx: ServerContext, version: ModelVersion, location: str | None
) -> tuple[str | None, str | None]:
    """``(browse, download MLmodel)`` UI paths when the version's files are inside its source
    run's artifacts (the run page lists them); otherwise ``(None, None)``."""
    if not version.run_id or not location:
        return None, None
    try:
        root = ctx.tracking().get_run(version.run_id).info.artifact_uri.rstrip("/")
    except RunyardError:
        return None, None
    if not location.rstrip("/").startswith(root + "/"):
        return None, None
    rel = location.rstrip("/")[len(root) + 1 :]
    run = quote(version.run_id, safe="")
    browse = f"/runs/{run}?{urlencode({'path': rel})}#artifacts"
    download = "/get-artifact?" + urlencode({"run_id": version.run_id, "path": rel + "/MLmodel"})
    return browse, download


def version_page(ctx: ServerContext, request: Request, name: str, number: str) -> Response:
    """One model version: stage, aliases, description, tags, source, signature and MLmodel."""
    store = _registry(ctx)
    version = store.get_model_version(name, number)
    try:
        location: str | None = store.get_model_version_download_uri(name, version.version)
    except ResourceDoesNotExist:
        location = None
    mlmodel = read_mlmodel(ctx, location) if location else None
    browse, download = _files_links(ctx, version, location) if mlmodel else (None, None)
    return render(
        request,
        "registry/version.html",
        section="models",
        mv=version,
        description=render_markdown(version.description or ""),
        location=location,
        mlmodel=mlmodel,
        signature=signature_tables(_parse_mlmodel(mlmodel)),
        browse_href=browse,
        download_href=download,
        stages=STAGES,
        model_path=model_path,
    )


def routes(ctx: ServerContext) -> list[BaseRoute]:
    """This area's pages."""
    return [
        Route("/models", page(list_models)(ctx), methods=["GET"]),
        Route("/models/{name:path}", page(model_or_version)(ctx), methods=["GET"]),
    ]
