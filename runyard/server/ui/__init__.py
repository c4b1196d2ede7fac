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

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from runyard.server.context import ServerContext

__all__ = ["ui_routes"]


def ui_routes(ctx: ServerContext) -> list[BaseRoute]:
    """Every page of the UI and its static files (the app factory mounts them last)."""
    from runyard.server.ui import charts, experiments, registry_pages, run_page
    from runyard.server.ui.static import static_routes

    return [
        *static_routes(),
        *experiments.routes(ctx),
        *run_page.routes(ctx),
        *charts.routes(ctx),
        *registry_pages.routes(ctx),
    ]
