"""Store fixtures: a fresh SQL store per test (SQLite, and PostgreSQL when one is given), and
(from tests/live_server.py) a real tracking server process for the REST client tests.

Set ``RUNYARD_TEST_POSTGRES_URI=postgresql://user@host:port/db`` to run every store test on
PostgreSQL as well; each test then starts from an empty ``public`` schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from runyard.store.sql.store import SqlTrackingStore
from tests.live_server import server_uri, tracking_server  # noqa: F401  (fixtures for this package)

POSTGRES_URI = os.environ.get("RUNYARD_TEST_POSTGRES_URI")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URI else ["sqlite"]


def _reset_postgres(uri: str) -> None:
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def fresh_store(backend: str, tmp_path: Path) -> SqlTrackingStore:
    """An empty store on ``backend`` ("sqlite" under ``tmp_path``, or "postgresql")."""
    if backend == "postgresql":
        assert POSTGRES_URI is not None
        _reset_postgres(POSTGRES_URI)
        uri = POSTGRES_URI
    else:
        uri = f"sqlite:///{tmp_path / 'store.db'}"
    return SqlTrackingStore(uri, str(tmp_path / "artifacts"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    s = fresh_store(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture
def exp_id(store: SqlTrackingStore) -> str:
    return store.create_experiment("exp")


@pytest.fixture
def run_id(store: SqlTrackingStore, exp_id: str) -> str:
    return store.create_run(exp_id, "alice", 1000, [], "first").info.run_id
