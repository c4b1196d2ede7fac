"""Service endpoints: health, version, server-info, and the start page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint
from runyard.version import MLFLOW_COMPATIBLE_VERSION, __version__

__all__ = ["ENDPOINTS", "MLFLOW_COMPATIBLE_VERSION", "service_routes"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runyard</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{text-align:left;padding:.3rem .6rem;
border-bottom:1px solid #ddd}}code{{background:#f4f4f4;padding:.1rem .3rem}}</style></head>
<body><h1>runyard</h1>
<p>Tracking server {version} (MLflow REST protocol {mlflow}). Point a client here with
<code>MLFLOW_TRACKING_URI={base}</code>.</p>
<h2>Experiments</h2>
<table><tr><th>ID</th><th>Name</th><th>Artifact location</th></tr>{rows}</table>
<p><a href="{prefix}/openapi.json">API description (OpenAPI)</a></p>
</body></html>
"""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def server_info(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET server-info: what the client may use (no multipart, no presigned URLs)."""
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "artifact_serving_enabled": ctx.settings.serve_artifacts,
        "tracking_auth": "",
        "artifacts_presigned_only": False,
        "server": "runyard",
        "runyard_version": __version__,
    }


ENDPOINTS = [
    Endpoint("/server-info", ("GET",), server_info, (), "Capabilities", major=3, tags=("service",)),
]


def service_routes(ctx: ServerContext) -> list[Route]:
    """Health, version, and the start page of an artifacts-only server (others have the UI)."""

    async def health(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def version(request: Request) -> Response:
        return PlainTextResponse(MLFLOW_COMPATIBLE_VERSION)

    async def home(request: Request) -> Response:
        rows = ""
        if ctx.store is not None:
            for exp in ctx.store.search_experiments(max_results=1000):
                rows += (
                    f"<tr><td>{exp.experiment_id}</td><td>{_escape(exp.name)}</td>"
                    f"<td><code>{_escape(exp.artifact_location)}</code></td></tr>"
                )
        base = str(request.base_url).rstrip("/")
        page = _PAGE.format(
            version=__version__,
            mlflow=MLFLOW_COMPATIBLE_VERSION,
            base=_escape(base),
            rows=rows,
            prefix=ctx.settings.static_prefix,
        )
        return HTMLResponse(page)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
    if ctx.store is None:  # an --artifacts-only server has no UI: say what it is at "/"
        routes.append(Route("/", home, methods=["GET"]))
    return routes
