"""``/experiments/<id>/runs.csv`` and ``/runs.csv``: every run matching the table's filter, in
its order and with its columns, streamed as CSV.

The first page is read before the response starts, so an invalid filter is an error page (400)
rather than a broken download; the rest is read 1,000 runs per store call while streaming.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterator, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from runyard.entities import PagedList, Run
from runyard.server.context import ServerContext
from runyard.server.ui.runs_table import RunsQuery, cell_value, default_columns, source_of

__all__ = ["CSV_PAGE_SIZE", "runs_csv"]

#: Runs per store call while streaming (search_runs' maximum).
CSV_PAGE_SIZE = 1000
_FIXED_HEADER = [
    "run_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "user",
    "source",
    "git_commit",
]


def _iso(ms: int | None) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    return str(value)


def _row(run: Run, cols: Sequence[str]) -> list[str]:
    info = run.info
    duration = ""
    if info.start_time and info.end_time and info.end_time >= info.start_time:
        duration = f"{(info.end_time - info.start_time) / 1000:.3f}"
    source, commit = source_of(run)
    return [
        info.run_id,
        info.run_name,
        info.status,
        _iso(info.start_time),
        _iso(info.end_time),
        duration,
        info.user_id,
        source,
        commit,
        *(_cell(cell_value(run, col)) for col in cols),
    ]


def _stream(
    ctx: ServerContext, query: RunsQuery, first: PagedList[Run], cols: Sequence[str]
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_FIXED_HEADER, *cols])
    page = first
    while True:
        writer.writerows(_row(run, cols) for run in page)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if not page.token:
            return
        page = _search(ctx, query, page.token)


def _search(ctx: ServerContext, query: RunsQuery, token: str | None) -> PagedList[Run]:
    return ctx.tracking().search_runs(
        list(query.experiment_ids),
        query.filter or None,
        query.view_type,
        CSV_PAGE_SIZE,
        [query.order_by] if query.order_by else None,
        token,
    )


def runs_csv(
    ctx: ServerContext, request: Request, experiment_ids: Sequence[str], ids_in_query: bool
) -> Response:
    """The CSV download of the runs table's current filter/order/columns (all pages)."""
    # Unknown experiments are a 404 page; the ids are the store's (normalised) spelling.
    ids = [ctx.tracking().get_experiment(e).experiment_id for e in experiment_ids]
    query = RunsQuery.from_request(request, "", ids, ids_in_query)
    first = _search(ctx, query, None)
    cols = list(query.cols) if query.cols is not None else default_columns(first, None)
    name = "-".join(ids)
    return StreamingResponse(
        _stream(ctx, query, first, cols),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="runs-{name}.csv"'},
    )
