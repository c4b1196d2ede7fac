"""``GET /api/2.0/runyard/metrics/get-history-downsampled``: one metric of many runs, each series
reduced in the database to at most ``max_points`` points that keep its shape (first, last, lowest
and highest point of every bucket of steps). The UI's charts draw from it; zooming asks again with
``start_step``/``end_step`` at full resolution, live refresh with ``start_step = last step + 1``."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.protocol.requests import Field
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint
from runyard.store.sql.history_downsample import HistoryDownsampleOps

__all__ = ["DEFAULT_MAX_POINTS", "ENDPOINTS", "MAX_RUNS", "get_history_downsampled"]

#: Runs per request: a chart page asks once per metric key for all its runs.
MAX_RUNS = 100
DEFAULT_MAX_POINTS = 1000


def _one_series(
    store: HistoryDownsampleOps,
    run_id: str,
    key: str,
    max_points: int,
    start: int | None,
    end: int | None,
) -> dict[str, Any]:
    total, downsampled, points = store.get_metric_history_downsampled(
        run_id, key, max_points, start, end
    )
    return {
        "run_id": run_id,
        "metric_key": key,
        "total_points": total,
        "downsampled": downsampled,
        # NaN as MLflow sends it; infinities are stored as the largest doubles.
        "points": [
            {
                "step": m.step,
                "timestamp": m.timestamp,
                "value": m.value if m.value == m.value else "NaN",
            }
            for m in points
        ],
    }


def _series(
    store: HistoryDownsampleOps,
    run_ids: list[str],
    key: str,
    max_points: int,
    start: int | None,
    end: int | None,
) -> list[dict[str, Any]]:
    # One after the other: reading them from a few threads at once measured slower (the GIL).
    return [_one_series(store, run_id, key, max_points, start, end) for run_id in run_ids]


async def get_history_downsampled(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET metrics/get-history-downsampled → ``{"series": [...]}``, one per run in request order."""
    run_ids = list(dict.fromkeys(p["run_ids"]))
    if len(run_ids) > MAX_RUNS:
        raise InvalidParameterValue(
            f"At most {MAX_RUNS} run_ids can be requested at once, got {len(run_ids)}."
        )
    max_points = DEFAULT_MAX_POINTS if p["max_points"] is None else p["max_points"]
    store = ctx.tracking()
    if not isinstance(store, HistoryDownsampleOps):
        raise RunyardError(
            "This tracking store cannot downsample metric histories.",
            error_code="NOT_IMPLEMENTED",
        )
    # Up to 100 scans of long series: off the event loop.
    series = await run_in_threadpool(
        _series, store, run_ids, p["metric_key"], max_points, p["start_step"], p["end_step"]
    )
    return {"series": series}


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "/metrics/get-history-downsampled",
        ("GET",),
        get_history_downsampled,
        (
            Field("run_ids", repeated=True, required=True),
            Field("metric_key", required=True),
            Field("max_points", "int"),
            Field("start_step", "int"),
            Field("end_step", "int"),
        ),
        "One metric of many runs, each reduced to at most max_points points (min/max kept)",
        namespace="runyard",
        tags=("ui",),
        reads_replica=True,
    ),
]
