"""PostgreSQL's one-statement writes (``pg_writes``) against a writer in another transaction:
a statement that waited for a series' summary row acts on the series as it is after the wait,
not as it was when the statement began."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from runyard.entities import Metric
from runyard.store.sql.metric_tiles import ROOT_LEVEL, TILE_THRESHOLD, build_tiles
from runyard.store.sql.store import SqlTrackingStore
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401  (session fixture)


@pytest.fixture
def pg_store(pg_primary: PgServer, tmp_path: Path) -> Iterator[SqlTrackingStore]:  # noqa: F811
    store = SqlTrackingStore(pg_primary.create_database(), str(tmp_path / "art"))
    yield store
    store.close()


def _points(first: int, count: int) -> list[Metric]:
    return [Metric("m", float(step % 7), 1000 + step, step) for step in range(first, first + count)]


def _waiting_for_a_lock(store: SqlTrackingStore) -> bool:
    with store.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def test_a_batch_that_waited_for_a_writer_tiling_its_series_lands_in_the_tiles(
    pg_store: SqlTrackingStore,
) -> None:
    store = pg_store
    run_id = store.create_run(store.create_experiment("e"), "u", 0, [], "r").info.run_id
    below = TILE_THRESHOLD - 200
    for first in range(0, below, 1000):
        store.log_batch(run_id, _points(first, min(1000, below - first)))
    with store.engine.connect() as conn:
        sid, tiled = conn.execute(
            text("SELECT series_id, tiled FROM metric_summaries WHERE key = 'm'")
        ).one()
    assert not tiled

    # Another writer holds the series' summary row and tiles it. The batch's statement starts
    # meanwhile: the series is short and untiled in its snapshot, so its own check passes,
    # and its summary upsert waits for the writer.
    errors: list[BaseException] = []

    def log() -> None:
        try:
            store.log_batch(run_id, _points(below, 100))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    writer = threading.Thread(target=log)
    with store.engine.connect() as other, other.begin():
        other.execute(
            text("SELECT 1 FROM metric_summaries WHERE series_id = :sid FOR UPDATE"), {"sid": sid}
        )
        build_tiles(other, store._sql.upsert_tiles, sid)
        writer.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_a_lock(store) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _waiting_for_a_lock(store), "the batch never waited for the other writer"
    writer.join(30)
    assert not writer.is_alive()
    assert not errors

    with store.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM metric_points WHERE series_id = :sid"), {"sid": sid}
        ).scalar_one()
        counted = conn.execute(
            text("SELECT point_count FROM metric_summaries WHERE series_id = :sid"), {"sid": sid}
        ).scalar_one()
        root = conn.execute(
            text(
                "SELECT n, last_step FROM metric_tiles WHERE series_id = :sid "
                f"AND level = {ROOT_LEVEL} AND tile = 0"
            ),
            {"sid": sid},
        ).one()
    assert stored == counted == below + 100
    assert tuple(root) == (below + 100, below + 99)
    # The chart of the whole series is read from the tiles and counts every point.
    total, reduced, _ = store.get_metric_history_downsampled(run_id, "m", 400)
    assert (total, reduced) == (below + 100, True)
