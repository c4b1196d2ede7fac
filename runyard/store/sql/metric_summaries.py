"""(being written)"""

from __future__ import annotations

from runyard.store.sql.base import SqlBase


class MetricSummaryOps(SqlBase):
    """Per-(run, key) metric summaries: latest, min, max, point count."""
