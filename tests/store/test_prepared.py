"""Prepared statements: SQLite inserts of many rows go out as multi-row statements."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import BigInteger, Column, Engine, Float, MetaData, Table, Text, create_engine
from sqlalchemy.dialects.sqlite import insert

from runyard.store.sql.prepared import _ROWS_PER_STATEMENT, Prepared, _multi_row_sql

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


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM points ORDER BY 1, 2")]


@pytest.mark.parametrize("count", [1, _ROWS_PER_STATEMENT - 1, _ROWS_PER_STATEMENT, 357])
def test_inserts_every_row_and_counts_them(engine: Engine, count: int) -> None:
    stmt = Prepared(insert(points).on_conflict_do_nothing(), engine.dialect, COLUMNS)
    assert stmt._multi is not None
    assert stmt._multi.count("(?, ?, ?, ?)") == _ROWS_PER_STATEMENT
    rows = [(i % 3, i, i / 2, f"n{i}") for i in range(count)]
    with engine.begin() as conn:
        assert stmt.run_rows(conn, rows) == count
        # the same rows again collapse on the key: nothing changed, and the count says so
        assert stmt.run_rows(conn, rows) == 0
    assert stored(engine) == sorted(rows)


def test_column_order_differs_from_the_statement(engine: Engine) -> None:
    columns = ("note", "value", "step", "series")
    stmt = Prepared(insert(points), engine.dialect, columns)
    rows = [(f"n{i}", float(i), i, 1) for i in range(250)]
    with engine.begin() as conn:
        assert stmt.run_rows(conn, rows) == 250
    assert stored(engine) == [(1, i, float(i), f"n{i}") for i in range(250)]


def test_upserts_apply_in_order_within_a_statement(engine: Engine) -> None:
    """A key repeated inside one multi-row statement ends with its last value, as it would
    with one execution per row."""
    base = insert(points)
    upsert = base.on_conflict_do_update(
        index_elements=["series", "step"], set_={"value": base.excluded.value}
    )
    stmt = Prepared(upsert, engine.dialect, COLUMNS)
    rows = [(0, i % 10, float(i), None) for i in range(300)]
    with engine.begin() as conn:
        stmt.run_rows(conn, rows)
    assert stored(engine) == [(0, s, float(290 + s), None) for s in range(10)]


def test_statements_with_other_parameters_stay_single_row(engine: Engine) -> None:
    sql = "INSERT INTO points (series, step, value) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET "
    sql += "value = ?"
    assert _multi_row_sql(sql, engine.dialect) is None
    assert _multi_row_sql("UPDATE points SET value = ?", engine.dialect) is None
    postgres = create_engine("postgresql+psycopg://")
    assert Prepared(insert(points), postgres.dialect, COLUMNS)._multi is None
