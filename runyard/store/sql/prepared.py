"""Statements compiled once per dialect and executed straight on the DBAPI cursor.

SQLAlchemy Core builds and caches SQL well, but its per-execution work (cache keys, result
set-up, parameter processing) costs tens of microseconds per statement and about a microsecond
per row of an executemany. The write path and the single-run reads run a handful of fixed
statements many thousands of times, so we compile those once for the engine's dialect and run
them on the DBAPI cursor of the same SQLAlchemy connection (same transaction). Results are plain
tuples. Everything dynamic (search, listings) stays on regular SQLAlchemy Core.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Connection, String
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

__all__ = ["Prepared"]


class Prepared:
    """One statement compiled for one dialect.

    Args:
        stmt: the Core statement, with ``bindparam`` placeholders.
        dialect: the engine's dialect.
        columns: the order of the tuples :meth:`run_rows` receives.
        distinct_rows: the caller never passes :meth:`run_rows` two rows with the same
            conflict key, so an ``ON CONFLICT DO UPDATE`` upsert may also go as one statement
            of arrays on PostgreSQL (see :func:`_unnest_sql`).
        packed_params: :meth:`run` may be given arrays packed by
            :mod:`~runyard.store.sql.pg_arrays` (PostgreSQL).
    """

    def __init__(
        self,
        stmt: ClauseElement,
        dialect: Dialect,
        columns: Sequence[str] = (),
        *,
        distinct_rows: bool = False,
        packed_params: bool = False,
    ) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        # qmark dialects (SQLite) take tuples in compile order; named ones (psycopg) take dicts.
        self._order: Sequence[str] | None = getattr(compiled, "positiontup", None)
        self._columns = tuple(columns)
        self._perm: list[int] | None = None
        if self._order is not None and columns:
            perm = [self._columns.index(name) for name in self._order]
            self._perm = None if perm == list(range(len(self._columns))) else perm
        self._multi = _multi_row_sql(self.sql, dialect) if columns else None
        self._arrays = _unnest_sql(stmt, self.sql, dialect, distinct_rows) if columns else None
        self._packers: tuple[Any, ...] = ()
        self._ready: Any = None
        if self._arrays is not None or packed_params:
            from runyard.store.sql import pg_arrays  # imports psycopg: PostgreSQL only

            if self._arrays is not None:
                self._packers = tuple(
                    pg_arrays.packer(_array_type(stmt.table.c[name].type, dialect))  # type: ignore[attr-defined]
                    for name in self._columns
                )
            if packed_params or any(self._packers):
                self._ready = pg_arrays.ready

    def _args(self, params: Mapping[str, Any]) -> Any:
        if self._order is None:
            return dict(params)
        return tuple(params[name] for name in self._order)

    def run(self, conn: Connection, **params: Any) -> Any:
        """Execute once with named parameters; returns the DBAPI cursor (plain tuples)."""
        if self._ready is not None:
            self._ready(conn.connection.dbapi_connection)
        cursor = conn.connection.cursor()
        cursor.execute(self.sql, self._args(params))
        return cursor

    def fetch_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Many distinct rows in one statement of arrays (PostgreSQL); what it returns."""
        if self._arrays is None:
            raise TypeError("fetch_rows needs a statement of column arrays (PostgreSQL)")
        return list(self._execute_arrays(conn, rows).fetchall())

    def _execute_arrays(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> Any:
        assert self._arrays is not None
        arrays = {
            name: values if pack is None else pack(values)
            for name, pack, values in zip(
                self._columns, self._packers, map(list, zip(*rows, strict=True)), strict=True
            )
        }
        if self._ready is not None:
            self._ready(conn.connection.dbapi_connection)
        cursor = conn.connection.cursor()
        cursor.execute(self._arrays, arrays)
        return cursor

    def run_rows(
        self, conn: Connection, rows: Sequence[tuple[Any, ...]], *, distinct: bool = True
    ) -> int:
        """executemany over tuples laid out as ``columns``; returns the rows changed.

        ``distinct=False`` says that two rows may share a conflict key: they are then applied
        one after the other even where ``distinct_rows`` allows one statement.
        """
        if not rows:
            return 0
        if self._arrays is not None and len(rows) > 1 and distinct:
            return int(self._execute_arrays(conn, rows).rowcount)
        if self._order is None:
            args: Any = [dict(zip(self._columns, row, strict=True)) for row in rows]
        elif self._perm is None:
            args = rows
        else:
            perm = self._perm
            args = [tuple(row[i] for i in perm) for row in rows]
        cursor = conn.connection.cursor()
        multi = self._multi
        if multi is None or len(args) < _ROWS_PER_STATEMENT:
            cursor.executemany(self.sql, args)
            return int(cursor.rowcount)
        # Whole chunks as multi-row statements, the rest (if any) one row per execution.
        whole = len(args) - len(args) % _ROWS_PER_STATEMENT
        changed = 0
        for start in range(0, whole, _ROWS_PER_STATEMENT):
            cursor.execute(multi, list(_chain(args[start : start + _ROWS_PER_STATEMENT])))
            changed += cursor.rowcount
        if whole < len(args):
            cursor.executemany(self.sql, args[whole:])
            changed += cursor.rowcount
        return changed


#: Rows per multi-row INSERT on SQLite (a statement that would need more parameters than the
#: library allows keeps executemany: see _multi_row_sql).
_ROWS_PER_STATEMENT = 100
_chain = chain.from_iterable


def _multi_row_sql(sql: str, dialect: Dialect) -> str | None:
    """``INSERT .. VALUES (?, ..), (?, ..), ..`` of :data:`_ROWS_PER_STATEMENT` rows for a
    single-row qmark INSERT whose only parameters are its VALUES; None otherwise.

    One multi-row statement costs SQLite's Python driver a third less than as many executions of
    ``executemany`` (one statement step and reset instead of one per row); the rows are applied
    in order, each with the statement's ``ON CONFLICT`` clause, as ``executemany`` would.
    """
    if dialect.name != "sqlite" or not sql.startswith("INSERT"):
        return None
    head, sep, tail = sql.partition(" VALUES (")
    group, close, rest = tail.partition(")")
    marks = group.split(", ")
    if not sep or not close or set(marks) != {"?"} or "?" in head + rest:
        return None
    if len(marks) * _ROWS_PER_STATEMENT > _max_variables():
        return None
    values = ", ".join([f"({group})"] * _ROWS_PER_STATEMENT)
    return f"{head} VALUES {values}{rest}"


def _unnest_sql(
    stmt: ClauseElement, sql: str, dialect: Dialect, distinct_rows: bool = False
) -> str | None:
    """On PostgreSQL, ``INSERT .. SELECT * FROM unnest(%(a)s::T[], ..)`` for a single-row
    ``INSERT .. VALUES (%(a)s, ..)``; None otherwise.

    Many rows then travel as one array per column in one statement: psycopg's executemany
    adapts and sends each row (~9 ms of CPU per 1,000 points), binary arrays cost a fifth
    (numeric ones, packed by :mod:`~runyard.store.sql.pg_arrays`, a fifth of that again).
    Upserts that update (``ON CONFLICT DO UPDATE``) keep executemany unless ``distinct_rows``:
    one statement may not update a row twice, and a batch may name a key twice (the last
    value wins).
    """
    table = getattr(stmt, "table", None)
    if dialect.name != "postgresql" or table is None or not sql.startswith("INSERT"):
        return None
    found = _PG_VALUES.search(sql)
    if found is None:
        return None
    head, rest = sql[: found.start()], sql[found.end() :]
    names = _PG_PARAM.findall(found.group(1))
    if "DO UPDATE" in rest and not distinct_rows:
        return None
    if "%(" in head + rest or any(n not in table.c for n in names):
        return None
    # %(n)b: psycopg sends the lists in binary, which costs it a third of the text format
    # (1.9 against 4.9 ms for the five columns of 1,000 points).
    arrays = ", ".join(f"%({n})b::{_array_type(table.c[n].type, dialect)}[]" for n in names)
    return f"{head} SELECT * FROM unnest({arrays}){rest}"


def _array_type(column_type: Any, dialect: Dialect) -> str:
    """The element type of a column's array: text for strings, so that a value too long for
    the column fails on insert as it would row by row (a cast to ``VARCHAR(n)`` truncates)."""
    if isinstance(column_type, String):
        return "TEXT"
    return str(column_type.compile(dialect=dialect))


#: ``VALUES (%(a)s::BIGINT, %(b)s, ..)`` as psycopg's dialect compiles a one-row insert.
_PG_VALUES = re.compile(r" VALUES \(((?:%\(\w+\)s(?:::[A-Z ]+)?(?:, )?)+)\)")
_PG_PARAM = re.compile(r"%\((\w+)\)s")


def _max_variables() -> int:
    """SQLite's limit on parameters per statement (32,766 since 3.32, 999 before)."""
    return 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
