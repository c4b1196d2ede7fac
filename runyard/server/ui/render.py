"""Rendering the web UI's pages: one Jinja2 environment, shared filters and the error page.

Every page handler ends in :func:`render` (or :func:`error_page`). Templates live in
``runyard/server/ui/templates`` and extend ``base.html``; they build links with ``url(path)`` so the
UI works under ``--static-prefix``. Values from the store are escaped by autoescaping; nothing a
user logged is ever marked safe.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from runyard.errors import RunyardError
from runyard.utils.time import format_duration
from runyard.version import __version__

if TYPE_CHECKING:
    from runyard.server.context import ServerContext

__all__ = [
    "error_page",
    "format_duration",
    "format_time",
    "format_value",
    "not_found",
    "page",
    "prefix_of",
    "render",
]

log = logging.getLogger(__name__)


def prefix_of(request: Request) -> str:
    """The ``--static-prefix`` the app is mounted under ("" when none)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as ``2026-11-29 02:34:03`` (UTC); "" for none."""
    if ms is None or ms <= 0:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_value(value: Any) -> str:
    """A metric value as people read it: 6 significant digits, ``NaN``/``inf`` spelled out."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _ago(ms: int | None) -> str:
    if not ms:
        return ""
    seconds = max(0.0, dt.datetime.now(dt.UTC).timestamp() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("runyard.server.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        time=format_time,
        value=format_value,
        ago=_ago,
        tojson_attr=lambda v: json.dumps(v, separators=(",", ":")),
    )
    env.globals.update(duration=format_duration, runyard_version=__version__, urlencode=urlencode)
    return env


@lru_cache(maxsize=8)
def _import_map(prefix: str) -> str:
    """An import map pinning every UI module to its versioned URL.

    Pages load ``js/x.js?v=<version>``; a module's ``import "./common.js"`` resolves to the URL
    without the query. Without this map the browser would load (and run) common.js twice, and
    imported modules would escape the version's cache-busting."""
    folder = os.path.join(os.path.dirname(__file__), "static", "js")
    names = (
        sorted(n for n in os.listdir(folder) if n.endswith(".js")) if os.path.isdir(folder) else []
    )
    base = f"{prefix}/static-files/js/"
    imports = {base + name: f"{base}{name}?v={__version__}" for name in names}
    # Only file names we ship go in, and "</" cannot occur in them: safe inside <script>.
    return json.dumps({"imports": imports}, separators=(",", ":"))


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` plus ``request``, ``url()``, ``static()`` and
    ``principal`` (the signed-in caller; None when auth is off or on public pages)."""
    prefix = prefix_of(request)

    def url(path: str, /, **query: Any) -> str:
        params = {k: v for k, v in query.items() if v not in (None, "", [], ())}
        return prefix + path + ("?" + urlencode(params, doseq=True) if params else "")

    def static(name: str) -> str:
        return f"{prefix}/static-files/{name}?v={__version__}"

    html = (
        _environment()
        .get_template(template)
        .render(
            request=request,
            url=url,
            static=static,
            prefix=prefix,
            import_map=Markup(_import_map(prefix)),
            principal=getattr(request.state, "principal", None),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """The error page (404, 400, 500 …) with the header, so the user can navigate on."""
    return render(request, "error.html", status=status, title=title, message=message)


def not_found(request: Request, message: str) -> HTMLResponse:
    """A 404 page saying what was not found (``Run 'abc' does not exist.``)."""
    return error_page(request, 404, "Not found", message)


PageFunction = Callable[["ServerContext", Request], Response]


def page(fn: PageFunction) -> Callable[[ServerContext], Callable[[Request], Awaitable[Response]]]:
    """Turn a synchronous page function ``fn(ctx, request) -> Response`` into a Starlette
    endpoint factory. The store is read in a worker thread (the event loop stays free); a store
    error becomes the page a user can act on: missing → 404, bad input (an invalid filter) → 400
    with MLflow's message, anything else → 500 (logged with its traceback)."""

    def bind(ctx: ServerContext) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await run_in_threadpool(fn, ctx, request)
            except RunyardError as exc:
                status = exc.get_http_status_code()
                if status == 404:
                    return not_found(request, exc.message)
                if status == 403:
                    return error_page(request, 403, "Permission denied", exc.message)
                if status < 500:
                    return error_page(request, status, "Cannot show this page", exc.message)
                log.exception("UI page %s failed", request.url.path)
                return error_page(request, status, "Server error", exc.message)
            except Exception:
                log.exception("UI page %s failed", request.url.path)
                message = "The server failed to build this page; its log has the details."
                return error_page(request, 500, "Server error", message)

        return endpoint

    return bind
