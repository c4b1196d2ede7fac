"""A fresh SQL tracking store per test, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.store.sql.store import SqlTrackingStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    s = SqlTrackingStore(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "artifacts"))
    yield s
    s.close()


@pytest.fixture
def exp_id(store: SqlTrackingStore) -> str:
    return store.create_experiment("exp")


@pytest.fixture
def run_id(store: SqlTrackingStore, exp_id: str) -> str:
    return store.create_run(exp_id, "alice", 1000, [], "first").info.run_id
