"""A PostgreSQL restart under a live store: at most one request per pooled connection set fails
(TEMPORARILY_UNAVAILABLE, which clients retry), then the store works again without a restart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runyard.errors import RunyardError
from runyard.store.sql.store import SqlTrackingStore
from tests.pg_cluster import PgCluster, create_database, start_cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    started = start_cluster()
    yield started
    started.stop()


def _after_outage(action: Callable[[], Any]) -> tuple[Any, int]:
    failures = 0
    for _ in range(3):
        try:
            return action(), failures
        except RunyardError as exc:
            if exc.error_code != "TEMPORARILY_UNAVAILABLE":
                raise
            failures += 1
    raise AssertionError("the store did not recover after the database restarted")


def test_store_recovers_after_postgres_restarts(cluster: PgCluster, tmp_path: Any) -> None:
    store = SqlTrackingStore(create_database(cluster.uri()), str(tmp_path / "art"))
    try:
        exp = store.create_experiment("before-restart")
        run_id = store.create_run(exp, "u", 0, [], "r").info.run_id
        assert store.get_experiment(exp).name == "before-restart"  # pooled connections exist

        cluster.run_tool("pg_ctl", "-D", str(cluster.data), "-m", "fast", "-w", "stop")
        cluster.start("fsync=off")

        experiment, read_failures = _after_outage(lambda: store.get_experiment(exp))
        assert experiment.name == "before-restart"
        assert read_failures <= 1
        _, write_failures = _after_outage(
            lambda: store.update_run_info(run_id, "FINISHED", 1, None)
        )
        assert write_failures <= 1
        assert store.get_run(run_id).info.status == "FINISHED"
    finally:
        store.close()
