"""The ASGI application: ``create_app(settings)`` wires the store, the routes and middleware."""

from __future__ import annotations

from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from runyard.server.context import ServerContext
from runyard.server.handlers import (
    artifacts,
    experiments,
    logged_models,
    metric_charts,
    registry,
    run_keys,
    runs,
    service,
)
from runyard.server.openapi import openapi_document
from runyard.server.routing import Endpoint, internal_error, json_response, json_routes
from runyard.server.settings import ServerSettings
from runyard.store.base import TrackingStore

__all__ = ["ENDPOINTS", "create_app", "open_store"]


#: Every JSON endpoint of the server; new resource modules add theirs here.
ENDPOINTS: list[Endpoint] = [
    *experiments.ENDPOINTS,
    *runs.ENDPOINTS,
    *logged_models.ENDPOINTS,
    *registry.ENDPOINTS,
    *run_keys.ENDPOINTS,
    *metric_charts.ENDPOINTS,
    *service.ENDPOINTS,
]
_ARTIFACTS_ONLY = "This server only serves artifacts (--artifacts-only)."


def open_store(settings: ServerSettings, uri: str | None = None) -> TrackingStore:
    """The tracking store behind the server (migrated automatically for SQLite)."""
    from runyard.store.sql.store import SqlTrackingStore

    uri = uri or settings.backend_store_uri
    scheme = urlparse(uri).scheme.split("+")[0]
    return SqlTrackingStore(uri, settings.artifact_root, auto_upgrade=scheme == "sqlite")


def _tracking_routes(ctx: ServerContext) -> list[BaseRoute]:
    if ctx.store is not None:
        return list(json_routes(ENDPOINTS, ctx))

    async def unavailable(request: Request) -> Response:
        return PlainTextResponse(_ARTIFACTS_ONLY, status_code=503)

    return [Mount(prefix, routes=[Route("/{rest:path}", unavailable, methods=["GET", "POST",
            "PATCH", "DELETE", "PUT"])]) for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow",
            "/api/3.0/mlflow", "/ajax-api/3.0/mlflow")]  # fmt: skip


def create_app(settings: ServerSettings, store: TrackingStore | None = None) -> Starlette:
    """The server for ``settings`` (``store`` overrides the one the settings name, for tests)."""
    if store is None and not settings.artifacts_only:
        store = open_store(settings)
    ctx = ServerContext(settings, None if settings.artifacts_only else store)
    registry_uri = settings.registry_store_uri
    if registry_uri and registry_uri != settings.backend_store_uri and not settings.artifacts_only:
        ctx.registry_store = open_store(settings, registry_uri)
    document = openapi_document(ENDPOINTS)

    async def openapi(request: Request) -> Response:
        return json_response(document)

    routes: list[BaseRoute] = [
        *service.service_routes(ctx),
        Route("/openapi.json", openapi, methods=["GET"]),
        *_tracking_routes(ctx),
        *artifacts.artifact_routes(ctx),
    ]
    if ctx.store is not None:
        from runyard.server.ui import ui_routes

        routes += ui_routes(ctx)
    if settings.static_prefix:
        routes = [Mount(settings.static_prefix, routes=routes)]
    middleware = []
    if settings.allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts))
    if settings.cors_allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allowed_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["*"],
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={Exception: internal_error},
    )
    app.state.context = ctx
    return app
