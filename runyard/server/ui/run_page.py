"""The run page, ``/runs/<run_id>``: overview, parameters, metrics, tags and artifacts.

One page read: the run, its experiment, its parent's name, its first 100 children (one search),
its metric summaries (latest/min/max/count per key, no history points), the logged models it
produced or used and the registry versions made from it. Artifacts are listed lazily by the
browser (``/ajax-api/2.0/mlflow/artifacts/list``) and previewed through
``/runs/<run_id>/artifact-preview`` (:mod:`.artifact_preview`). Writes (tags, the description)
go through MLflow's REST API from ``static/js/run.js``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runyard.entities import Run
from runyard.errors import ResourceDoesNotExist, RunyardError
from runyard.server.context import ServerContext
from runyard.server.ui import access
from runyard.server.ui.artifact_preview import preview_endpoint
from runyard.server.ui.markdown import render_markdown
from runyard.server.ui.render import format_duration, not_found, page, render
from runyard.store.sql.metric_summaries import MetricSummary, MetricSummaryOps

__all__ = ["CHILD_RUNS_SHOWN", "routes"]

log = logging.getLogger(__name__)

#: Child runs listed on a parent's page (a link leads to all of them).
CHILD_RUNS_SHOWN = 100
NOTE_TAG = "mlflow.note.content"
PARENT_TAG = "mlflow.parentRunId"
_REPO_URL_TAGS = ("mlflow.source.git.repoURL", "mlflow.gitRepoURL")


@dataclass(frozen=True)
class LinkedModel:
    """A logged model the run produced (``output``) or used (``input``)."""

    model_id: str
    direction: str
    name: str = ""
    step: int | None = None


def _safe_href(url: str | None) -> str | None:
    """``url`` when it is an http(s) link, else None (a logged ``javascript:`` never links)."""
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


def _duration(run: Run) -> str:
    info = run.info
    if info.end_time:
        return format_duration(info.start_time, info.end_time)
    if info.status == "RUNNING" and info.start_time:
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        text = format_duration(info.start_time, now)
        return f"{text} so far" if text else ""
    return ""


def _children(ctx: ServerContext, run: Run) -> tuple[list[Run], bool]:
    """The first child runs (``tags.mlflow.parentRunId``) and whether there are more."""
    found = ctx.tracking().search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.{PARENT_TAG} = '{run.info.run_id}'",
        max_results=CHILD_RUNS_SHOWN,
        order_by=["attributes.start_time ASC"],
    )
    return list(found), bool(found.token)


def _parent(ctx: ServerContext, run: Run) -> tuple[str, str] | None:
    """(id, name) of the parent run; the name is "" when the parent no longer exists."""
    parent_id = run.data.tags.get(PARENT_TAG)
    if not parent_id:
        return None
    try:
        return parent_id, ctx.tracking().get_run(parent_id).info.run_name
    except ResourceDoesNotExist:
        return parent_id, ""


def _logged_models(ctx: ServerContext, run: Run) -> list[LinkedModel]:
    outputs = [LinkedModel(m.model_id, "output", step=m.step) for m in run.outputs.model_outputs]
    inputs = [LinkedModel(m.model_id, "input") for m in run.inputs.model_inputs]
    linked = outputs + inputs
    if not linked:
        return []
    ids = sorted({m.model_id for m in linked})
    quoted = ", ".join("'" + i.replace("'", "") + "'" for i in ids)
    try:
        found = ctx.tracking().search_logged_models(
            [run.info.experiment_id], filter_string=f"model_id IN ({quoted})", max_results=100
        )
        names = {m.model_id: m.name for m in found}
    except RunyardError:
        log.warning("Could not read the logged models of run %s", run.info.run_id, exc_info=True)
        names = {}
    return [LinkedModel(m.model_id, m.direction, names.get(m.model_id, ""), m.step) for m in linked]


def _model_versions(ctx: ServerContext, request: Request, run_id: str) -> list[Any]:
    versions = ctx.registry().search_model_versions(
        filter_string=f"run_id = '{run_id}'", max_results=100
    )
    names = {v.name for v in versions}
    readable = set(access.readable_ids(ctx, request, access.REGISTERED_MODEL, sorted(names)))
    shown = [v for v in versions if v.name in readable]
    return sorted(shown, key=lambda v: (v.name, int(v.version)))


def _metric_summaries(ctx: ServerContext, run: Run) -> list[MetricSummary]:
    store = ctx.tracking()
    if isinstance(store, MetricSummaryOps):
        return store.get_metric_summaries(run.info.run_id)
    # A store without summaries: the latest values only.
    return [
        MetricSummary(m.key, m.value, m.step, m.timestamp, None, None, 0)
        for m in sorted(run.data.metric_objs, key=lambda m: m.key)
    ]


def _datasets(run: Run) -> list[dict[str, str]]:
    out = []
    for item in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        data = item.dataset
        out.append(
            {
                "name": data.name,
                "digest": data.digest,
                "source_type": data.source_type,
                "context": tags.get("mlflow.data.context", ""),
            }
        )
    return out


def _run_page(ctx: ServerContext, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    store = ctx.tracking()
    try:
        run = store.get_run(run_id)
    except ResourceDoesNotExist:
        return not_found(request, f"Run '{run_id}' does not exist.")
    access.require_runs(ctx, request, [run])
    experiment = store.get_experiment(run.info.experiment_id)
    tags = run.data.tags
    children, more_children = _children(ctx, run)
    summaries = _metric_summaries(ctx, run)
    repo_url = next((tags[k] for k in _REPO_URL_TAGS if tags.get(k)), None)
    return render(
        request,
        "run/page.html",
        section="experiments",
        run=run,
        experiment=experiment,
        run_name=run.info.run_name or run.info.run_id,
        duration=_duration(run),
        parent=_parent(ctx, run),
        children=children,
        more_children=more_children,
        children_filter=f"tags.{PARENT_TAG} = '{run_id}'",
        datasets=_datasets(run),
        logged_models=_logged_models(ctx, run),
        model_versions=_model_versions(ctx, request, run_id),
        note=tags.get(NOTE_TAG, ""),
        note_html=render_markdown(tags.get(NOTE_TAG, "")),
        repo_url=repo_url,
        repo_href=_safe_href(repo_url),
        params=sorted(run.data.params.items()),
        metrics=summaries,
        chart_keys=",".join(m.key for m in summaries),
        tags=sorted(tags.items()),
        user_tag_count=sum(1 for k in tags if not k.startswith("mlflow.")),
        quote=quote,
    )


def routes(ctx: ServerContext) -> list[BaseRoute]:
    """``/runs/<run_id>`` and ``/runs/<run_id>/artifact-preview``."""
    return [
        Route("/runs/{run_id}", page(_run_page)(ctx), methods=["GET"]),
        Route("/runs/{run_id}/artifact-preview", preview_endpoint(ctx), methods=["GET"]),
    ]
