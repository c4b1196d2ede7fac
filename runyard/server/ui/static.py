"""The UI's static files: our CSS/JS modules and plotly.js from the installed ``plotly`` package.

Served under ``/static-files/`` (MLflow's UI path) with ETags, gzip and a day of caching; page
links carry ``?v=<version>`` so an upgrade is never served stale. plotly.js is not copied into
the repo: it is read from the ``plotly`` distribution the server has installed.
"""

from __future__ import annotations

import os
from functools import lru_cache

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["STATIC_DIR", "plotly_js_path", "static_routes"]

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
_CACHE = "public, max-age=86400"


@lru_cache(maxsize=1)
def plotly_js_path() -> str | None:
    """Where the installed ``plotly`` package keeps ``plotly.min.js`` (None: not installed)."""
    try:
        import plotly
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
    return path if os.path.isfile(path) else None


class _CachedStatic(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = _CACHE
        return response


async def _plotly(request: Request) -> Response:
    path = plotly_js_path()
    if path is None:
        return PlainTextResponse("Charts need plotly: pip install plotly", status_code=404)
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": _CACHE})


def static_routes() -> list[BaseRoute]:
    """``/static-files/vendor/plotly.min.js`` and ``/static-files/<our files>``."""
    gzip = [Middleware(GZipMiddleware, minimum_size=1024)]
    return [
        Mount(
            "/static-files",
            routes=[
                Route("/vendor/plotly.min.js", _plotly, methods=["GET", "HEAD"]),
                Mount("/", app=_CachedStatic(directory=STATIC_DIR), name="ui-static"),
            ],
            middleware=gzip,
        )
    ]
