"""Statements compiled once per dialect and executed straight on the DBAPI cursor.

SQLAlchemy Core builds and caches SQL well, but its per-execution work (cache keys, result
set-up, parameter processing) costs tens of microseconds per statement and about a microsecond
per row of an executemany. The write path and the single-run reads run a handful of fixed
statements many thousands of times, so we compile those once for the engine's dialect and run
them on the DBAPI cursor of the same SQLAlchemy connection (same transaction). Results are plain
tuples. Everything dynamic (search, listings) stays on regular SQLAlchemy Core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

__all__ = ["Prepared"]


class Prepared:
    """One statement compiled for one dialect.

    Args:
        stmt: the Core statement, with ``bindparam`` placeholders.
        dialect: the engine's dialect.
        columns: the order of the tuples :meth:`run_rows` receives.
    """

    def __init__(self, stmt: ClauseElement, dialect: Dialect, columns: Sequence[str] = ()) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        # qmark dialects (SQLite) take tuples in compile order; named ones (psycopg) take dicts.
        self._order: Sequence[str] | None = getattr(compiled, "positiontup", None)
        self._columns = tuple(columns)
        self._perm: list[int] | None = None
        if self._order is not None and columns:
            perm = [self._columns.index(name) for name in self._order]
            self._perm = None if perm == list(range(len(self._columns))) else perm

    def _args(self, params: Mapping[str, Any]) -> Any:
        if self._order is None:
            return dict(params)
        return tuple(params[name] for name in self._order)

    def run(self, conn: Connection, **params: Any) -> Any:
        """Execute once with named parameters; returns the DBAPI cursor (plain tuples)."""
        cursor = conn.connection.cursor()
        cursor.execute(self.sql, self._args(params))
        return cursor

    def run_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """executemany over tuples laid out as ``columns``; returns the rows changed."""
        if not rows:
            return 0
        if self._order is None:
            args: Any = [dict(zip(self._columns, row, strict=True)) for row in rows]
        elif self._perm is None:
            args = rows
        else:
            perm = self._perm
            args = [tuple(row[i] for i in perm) for row in rows]
        cursor = conn.connection.cursor()
        cursor.executemany(self.sql, args)
        return int(cursor.rowcount)
