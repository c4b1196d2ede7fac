"""The web UI: server-rendered Jinja2 pages, small ES modules, plotly.js charts.

Pages read the store directly (in a worker thread) and render HTML; interactive parts are small
hand-written ES modules in ``static/js`` that call the same REST API every client uses
(``/ajax-api/2.0/mlflow/*``) or our additions (``/api/2.0/runyard/*``). No bundler, no npm.

The page modules, one per area:

* :mod:`.experiments` — ``/`` and ``/experiments`` (list), ``/experiments/<id>`` (runs table),
  ``/experiments/<id>/runs.csv``;
* :mod:`.run_page` — ``/runs/<id>`` and its artifact previews;
* :mod:`.charts` — ``/metrics`` (metric charts) and ``/compare``;
* :mod:`.registry_pages` — ``/models``, ``/models/<name>``, ``/models/<name>/versions/<v>``;
* :mod:`.login` (auth on only) — ``/login``, ``/logout`` and :mod:`.account`'s ``/account``.

With auth on, what a page shows is checked in :mod:`.access` (one place for the UI's checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from runyard.server.context import ServerContext

__all__ = ["page_not_found", "ui_routes"]

#: Paths that belong to APIs and files, not pages: unknown ones stay a plain 404.
_NOT_PAGES = ("/api/", "/ajax-api/", "/static-files/", "/get-artifact", "/model-versions/")


def ui_routes(ctx: ServerContext) -> list[BaseRoute]:
    """Every page of the UI and its static files (the app factory mounts them last)."""
    from runyard.server.ui import charts, experiments, login, registry_pages, run_page
    from runyard.server.ui.static import static_routes

    return [
        *static_routes(),
        *(login.routes(ctx) if ctx.auth is not None else []),
        *experiments.routes(ctx),
        *run_page.routes(ctx),
        *charts.routes(ctx),
        *registry_pages.routes(ctx),
    ]


async def page_not_found(request: Request, exc: Exception) -> Response:
    """The app's 404 handler: a mistyped or stale page link gets the UI's 404 page (with the
    header to navigate on); API paths, files and non-GET requests keep a plain 404. A path that
    exists with other methods stays a 405 (the router answers that before this runs)."""
    from runyard.server.ui.render import not_found, prefix_of

    path = request.url.path[len(prefix_of(request)) :] or "/"
    if request.method not in ("GET", "HEAD") or path.startswith(_NOT_PAGES):
        detail = getattr(exc, "detail", None) or "Not Found"
        return PlainTextResponse(str(detail), status_code=404)
    return not_found(request, f"There is no page at {path}.")
