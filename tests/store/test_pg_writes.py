"""PostgreSQL's one-statement ``log_batch`` (``pg_writes``): batches to tiled series merge their
tiles in it, and it acts on a series as it is when it writes, not as it was when the statement
began or as this store last saw it (another writer may have written since)."""

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
from tests.store.test_metric_tiles import check_tiles


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


def _log(store: SqlTrackingStore, run_id: str, first: int, count: int, keys: int = 3) -> None:
    """``count`` steps from ``first`` for ``keys`` keys, in batches of 1,000 points."""
    metrics = [
        Metric(f"k{k}", float((step * 7 + k) % 11), 1000 + step, step)
        for step in range(first, first + count)
        for k in range(keys)
    ]
    for start in range(0, len(metrics), 1000):
        store.log_batch(run_id, metrics[start : start + 1000])


def test_batches_to_known_tiled_series_merge_their_tiles_in_the_one_statement(
    pg_store: SqlTrackingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pg_store
    run_id = store.create_run(store.create_experiment("e"), "u", 0, [], "r").info.run_id
    # 9,000 steps: the series cross the threshold (the transaction path tiles them) and span
    # levels up to 4,096 steps, which stay the top level until step 16,383.
    _log(store, run_id, 0, 9000)
    for key in ("k0", "k1", "k2"):
        assert check_tiles(store, run_id, key)

    def no_transaction(*args: object, **kwargs: object) -> None:
        raise AssertionError("a batch took the transaction path")

    monkeypatch.setattr(store, "_write_batch", no_transaction)
    _log(store, run_id, 9000, 7000)
    for key in ("k0", "k1", "k2"):
        assert check_tiles(store, run_id, key)
        total, reduced, _ = store.get_metric_history_downsampled(run_id, key, 400)
        assert (total, reduced) == (16_000, True)


def test_a_tiled_series_another_store_wrote_to_is_merged_right(
    pg_primary: PgServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Two stores (two server processes, say) alternate batches to the same series: each one's
    idea of the series is out of date at every batch, so its statement refuses to merge and
    the transaction path, which reads the tiles, writes the batch."""
    uri = pg_primary.create_database()
    first = SqlTrackingStore(uri, str(tmp_path / "a"))
    second = SqlTrackingStore(uri, str(tmp_path / "a"))
    try:
        run_id = first.create_run(first.create_experiment("e"), "u", 0, [], "r").info.run_id
        _log(first, run_id, 0, 9000, keys=1)
        _log(second, run_id, 9000, 1000, keys=1)
        for step in range(10_000, 14_000, 1000):
            _log(first if step % 2000 else second, run_id, step, 1000, keys=1)
        assert check_tiles(first, run_id, "k0")
        total, reduced, _ = second.get_metric_history_downsampled(run_id, "k0", 400)
        assert (total, reduced) == (14_000, True)
    finally:
        first.close()
        second.close()
