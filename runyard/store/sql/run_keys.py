"""(being written)"""

from __future__ import annotations

from runyard.store.sql.base import SqlBase


class RunKeyOps(SqlBase):
    """The distinct param/metric/tag keys of experiments' runs."""
