"""The ASGI application: ``create_app(settings)`` wires the store, the routes and middleware."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from runyard.config import ENV
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.server.context import ServerContext
from runyard.server.handlers import (
    artifacts,
    experiments,
    logged_models,
    metric_charts,
    registry,
    run_import,
    run_keys,
    runs,
    service,
)
from runyard.server.limits import BodyTimeoutMiddleware
from runyard.server.openapi import openapi_document
from runyard.server.routing import Endpoint, internal_error, json_response, json_routes
from runyard.server.settings import ServerSettings
from runyard.store.base import TrackingStore

__all__ = ["ENDPOINTS", "create_app", "open_read_replica", "open_store"]


#: Every JSON endpoint of the server; new resource modules add theirs here.
ENDPOINTS: list[Endpoint] = [
    *experiments.ENDPOINTS,
    *runs.ENDPOINTS,
    *logged_models.ENDPOINTS,
    *registry.ENDPOINTS,
    *run_keys.ENDPOINTS,
    *run_import.ENDPOINTS,
    *metric_charts.ENDPOINTS,
    *service.ENDPOINTS,
]
_ARTIFACTS_ONLY = "This server only serves artifacts (--artifacts-only)."


def open_store(settings: ServerSettings, uri: str | None = None) -> TrackingStore:
    """The tracking store behind the server (migrated automatically for SQLite)."""
    from runyard.store.sql.engine import limit_sqlite_cache
    from runyard.store.sql.store import SqlTrackingStore

    uri = uri or settings.backend_store_uri
    scheme = urlparse(uri).scheme.split("+")[0]
    store = SqlTrackingStore(uri, settings.artifact_root, auto_upgrade=scheme == "sqlite")
    limit_sqlite_cache(store.engine)  # several pooled connections: small caches (memory bound)
    return store


def open_read_replica(settings: ServerSettings, uri: str) -> TrackingStore:
    """A store on a read-only replica of the backend database: never migrated, never written.

    The replica must already carry the primary's schema (``runyard db upgrade`` runs on the
    primary; replication brings it over). Only endpoints flagged ``reads_replica`` use it.
    """
    from runyard.store.sql.engine import current_revision, limit_sqlite_cache, make_engine
    from runyard.store.sql.schema import SCHEMA_REVISION
    from runyard.store.sql.store import SqlTrackingStore

    if uri == settings.backend_store_uri:
        raise InvalidParameterValue(
            "--read-replica-backend-store-uri is the same as --backend-store-uri; "
            "give the replica's own URI, or leave the option out."
        )
    engine = make_engine(uri)
    try:
        found = current_revision(engine)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        url = engine.url.render_as_string(hide_password=True)
        raise RunyardError(
            f"Cannot open the read replica {url}: {reason}", error_code="IO_ERROR"
        ) from None
    finally:
        engine.dispose()
    if found != SCHEMA_REVISION:
        raise RunyardError(
            f"The read replica is at schema revision {found}, this runyard needs "
            f"{SCHEMA_REVISION}. Run 'runyard db upgrade' on the primary database and let the "
            "replica catch up.",
            error_code="INVALID_STATE",
        )
    # The schema is current, so opening neither migrates nor (the default experiment exists on
    # the primary, hence here) writes.
    replica = SqlTrackingStore(uri, settings.artifact_root, auto_upgrade=False)
    limit_sqlite_cache(replica.engine)
    return replica


def _auth_layer(settings: ServerSettings, ctx: ServerContext) -> Any:
    """The auth layer of ``--app-name basic-auth``: its tables live in the backend database
    unless the auth config names another; the first start creates the admin."""
    from runyard.server.auth import APP_NAME
    from runyard.server.auth.config import read_auth_config
    from runyard.server.auth.layer import AuthLayer
    from runyard.server.auth.store import AuthStore

    if settings.app_name != APP_NAME:
        raise InvalidParameterValue(
            f"Unknown --app-name '{settings.app_name}'. The one app is '{APP_NAME}'."
        )
    config = read_auth_config()
    tracking: Any = ctx.tracking()
    if config.database_uri:
        store = AuthStore.open(config.database_uri)
    else:
        store = AuthStore(tracking.engine)
    secret = ENV.FLASK_SERVER_SECRET_KEY.get()
    layer = AuthLayer(
        store, tracking, ctx.registry(), config, secret.encode("utf-8") if secret else None
    )
    layer.bootstrap_admin()
    return layer


def _tracking_routes(ctx: ServerContext, endpoints: list[Endpoint]) -> list[BaseRoute]:
    if ctx.store is not None:
        return list(json_routes(endpoints, ctx))

    async def unavailable(request: Request) -> Response:
        return PlainTextResponse(_ARTIFACTS_ONLY, status_code=503)

    return [Mount(prefix, routes=[Route("/{rest:path}", unavailable, methods=["GET", "POST",
            "PATCH", "DELETE", "PUT"])]) for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow",
            "/api/3.0/mlflow", "/ajax-api/3.0/mlflow")]  # fmt: skip


def _lifespan(ctx: ServerContext) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if ctx.auth is not None:  # the last audit entries are written before the process ends
            ctx.auth.close()

    return lifespan


def create_app(settings: ServerSettings, store: TrackingStore | None = None) -> Starlette:
    """The server for ``settings`` (``store`` overrides the one the settings name, for tests)."""
    if store is None and not settings.artifacts_only:
        store = open_store(settings)
    ctx = ServerContext(settings, None if settings.artifacts_only else store)
    registry_uri = settings.registry_store_uri
    if registry_uri and registry_uri != settings.backend_store_uri and not settings.artifacts_only:
        ctx.registry_store = open_store(settings, registry_uri)
    replica_uri = settings.read_replica_backend_store_uri
    if replica_uri and not settings.artifacts_only:
        ctx.read_store = open_read_replica(settings, replica_uri)
    endpoints = list(ENDPOINTS)
    if settings.app_name and settings.artifacts_only:
        raise InvalidParameterValue(
            "--app-name basic-auth needs the tracking store (users and permissions live there); "
            "it cannot protect an --artifacts-only server. Run the artifact proxy inside the "
            "auth-enabled tracking server (the default), or put it behind your own proxy auth."
        )
    if settings.app_name and ctx.store is not None:
        ctx.auth = _auth_layer(settings, ctx)
        from runyard.server.auth.endpoints import ENDPOINTS as AUTH_ENDPOINTS

        endpoints += AUTH_ENDPOINTS
    document = openapi_document(endpoints)

    async def openapi(request: Request) -> Response:
        return json_response(document)

    routes: list[BaseRoute] = [
        *service.service_routes(ctx),
        Route("/openapi.json", openapi, methods=["GET"]),
        *_tracking_routes(ctx, endpoints),
        *artifacts.artifact_routes(ctx),
    ]
    handlers: dict[Any, Any] = {Exception: internal_error}
    if ctx.store is not None:
        from runyard.server.ui import page_not_found, ui_routes

        routes += ui_routes(ctx)
        handlers[404] = page_not_found
    if settings.static_prefix:
        routes = [Mount(settings.static_prefix, routes=routes)]
    # Outermost: a stalled request body is answered 408 whatever route it was meant for.
    middleware = [Middleware(BodyTimeoutMiddleware, timeout=settings.body_timeout)]
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
    if ctx.auth is not None:
        from runyard.server.auth.middleware import AuthMiddleware

        middleware.append(Middleware(AuthMiddleware, layer=ctx.auth, prefix=settings.static_prefix))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=_lifespan(ctx),
    )
    app.state.context = ctx
    return app
