"""``/compare?runs=a,b,c,...``: runs side by side, and the run-loading helpers of the chart pages.

The page shows a table of what differs between the runs (attributes, params, latest metrics,
tags; identical rows hidden by default), and ``static/js/compare.js`` draws from the run data the
server embeds as JSON: parallel coordinates, a scatter of any two params/metrics, and the metric
charts of :mod:`.charts` overlaid for the keys the runs share.

Runs are read by id in chunks of 100 through ``search_runs`` (``attributes.run_id IN (...)``)
across every experiment, so comparing any number of runs costs a few queries, never one per run.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runyard.entities import Experiment, Run, ViewType
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.server.context import ServerContext
from runyard.server.ui import access
from runyard.server.ui.render import format_duration, format_time, format_value, render
from runyard.store.base import TrackingStore

__all__ = [
    "PALETTE",
    "RunSet",
    "compare_page",
    "diff_sections",
    "load_runs",
    "parse_run_ids",
    "run_colors",
]

#: Run ids are hex uuids (MLflow) or, from other tools, word characters: nothing that could
#: break out of the quoted ``IN`` list of the search filter.
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Runs per search: the ``IN`` list stays small and one page holds the whole chunk.
_CHUNK = 100
#: Line colours on white: Tableau 10, then ten more for pages with more runs.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#79706e",
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939",
)  # fmt: skip


def parse_run_ids(raw: str | None) -> list[str]:
    """``a,b,c`` → ``["a", "b", "c"]`` (blanks and repeats dropped); refuses malformed ids."""
    ids = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    bad = [run_id for run_id in ids if not _RUN_ID.match(run_id)]
    if bad:
        raise InvalidParameterValue(f"Invalid run id '{bad[0][:80]}' in the runs parameter.")
    return ids


def run_colors(run_ids: Sequence[str]) -> dict[str, str]:
    """A colour per run: the one its id hashes to among the first ten (all distinct), the next
    free one when two runs of the page collide, the next ten when those are taken — the same
    runs always get the same colours."""
    colors: dict[str, str] = {}
    used: set[int] = set()
    tier = 10
    for run_id in run_ids:
        base = (len(used) // tier * tier) % len(PALETTE)
        slot = base + zlib.crc32(run_id.encode()) % tier
        for _ in range(tier):
            if slot not in used:
                break
            slot = base + (slot - base + 1) % tier
        used.add(slot)
        if len(used) == len(PALETTE):
            used.clear()
        colors[run_id] = PALETTE[slot]
    return colors


@dataclass
class RunSet:
    """Runs asked for by id, in the order asked, with what the pages show about them."""

    runs: list[Run]
    missing: list[str]
    experiments: dict[str, Experiment]
    colors: dict[str, str]

    def name(self, run: Run) -> str:
        """The run's name, or the start of its id when it has none."""
        return run.info.run_name or run.info.run_id[:8]

    def experiment_crumb(self) -> tuple[str, str] | None:
        """(name, id) of the runs' experiment when they all belong to one."""
        ids = {run.info.experiment_id for run in self.runs}
        if len(ids) != 1:
            return None
        exp_id = ids.pop()
        experiment = self.experiments.get(exp_id)
        return (experiment.name if experiment else exp_id), exp_id

    def summaries(self) -> list[dict[str, Any]]:
        """What the page's scripts need about each run."""
        return [
            {
                "id": run.info.run_id,
                "name": self.name(run),
                "color": self.colors[run.info.run_id],
                "status": run.info.status,
                "start_time": run.info.start_time,
                "experiment_id": run.info.experiment_id,
            }
            for run in self.runs
        ]


def _all_experiment_ids(store: TrackingStore) -> dict[str, Experiment]:
    experiments: dict[str, Experiment] = {}
    token = None
    while True:
        found = store.search_experiments(ViewType.ALL, 50_000, page_token=token)
        experiments.update((e.experiment_id, e) for e in found)
        token = found.token
        if not token:
            return experiments


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_runs(store: TrackingStore, run_ids: Sequence[str]) -> RunSet:
    """The runs with these ids (deleted ones too), a few queries whatever their number.

    Raises ResourceDoesNotExist when none of them exists.
    """
    experiments = _all_experiment_ids(store)
    found: dict[str, Run] = {}
    for chunk in _chunks(run_ids, _CHUNK):
        listed = ", ".join(f"'{run_id}'" for run_id in chunk)
        page_of_runs = store.search_runs(
            list(experiments),
            f"attributes.run_id IN ({listed})",
            ViewType.ALL,
            max_results=_CHUNK,
        )
        found.update((run.info.run_id, run) for run in page_of_runs)
    runs = [found[run_id] for run_id in run_ids if run_id in found]
    missing = [run_id for run_id in run_ids if run_id not in found]
    if run_ids and not runs:
        shown = ", ".join(run_ids[:5]) + (" …" if len(run_ids) > 5 else "")
        raise ResourceDoesNotExist(f"No run exists with the id(s) {shown}.")
    return RunSet(runs, missing, experiments, run_colors([r.info.run_id for r in runs]))


