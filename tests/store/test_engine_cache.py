"""The SQLite page cache: large for the embedded store, bounded for servers' pooled connections."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import Connection, text

from runyard.store.sql.engine import (
    SERVER_SQLITE_CACHE_KIB,
    SQLITE_CACHE_KIB,
    limit_sqlite_cache,
    make_engine,
)


def cache_size(conn: Connection) -> int:
    value = conn.execute(text("PRAGMA cache_size")).scalar()
    assert isinstance(value, int)
    return value


def test_embedded_connections_keep_the_large_cache(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with engine.connect() as conn:
        assert cache_size(conn) == -SQLITE_CACHE_KIB
    assert SERVER_SQLITE_CACHE_KIB < SQLITE_CACHE_KIB
    engine.dispose()


def test_limit_applies_to_every_pooled_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with engine.connect() as before:  # opened before the limit: pooled with the large cache
        assert cache_size(before) == -SQLITE_CACHE_KIB
    limit_sqlite_cache(engine)
    with contextlib.ExitStack() as stack:  # several at once: the pool opens new connections
        conns = [stack.enter_context(engine.connect()) for _ in range(6)]
        assert len({id(conn.connection.dbapi_connection) for conn in conns}) == 6
        assert [cache_size(conn) for conn in conns] == [-SERVER_SQLITE_CACHE_KIB] * 6
    with engine.connect() as again:
        assert cache_size(again) == -SERVER_SQLITE_CACHE_KIB
    engine.dispose()


def test_limit_takes_any_size(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    limit_sqlite_cache(engine, 1024)
    with engine.connect() as conn:
        assert cache_size(conn) == -1024
    engine.dispose()


def test_limit_keeps_an_in_memory_database() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (7)"))
    limit_sqlite_cache(engine)  # its one connection is the database: not closed
    with engine.connect() as conn:
        assert cache_size(conn) == -SERVER_SQLITE_CACHE_KIB
        assert conn.execute(text("SELECT x FROM t")).scalar() == 7
    engine.dispose()
