"""(being written)"""

from __future__ import annotations

from runyard.store.sql.base import SqlBase


class HistoryDownsampleOps(SqlBase):
    """Metric histories reduced to at most N points for charts."""