#: Tags every run carries (name, user, source, parent): noise in a comparison.
_SYSTEM_TAG = "mlflow."
#: Metrics on the parallel coordinates by default (after the params that differ).
_DEFAULT_METRIC_AXES = 3
#: Metric charts drawn for the keys the runs share.
_SHARED_CHARTS = 6


@dataclass
class DiffRow:
    """One row of the comparison: a key and its value in each run (None: the run lacks it)."""

    key: str
    values: list[str | None]

    @property
    def same(self) -> bool:
        """Whether every run has the same value (rows hidden by "Hide identical rows")."""
        return len(set(self.values)) <= 1

    def changed(self) -> list[bool]:
        """Per run: whether its value differs from the first run's (highlighted)."""
        return [value != self.values[0] for value in self.values]


def _keyed_rows(runs: list[Run], values: list[dict[str, Any]], show: Any) -> list[DiffRow]:
    keys = sorted({key for per_run in values for key in per_run})
    return [DiffRow(key, [None if key not in v else show(v[key]) for v in values]) for key in keys]


def diff_sections(run_set: RunSet) -> list[tuple[str, list[DiffRow]]]:
    """``[(section title, rows)]``: attributes, params, metrics (latest value), tags."""
    runs = run_set.runs

    def experiment_name(run: Run) -> str:
        found = run_set.experiments.get(run.info.experiment_id)
        return found.name if found else run.info.experiment_id

    attributes = [
        DiffRow("Start time", [format_time(r.info.start_time) or None for r in runs]),
        DiffRow(
            "Duration",
            [format_duration(r.info.start_time, r.info.end_time) or None for r in runs],
        ),
        DiffRow("Status", [r.info.status for r in runs]),
        DiffRow("User", [r.info.user_id or None for r in runs]),
        DiffRow("Experiment", [experiment_name(r) for r in runs]),
    ]
    tags = [{k: v for k, v in r.data.tags.items() if not k.startswith(_SYSTEM_TAG)} for r in runs]
    return [
        ("Attributes", attributes),
        ("Params", _keyed_rows(runs, [r.data.params for r in runs], str)),
        ("Metrics", _keyed_rows(runs, [r.data.metrics for r in runs], format_value)),
        ("Tags", _keyed_rows(runs, tags, str)),
    ]


def _json_number(value: float) -> float | None:
    """NaN has no JSON spelling: null. (Infinities are stored as the largest doubles.)"""
    return None if math.isnan(value) else value


def _page_data(run_set: RunSet, sections: list[tuple[str, list[DiffRow]]]) -> dict[str, Any]:
    """The JSON the page's script draws from, with the default axes of its plots."""
    by_title = dict(sections)
    params = [row.key for row in by_title["Params"]]
    metrics = [row.key for row in by_title["Metrics"]]
    differing_params = [row.key for row in by_title["Params"] if not row.same]
    metric_rows = sorted(by_title["Metrics"], key=lambda row: row.same)  # differing ones first
    axis_metrics = [row.key for row in metric_rows[:_DEFAULT_METRIC_AXES]]
    shared = sorted(set.intersection(*(set(r.data.metrics) for r in run_set.runs)))
    runs = []
    for summary, run in zip(run_set.summaries(), run_set.runs, strict=True):
        metric_values = {k: _json_number(v) for k, v in run.data.metrics.items()}
        runs.append({**summary, "params": dict(run.data.params), "metrics": metric_values})
    return {
        "runs": runs,
        "params": params,
        "metrics": metrics,
        "shared_metrics": shared[:_SHARED_CHARTS],
        "dims": [f"params.{k}" for k in differing_params] + [f"metrics.{k}" for k in axis_metrics],
        "color": f"metrics.{axis_metrics[0]}" if axis_metrics else None,
    }


def compare_page(ctx: ServerContext, request: Request) -> Response:
    """``/compare?runs=a,b,c``: the differences table, parallel coordinates, scatter, charts."""
    run_ids = parse_run_ids(request.query_params.get("runs"))
    if not run_ids:
        return render(request, "charts/compare.html", empty=True, run_set=None)
    run_set = load_runs(ctx.tracking(), run_ids)
    access.require_runs(ctx, request, run_set.runs)
    sections = diff_sections(run_set)
    show_same = request.query_params.get("same") in ("1", "true", "on")
    return render(
        request,
        "charts/compare.html",
        empty=False,
        run_set=run_set,
        sections=sections,
        hidden_rows=sum(row.same for _, rows in sections for row in rows),
        show_same=show_same,
        data=_page_data(run_set, sections),
        crumb=run_set.experiment_crumb(),
        run_ids=",".join(run.info.run_id for run in run_set.runs),
    )
