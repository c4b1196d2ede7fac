"""The web UI: server-rendered Jinja2 pages, small ES modules, plotly.js charts.

Pages read the store directly (in a worker thread) and render HTML; interactive parts are small
hand-written ES modules in ``static/js`` that call the same REST API every client uses
(``/ajax-api/2.0/mlflow/*``) or our additions (``/api/2.0/runyard/*``). No bundler, no npm.

The page modules, one per area:

* :mod:`.experiments` — ``/`` and ``/experiments`` (list), ``/experiments/<id>`` (runs table),
  ``/experiments/<id>/runs.csv``;
* :mod:`.run_page` — ``/runs/<id>`` and its artifact previews;
* :mod:`.charts` — ``/metrics`` (metric charts) and ``/compare``;
* :mod:`.registry_pages` — ``/models``, ``/models/<name>``, ``/models/<name>/versions/<v>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from runyard.server.context import ServerContext

__all__ = ["ui_routes"]

#: Paths that belong to APIs and files, not pages: unknown ones stay a plain 404.
_NOT_PAGES = ("/api/", "/ajax-api/", "/static-files/", "/get-artifact", "/model-versions/")


def ui_routes(ctx: ServerContext) -> list[BaseRoute]:
    """Every page of the UI and its static files (the app factory mounts them last)."""
    from runyard.server.ui import charts, experiments, registry_pages, run_page
    from runyard.server.ui.render import not_found
    from runyard.server.ui.static import static_routes

    async def unknown_page(request: Request) -> Response:
        path = "/" + request.path_params["path"]  # below any --static-prefix
        if request.method not in ("GET", "HEAD") or path.startswith(_NOT_PAGES):
            return PlainTextResponse("Not Found", status_code=404)
        return not_found(request, f"There is no page at {path}.")

    return [
        *static_routes(),
        *experiments.routes(ctx),
        *run_page.routes(ctx),
        *charts.routes(ctx),
        *registry_pages.routes(ctx),
        # Last: any other page is a mistyped or stale link → the UI's 404 page, with navigation.
        # Every method lands here so an unknown API call stays a 404 (clients fall back on it),
        # not a 405.
        Route(
            "/{path:path}", unknown_page, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        ),
    ]
