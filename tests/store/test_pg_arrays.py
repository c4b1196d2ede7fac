"""Numeric columns go to PostgreSQL as binary arrays packed by struct (``pg_arrays``): every value
arrives exactly, NULLs still arrive as NULL, and values beyond 64 bits are refused, on any
connection, whenever it was opened."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
)
from sqlalchemy.dialects import postgresql

from runyard.store.sql.prepared import Prepared
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401  (session fixture)

meta = MetaData()
values = Table(
    "packed_values",
    meta,
    Column("id", BigInteger, primary_key=True),
    Column("small", Integer, nullable=False),
    Column("value", Double),
    Column("flag", Boolean, nullable=False),
    Column("note", Text),
)
COLUMNS = ("id", "small", "value", "flag", "note")
EXTREMES = [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 0.1]


@pytest.fixture
def engine(pg_primary: PgServer) -> Iterator[Engine]:  # noqa: F811
    uri = pg_primary.create_database()
    # Created (and connected) before anything else here: the packed types must reach
    # connections and dialects made before their first use.
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    meta.create_all(engine)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM packed_values ORDER BY id")]


#: Few values are packed by struct, more by the array module (pg_arrays._FEW).
SIZES = [1, 100]


@pytest.mark.parametrize("copies", SIZES)
def test_numeric_columns_are_packed_and_arrive_exactly(engine: Engine, copies: int) -> None:
    stmt = Prepared(postgresql.insert(values), engine.dialect, COLUMNS)
    assert [p is not None for p in stmt._packers] == [True, True, True, True, False]
    rows = [
        (2**63 - 1 - i, (-1) ** i * (2**31 - 1 - i), value, i % 2 == 0, f"n{i}")
        for i, value in enumerate(EXTREMES * copies)
    ]
    rows.append((-(2**63), -(2**31), 3, True, None))  # an int in a DOUBLE column
    with engine.begin() as conn:
        assert stmt.run_rows(conn, rows) == len(rows)
    got = stored(engine)
    assert got == sorted(rows)

    # -0.0 == 0.0: its sign bit must have arrived too
    def signs(of: list[tuple[Any, ...]]) -> dict[int, float]:
        return {r[0]: math.copysign(1, r[2]) for r in of if r[2] == 0}

    assert signs(got) == signs(rows)
    assert set(signs(rows).values()) == {1.0, -1.0}


def test_a_column_holding_null_keeps_null(engine: Engine) -> None:
    stmt = Prepared(postgresql.insert(values), engine.dialect, COLUMNS)
    rows = [(1, 1, None, False, None), (2, 2, 0.5, True, "x")]
    with engine.begin() as conn:
        assert stmt.run_rows(conn, rows) == 2
    assert stored(engine) == rows


@pytest.mark.parametrize("count", SIZES)
@pytest.mark.parametrize(("big", "small"), [(2**63, 1), (1, 2**31)])
def test_integers_beyond_their_type_are_refused(
    engine: Engine, count: int, big: int, small: int
) -> None:
    stmt = Prepared(postgresql.insert(values), engine.dialect, COLUMNS)
    rows = [(i + 2, 1, 0.0, False, None) for i in range(count)] + [(big, small, 0.0, False, None)]
    with pytest.raises(OverflowError), engine.begin() as conn:
        stmt.run_rows(conn, rows)
    assert stored(engine) == []
