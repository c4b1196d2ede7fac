"""``/metrics`` (metric charts of runs) and, from :mod:`.compare`, ``/compare``.

The server renders the frame of the page — the runs with their colours, the metric keys to pick
from, the controls — from the runs' rows alone (their latest metrics come with them); no metric
history is read here. ``static/js/charts.js`` fetches each chart's series, downsampled in the
database, from ``/api/2.0/runyard/metrics/get-history-downsampled`` and draws them with plotly.js.

Runs are read by id in chunks of 100 through ``search_runs`` (``attributes.run_id IN (...)``), so
a page over any number of runs costs a few queries, never one per run.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runyard.server.context import ServerContext
from runyard.server.ui import access
from runyard.server.ui.compare import compare_page, load_runs, parse_run_ids
from runyard.server.ui.render import page, render

__all__ = ["DEFAULT_KEYS", "X_AXES", "chart_options", "metrics_page", "routes"]

#: Metric keys charted when the URL names none.
DEFAULT_KEYS = 6

X_AXES = ("step", "time", "relative")


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.lower() in ("1", "true", "on", "yes")


def _smoothing(value: str | None) -> float:
    try:
        weight = float(value) if value else 0.0
    except ValueError:
        return 0.0
    return min(0.99, max(0.0, weight)) if weight == weight else 0.0


def chart_options(request: Request, keys: list[str], running: bool) -> dict[str, Any]:
    """The chart controls' state from the URL (``keys``, ``x``, ``log``, ``smooth``, ``live``),
    each value checked: unknown keys dropped, the x axis one of step/time/relative, smoothing
    clamped to 0..0.99."""
    q = request.query_params
    asked = [k.strip() for k in (q.get("keys") or "").split(",") if k.strip()]
    known = set(keys)
    selected = [k for k in dict.fromkeys(asked) if k in known] if asked else keys[:DEFAULT_KEYS]
    x = q.get("x") or "step"
    return {
        "selected": selected,
        "unknown_keys": [k for k in asked if k not in known],
        "x": x if x in X_AXES else "step",
        "log": _flag(q.get("log"), False),
        "smooth": _smoothing(q.get("smooth")),
        "live": _flag(q.get("live"), running),
    }


def metrics_page(ctx: ServerContext, request: Request) -> Response:
    """``/metrics?runs=a,b&keys=loss,acc&x=step|time|relative&log=1&smooth=0.6&live=1``."""
    run_ids = parse_run_ids(request.query_params.get("runs"))
    if not run_ids:
        return render(request, "charts/metrics.html", empty=True, run_set=None)
    run_set = load_runs(ctx.tracking(), run_ids)
    access.require_runs(ctx, request, run_set.runs)
    keys = sorted({key for run in run_set.runs for key in run.data.metrics})
    running = any(run.info.status == "RUNNING" for run in run_set.runs)
    options = chart_options(request, keys, running)
    data = {
        "runs": run_set.summaries(),
        "keys": options["selected"],
        "x": options["x"],
        "log": options["log"],
        "smooth": options["smooth"],
        "live": options["live"],
    }
    return render(
        request,
        "charts/metrics.html",
        empty=False,
        run_set=run_set,
        keys=keys,
        options=options,
        running=running,
        data=data,
        crumb=run_set.experiment_crumb(),
    )


def routes(ctx: ServerContext) -> list[BaseRoute]:
    """``/metrics`` and ``/compare``."""
    return [
        Route("/metrics", page(metrics_page)(ctx), methods=["GET"]),
        Route("/compare", page(compare_page)(ctx), methods=["GET"]),
    ]
