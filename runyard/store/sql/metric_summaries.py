"""Per-(run, key) metric summaries: the latest point, min, max and point count of each series.

The ``metric_summaries`` table keeps them up to date as points are logged (see
:mod:`runyard.store.sql.logging_ops`), so a run page shows min/max/count of every metric
without reading a single history point.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase
from runyard.store.sql.rows import metric_value

__all__ = ["MetricSummary", "MetricSummaryOps"]


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One metric series of a run.

    ``latest_*`` is the point with the greatest ``(step, timestamp, value)`` (the value
    ``get_run`` reports); ``min_value``/``max_value`` range over the series' non-NaN values
    (None when every value is NaN); ``count`` is the number of points logged.
    """

    key: str
    latest_value: float
    latest_step: int
    latest_timestamp: int
    min_value: float | None
    max_value: float | None
    count: int


class MetricSummaryOps(SqlBase):
    """Per-(run, key) metric summaries: latest, min, max, point count."""

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        """The summary of every metric of ``run_id``, sorted by key.

        Raises:
            ResourceDoesNotExist: no run has this id.
        """
        ms = t.metric_summaries
        query = (
            select(
                ms.c.key,
                ms.c.value,
                ms.c.is_nan,
                ms.c.step,
                ms.c.timestamp,
                ms.c.min_value,
                ms.c.max_value,
                ms.c.point_count,
            )
            .where(ms.c.run_uuid == run_id)
            .order_by(ms.c.key)
        )
        with self._read() as conn:
            rows = conn.execute(query).fetchall()
            if not rows:
                self._run_row(conn, run_id)  # raises when the run does not exist
        return [
            MetricSummary(
                key=key,
                latest_value=metric_value(value, bool(is_nan)),
                latest_step=int(step),
                latest_timestamp=int(timestamp),
                min_value=low,
                max_value=high,
                count=int(count),
            )
            for key, value, is_nan, step, timestamp, low, high, count in rows
        ]
