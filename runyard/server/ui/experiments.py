"""The experiments area of the UI.

* ``/`` → ``/experiments``;
* ``/experiments?q=&view=&page_token=`` — the experiments list (search by name; a run id in
  ``q`` goes straight to that run);
* ``/experiments/<id>`` and ``/runs?experiment_ids=..`` — the runs table (:mod:`.runs_table`);
* ``/experiments/<id>/runs.csv`` and ``/runs.csv?experiment_ids=..`` — CSV (:mod:`.runs_csv`).

Writes (create, rename, delete, restore) happen in ``experiments.js`` through MLflow's REST API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.entities import Experiment, LifecycleStage
from runyard.errors import ResourceDoesNotExist
from runyard.server.context import ServerContext
from runyard.server.ui import access
from runyard.server.ui.render import page, prefix_of, render
from runyard.server.ui.runs_csv import runs_csv
from runyard.server.ui.runs_table import VIEWS, runs_page
from runyard.store.sql.run_keys import ExperimentRunStats, RunKeyOps

__all__ = ["EXPERIMENTS_PAGE_SIZE", "ExperimentRow", "name_filter", "routes"]

EXPERIMENTS_PAGE_SIZE = 100
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def name_filter(text: str) -> str:
    """The search filter for experiments whose name contains ``text`` (any case)."""
    literal = text.replace("\\", "\\\\").replace("'", "''")
    return f"name ILIKE '%{literal}%'"


@dataclass(frozen=True)
class ExperimentRow:
    """One row of the experiments list."""

    experiment: Experiment
    run_count: int
    deleted_runs: int
    last_activity: int | None
    tags: list[tuple[str, str]]

    @property
    def deleted(self) -> bool:
        """Whether the experiment is deleted."""
        return self.experiment.lifecycle_stage == LifecycleStage.DELETED


def _row(exp: Experiment, stats: ExperimentRunStats) -> ExperimentRow:
    times = [t for t in (stats.last_start_time, exp.last_update_time) if t]
    tags = [(k, v) for k, v in sorted(exp.tags.items()) if not k.startswith("mlflow.")]
    return ExperimentRow(exp, stats.run_count, stats.deleted_count, max(times, default=None), tags)


def _redirect(request: Request, path: str) -> Response:
    return RedirectResponse(prefix_of(request) + path, status_code=302)


def _run_exists(ctx: ServerContext, run_id: str) -> bool:
    try:
        ctx.tracking().get_run(run_id)
    except ResourceDoesNotExist:
        return False
    return True


def experiments_list(ctx: ServerContext, request: Request) -> Response:
    """``/experiments``: search, views, one page of experiments with their run counts."""
    q = (request.query_params.get("q") or "").strip()
    if _RUN_ID.fullmatch(q.lower()) and _run_exists(ctx, q.lower()):
        return _redirect(request, f"/runs/{q.lower()}")
    view = request.query_params.get("view") or "active"
    view = view if view in VIEWS else "active"
    token = request.query_params.get("page_token") or None
    store = ctx.tracking()
    found, next_token = access.readable_page(
        ctx,
        request,
        access.EXPERIMENT,
        lambda page_token: store.search_experiments(
            VIEWS[view], EXPERIMENTS_PAGE_SIZE, name_filter(q) if q else None, None, page_token
        ),
        lambda e: e.experiment_id,
        token,
        EXPERIMENTS_PAGE_SIZE,
    )
    ids = [e.experiment_id for e in found]
    stats: dict[str, ExperimentRunStats] = {}
    if isinstance(store, RunKeyOps):
        stats = store.experiment_run_stats(ids)
    rows = [_row(e, stats.get(e.experiment_id, ExperimentRunStats(0, None))) for e in found]
    context: dict[str, Any] = {
        "section": "experiments",
        "q": q,
        "view": view,
        "views": list(VIEWS),
        "rows": rows,
        "next_token": next_token,
        "paged": token is not None,
    }
    return render(request, "experiments/list.html", **context)


def experiment_runs(ctx: ServerContext, request: Request) -> Response:
    """``/experiments/<id>``: the runs table of one experiment."""
    access.require_experiments(ctx, request, [request.path_params["experiment_id"]])
    return runs_page(ctx, request, [request.path_params["experiment_id"]], ids_in_query=False)


def _query_ids(request: Request) -> list[str]:
    ids = [i.strip() for i in request.query_params.getlist("experiment_ids") if i.strip()]
    return list(dict.fromkeys(ids))


def many_runs(ctx: ServerContext, request: Request) -> Response:
    """``/runs?experiment_ids=1&experiment_ids=2``: the runs table of several experiments."""
    ids = _query_ids(request)
    if not ids:
        return _redirect(request, "/experiments")
    access.require_experiments(ctx, request, ids)
    return runs_page(ctx, request, ids, ids_in_query=True)


def experiment_csv(ctx: ServerContext, request: Request) -> Response:
    """``/experiments/<id>/runs.csv``."""
    access.require_experiments(ctx, request, [request.path_params["experiment_id"]])
    return runs_csv(ctx, request, [request.path_params["experiment_id"]], ids_in_query=False)


def many_csv(ctx: ServerContext, request: Request) -> Response:
    """``/runs.csv?experiment_ids=..``."""
    ids = _query_ids(request)
    if not ids:
        return _redirect(request, "/experiments")
    access.require_experiments(ctx, request, ids)
    return runs_csv(ctx, request, ids, ids_in_query=True)


def routes(ctx: ServerContext) -> list[BaseRoute]:
    """This area's pages."""

    async def home(request: Request) -> Response:
        return _redirect(request, "/experiments")

    get = ["GET"]
    # Pages of runs are large (a 100-row page is ~100 KB of HTML) and compress ~10x.
    gzip = [Middleware(GZipMiddleware, minimum_size=2048)]

    def pages(path: str, fn: Any) -> Route:
        return Route(path, page(fn)(ctx), methods=get, middleware=gzip)

    return [
        Route("/", home, methods=get),
        pages("/experiments", experiments_list),
        pages("/experiments/{experiment_id}", experiment_runs),
        pages("/experiments/{experiment_id}/runs.csv", experiment_csv),
        pages("/runs", many_runs),
        pages("/runs.csv", many_csv),
    ]
