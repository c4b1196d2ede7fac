"""Prepared statements: inserts of many rows go out as one statement per 100 rows on SQLite and
as one statement of column arrays (``unnest``) on PostgreSQL, with the same effect and counts
as one execution per row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Engine, Float, MetaData, Table, Text, create_engine
from sqlalchemy.dialects import postgresql, sqlite

from runyard.store.sql.prepared import _ROWS_PER_STATEMENT, Prepared, _multi_row_sql
from tests.store.conftest import BACKENDS, POSTGRES_URI, _reset_postgres

meta = MetaData()
points = Table(
    "points",
    meta,
    Column("series", BigInteger, primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("value", Float, nullable=False),
    Column("note", Text),
)
COLUMNS = ("series", "step", "value", "note")


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "postgresql":
        assert POSTGRES_URI is not None
        _reset_postgres(POSTGRES_URI)
        engine = create_engine(POSTGRES_URI.replace("postgresql://", "postgresql+psycopg://", 1))
    else:
        engine = create_engine("sqlite://")
    meta.create_all(engine)
    yield engine
    engine.dispose()


def insert(engine: Engine) -> Any:
    """The dialect's INSERT of ``points`` (ON CONFLICT needs one)."""
    module = postgresql if engine.dialect.name == "postgresql" else sqlite
    return module.insert(points)


def batched(stmt: Prepared) -> str | None:
    """The many-rows form of the statement on its dialect."""
    return stmt._multi or stmt._arrays


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM points ORDER BY 1, 2")]


@pytest.mark.parametrize("count", [1, _ROWS_PER_STATEMENT - 1, _ROWS_PER_STATEMENT, 357])
def test_inserts_every_row_and_counts_them(engine: Engine, count: int) -> None:
    stmt = Prepared(insert(engine).on_conflict_do_nothing(), engine.dialect, COLUMNS)
    assert batched(stmt) is not None
    rows = [(i % 3, i, i / 2, f"n{i}") for i in range(count)]
    with engine.begin() as conn:
        assert stmt.run_rows(conn, rows) == count
        # the same rows again collapse on the key: nothing changed, and the count says so
        assert stmt.run_rows(conn, rows) == 0
    assert stored(engine) == sorted(rows)


def test_column_order_differs_from_the_statement(engine: Engine) -> None:
    columns = ("note", "value", "step", "series")
    stmt = Prepared(insert(engine), engine.dialect, columns)
    rows = [(f"n{i}", float(i), i, 1) for i in range(250)]
    with engine.begin() as conn:
        assert stmt.run_rows(conn, rows) == 250
    assert stored(engine) == [(1, i, float(i), f"n{i}") for i in range(250)]


def test_upserts_apply_in_order_within_a_statement(engine: Engine) -> None:
    """A key repeated inside one multi-row statement ends with its last value, as it would
    with one execution per row."""
    base = insert(engine)
    upsert = base.on_conflict_do_update(
        index_elements=["series", "step"], set_={"value": base.excluded.value}
    )
    stmt = Prepared(upsert, engine.dialect, COLUMNS)
    rows = [(0, i % 10, float(i), None) for i in range(300)]
    with engine.begin() as conn:
        stmt.run_rows(conn, rows)
    assert stored(engine) == [(0, s, float(290 + s), None) for s in range(10)]


def test_statements_with_other_parameters_stay_single_row() -> None:
    lite = create_engine("sqlite://").dialect
    sql = "INSERT INTO points (series, step, value) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET "
    sql += "value = ?"
    assert _multi_row_sql(sql, lite) is None
    assert _multi_row_sql("UPDATE points SET value = ?", lite) is None
    assert Prepared(sqlite.insert(points), lite, COLUMNS)._arrays is None


def test_postgresql_sends_column_arrays_unless_it_updates() -> None:
    pg = create_engine("postgresql+psycopg://").dialect
    plain = Prepared(postgresql.insert(points).on_conflict_do_nothing(), pg, COLUMNS)
    assert plain._multi is None
    assert plain._arrays is not None
    assert "unnest(%(series)b::BIGINT[]" in plain._arrays  # binary lists
    assert "%(note)b::TEXT[]" in plain._arrays  # strings as TEXT: a cast to VARCHAR(n) truncates
    base = postgresql.insert(points)
    update = base.on_conflict_do_update(
        index_elements=["series", "step"], set_={"value": base.excluded.value}
    )
    assert Prepared(update, pg, COLUMNS)._arrays is None
    # unless the caller promises one row per key
    assert "unnest(" in (Prepared(update, pg, COLUMNS, distinct_rows=True)._arrays or "")


def test_distinct_upserts_update_in_one_statement(engine: Engine) -> None:
    """``distinct_rows``: stored keys are updated (old + new value), new ones inserted; rows
    that may repeat a key (``distinct=False``) still apply in order."""
    base = insert(engine)
    upsert = base.on_conflict_do_update(
        index_elements=["series", "step"], set_={"value": base.excluded.value + points.c.value}
    )
    stmt = Prepared(upsert, engine.dialect, COLUMNS, distinct_rows=True)
    with engine.begin() as conn:
        stmt.run_rows(conn, [(0, s, float(s), None) for s in range(5)])
        stmt.run_rows(conn, [(0, s, float(s), None) for s in range(3, 8)])
        stmt.run_rows(conn, [(1, 0, 1.0, None), (1, 0, 2.0, None)], distinct=False)
    assert stored(engine) == [
        *[(0, s, float(s), None) for s in range(3)],
        *[(0, s, float(2 * s), None) for s in range(3, 5)],
        *[(0, s, float(s), None) for s in range(5, 8)],
        (1, 0, 3.0, None),
    ]
