"""Metric tiles: long series keep exact step-range summaries, and downsampling them from tiles
keeps the M4 contract (exact total, ends and extremes kept, real points only, ordered, bounded).

Every series here crosses ``TILE_THRESHOLD`` and keeps growing after it; after each phase the
stored tiles are compared with tiles computed in Python from the raw points, and downsamples of
the whole series and of random zoom ranges with a reference computed from the raw points.
Runs on SQLite, and on PostgreSQL too under ``bash scripts/with-postgres``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from runyard.entities import Metric
from runyard.store.sql import metric_tiles as mt
from runyard.store.sql.engine import current_revision, make_engine, upgrade
from runyard.store.sql.schema import SCHEMA_REVISION
from runyard.store.sql.store import SqlTrackingStore
from runyard.utils.validation import MAX_DOUBLE
from tests.store.conftest import BACKENDS, fresh_store

T0 = 1_700_000_000_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# -- helpers -------------------------------------------------------------------------------------


def log(store: SqlTrackingStore, run_id: str, metrics: list[Metric], size: int = 1000) -> None:
    for start in range(0, len(metrics), size):
        store.log_batch(run_id, metrics=metrics[start : start + size])


def stored_points(store: SqlTrackingStore, run_id: str, key: str) -> tuple[int, bool, list[Any]]:
    """``(series_id, tiled, points)`` with points ``(step, timestamp, value, is_nan)`` as
    stored."""
    with store.engine.connect() as conn:
        sid, tiled = conn.execute(
            text("SELECT series_id, tiled FROM metric_summaries WHERE run_uuid = :r AND key = :k"),
            {"r": run_id, "k": key},
        ).one()
        points = conn.execute(
            text("SELECT step, timestamp, value, is_nan FROM metric_points WHERE series_id = :s"),
            {"s": sid},
        ).all()
    return sid, bool(tiled), [(s, ts, v, bool(nan)) for s, ts, v, nan in points]


def expected_tiles(points: list[Any]) -> dict[tuple[int, int], dict[str, Any]]:
    """What the tiles of a series holding ``points`` must say, computed the slow way."""
    first, last = min(p[0] for p in points), max(p[0] for p in points)
    levels = [level for level in mt.TILE_LEVELS if 1 << level <= last - first + 1]
    groups: dict[tuple[int, int], list[Any]] = {}
    for p in points:
        for level in levels:
            groups.setdefault((level, p[0] >> level), []).append(p)
        groups.setdefault((mt.ROOT_LEVEL, 0), []).append(p)
    out = {}
    for where, group in groups.items():
        finite = [p[2] for p in group if not p[3]]
        out[where] = {
            "n": len(group),
            "first": min((p[0], p[1]) for p in group),
            "last": max((p[0], p[1]) for p in group),
            "min": min(finite) if finite else None,
            "max": max(finite) if finite else None,
            "nan": any(p[3] for p in group),
            "times": (min(p[1] for p in group), max(p[1] for p in group)),
        }
    return out


def check_tiles(store: SqlTrackingStore, run_id: str, key: str) -> bool:
    """The stored tiles are exactly those of the stored points; returns whether tiled."""
    sid, tiled, points = stored_points(store, run_id, key)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT level, tile, n, first_step, first_timestamp, first_value, first_is_nan, "
                "last_step, last_timestamp, last_value, last_is_nan, min_value, min_step, "
                "min_timestamp, max_value, max_step, max_timestamp, nan_step, nan_timestamp, "
                "min_time, max_time FROM metric_tiles WHERE series_id = :s"
            ),
            {"s": sid},
        ).all()
    if not tiled:
        assert rows == []
        return False
    expected = expected_tiles(points)
    got = {(row[0], row[1]): row for row in rows}
    assert set(got) == set(expected)
    real = {(p[0], p[1], p[2], p[3]) for p in points}
    for where, want in expected.items():
        row = got[where]
        assert row[2] == want["n"], where
        assert (row[3], row[4]) == want["first"], where
        assert (row[3], row[4], row[5], bool(row[6])) in real
        assert (row[7], row[8]) == want["last"], where
        assert (row[7], row[8], row[9], bool(row[10])) in real
        assert (row[11], row[14]) == (want["min"], want["max"]), where
        if want["min"] is not None:
            assert (row[12], row[13], row[11], False) in real
            assert (row[15], row[16], row[14], False) in real
        assert (row[17] is not None) is want["nan"], where
        if want["nan"]:
            assert (row[17], row[18], 0.0, True) in real
        assert (row[19], row[20]) == want["times"], where
    return True


def _value_key(value: float) -> str:
    return repr(value)


def check_downsample(
    store: SqlTrackingStore,
    run_id: str,
    key: str,
    max_points: int,
    lo: int | None = None,
    hi: int | None = None,
) -> list[Metric]:
    """One downsample against a reference from the raw points."""
    total, downsampled, points = store.get_metric_history_downsampled(
        run_id, key, max_points, lo, hi
    )
    history = store.get_metric_history(run_id, key)
    in_range = [m for m in history if (lo is None or m.step >= lo) and (hi is None or m.step <= hi)]
    assert total == len(in_range)
    assert downsampled is (len(in_range) > max_points)
    assert len(points) <= max_points
    if not in_range:
        assert points == []
        return points
    real = {(m.step, m.timestamp, _value_key(m.value)) for m in in_range}
    chosen = [(m.step, m.timestamp, _value_key(m.value)) for m in points]
    assert set(chosen) <= real
    assert len(set(chosen)) == len(chosen)
    assert [(m.step, m.timestamp) for m in points] == sorted((m.step, m.timestamp) for m in points)
    if not downsampled:
        assert sorted(chosen) == sorted(real)
        return points
    assert points[0].step == min(m.step for m in in_range)
    assert points[-1].step == max(m.step for m in in_range)
    finite = [m.value for m in in_range if not math.isnan(m.value)]
    kept = [m.value for m in points if not math.isnan(m.value)]
    if finite:
        assert min(kept) == min(finite)
        assert max(kept) == max(finite)
    return points


def check_series(store: SqlTrackingStore, run_id: str, key: str, rnd: random.Random) -> None:
    """Tiles exact; whole-series and zoomed downsamples against the reference."""
    check_tiles(store, run_id, key)
    steps = sorted({m.step for m in store.get_metric_history(run_id, key)})
    for max_points in (10, 97, 1000, 2000):
        check_downsample(store, run_id, key, max_points)
    for _ in range(6):
        a, b = sorted(
            min(max(rnd.choice(steps) + rnd.randint(-70, 70), INT64_MIN), INT64_MAX)
            for _ in range(2)
        )
        check_downsample(store, run_id, key, rnd.choice((10, 150, 2000)), a, b)
        check_downsample(store, run_id, key, 1000, a, None)
        check_downsample(store, run_id, key, 1000, None, b)


# -- series shapes -------------------------------------------------------------------------------


def _wave(i: int, rnd: random.Random) -> float:
    return math.sin(i / 300) + 0.3 * rnd.random()


def in_order(rnd: random.Random) -> list[list[Metric]]:
    return [[Metric("m", _wave(i, rnd), T0 + i * 10, i) for i in range(n0, n0 + 7000)]
            for n0 in (0, 7000, 14000)]  # fmt: skip


def shuffled_batches(rnd: random.Random) -> list[list[Metric]]:
    batches = [
        [Metric("m", _wave(i, rnd), T0 + i * 10, i) for i in range(a, a + 500)]
        for a in range(0, 20_000, 500)
    ]
    rnd.shuffle(batches)
    return [sum(batches[:18], []), sum(batches[18:], [])]


def replays(rnd: random.Random) -> list[list[Metric]]:
    points = [Metric("m", _wave(i, rnd), T0 + i * 10, i) for i in range(16_000)]
    # A replayed stretch, then one mixing stored and new points.
    return [points[:9000], points[4000:5000] + points[9000:12_000], points[11_500:]]


def nan_and_infinity(rnd: random.Random) -> list[list[Metric]]:
    def value(i: int) -> float:
        if 3000 <= i < 3500:
            return math.nan  # a stretch of NaN only
        roll = rnd.random()
        if roll < 0.01:
            return math.nan
        if roll < 0.012:
            return rnd.choice((math.inf, -math.inf))
        return _wave(i, rnd)

    points = [Metric("m", value(i), T0 + i * 10, i) for i in range(15_000)]
    return [points[:9000], points[9000:]]


def several_per_step(rnd: random.Random) -> list[list[Metric]]:
    points = []
    for i in range(4500):
        for j in range(3):
            points.append(Metric("m", _wave(i, rnd) + j, T0 + i * 10 + j // 2, i))
    return [points[:9000], points[9000:]]


def negative_steps(rnd: random.Random) -> list[list[Metric]]:
    points = [Metric("m", _wave(i, rnd), T0 + i * 10, i - 7000) for i in range(14_000)]
    return [points[:8500], points[8500:]]


def huge_sparse_steps(rnd: random.Random) -> list[list[Metric]]:
    steps = sorted({rnd.randint(-(2**62), 2**62) for _ in range(10_000)}) + [INT64_MAX, INT64_MIN]
    points = [Metric("m", _wave(i, rnd), T0 + rnd.randint(0, 10**9), s)
              for i, s in enumerate(steps)]  # fmt: skip
    rnd.shuffle(points)
    return [points[:9000], points[9000:]]


def stepless(rnd: random.Random) -> list[list[Metric]]:
    points = [Metric("m", _wave(i, rnd), T0 + i * 1000, 0) for i in range(10_000)]
    return [points[:8500], points[8500:], [Metric("m", 5.0, T0, 3)]]


def widening(rnd: random.Random) -> list[list[Metric]]:
    """Steps first within one finest tile, then over ever wider ranges (new coarse levels)."""
    first = [Metric("m", _wave(i, rnd), T0 + i, i % 40) for i in range(9000)]
    later = [Metric("m", _wave(i, rnd), T0 + 10**6 + i, 40 + i * 37) for i in range(3000)]
    far = [Metric("m", -3.0, T0 + 10**7, 10**12), Metric("m", 9.0, T0 + 10**7 + 1, -(10**9))]
    return [first, later[:1500], later[1500:], far]


SHAPES: dict[str, Callable[[random.Random], list[list[Metric]]]] = {
    "in-order": in_order,
    "shuffled-batches": shuffled_batches,
    "replays": replays,
    "nan-and-infinity": nan_and_infinity,
    "several-per-step": several_per_step,
    "negative-steps": negative_steps,
    "huge-sparse-steps": huge_sparse_steps,
    "stepless": stepless,
    "widening": widening,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_tiles_stay_exact_and_downsamples_keep_the_contract(
    store: SqlTrackingStore, run_id: str, shape: str
) -> None:
    rnd = random.Random(shape)
    tiled = False
    for phase in SHAPES[shape](rnd):
        log(store, run_id, phase)
        count = len(store.get_metric_history(run_id, "m"))
        tiled = check_tiles(store, run_id, "m")
        assert tiled is (count >= mt.TILE_THRESHOLD)
        check_series(store, run_id, "m", rnd)
    assert tiled, "every shape ends above the threshold"


# -- specific behaviour --------------------------------------------------------------------------


def test_a_series_is_tiled_when_it_crosses_the_threshold(
    store: SqlTrackingStore, run_id: str
) -> None:
    log(store, run_id, [Metric("m", float(i), T0 + i, i) for i in range(mt.TILE_THRESHOLD - 1)])
    assert stored_points(store, run_id, "m")[1] is False
    store.log_batch(run_id, [Metric("m", -1.0, T0, mt.TILE_THRESHOLD - 1)])
    assert check_tiles(store, run_id, "m")
    # Another key of the same run is not tiled with it.
    store.log_batch(run_id, [Metric("other", 1.0, T0, 0)])
    assert check_tiles(store, run_id, "other") is False


def test_downsample_spikes_survive_in_a_long_series(store: SqlTrackingStore, run_id: str) -> None:
    n = 60_000
    metrics = [Metric("m", math.sin(i / 1000), T0 + i, i) for i in range(n)]
    for step in range(1_234, n, 6_000):  # far apart: one per bucket at most
        metrics[step] = Metric("m", 100.0 + step, T0 + step, step)
        metrics[step + 3_000] = Metric("m", -100.0 - step, T0 + step + 3_000, step + 3_000)
    log(store, run_id, metrics)
    points = check_downsample(store, run_id, "m", 400)
    values = {m.value for m in points}
    for step in range(1_234, n, 6_000):
        assert 100.0 + step in values
        assert -100.0 - step in values
    assert len(points) > 200  # every one of the 100 buckets: at least its first and last


def test_a_zoom_edge_inside_a_tile_counts_exactly(store: SqlTrackingStore, run_id: str) -> None:
    log(store, run_id, [Metric("m", float(i % 7), T0 + i, i) for i in range(20_000)])
    for lo, hi in ((1_001, 18_999), (5, 19_990), (12_345, 12_345), (-50, 3), (19_999, 10**9)):
        check_downsample(store, run_id, "m", 100, lo, hi)
    total, downsampled, points = store.get_metric_history_downsampled(run_id, "m", 10, 700, 703)
    assert (total, downsampled) == (4, False)
    assert [m.step for m in points] == [700, 701, 702, 703]


def test_infinities_come_back_as_the_largest_doubles(store: SqlTrackingStore, run_id: str) -> None:
    metrics = [Metric("m", math.sin(i), T0 + i, i) for i in range(10_000)]
    metrics[777] = Metric("m", math.inf, T0 + 777, 777)
    metrics[8_888] = Metric("m", -math.inf, T0 + 8_888, 8_888)
    metrics[4_000] = Metric("m", math.nan, T0 + 4_000, 4_000)
    log(store, run_id, metrics)
    points = check_downsample(store, run_id, "m", 200)
    by_step = {m.step: m.value for m in points}
    assert by_step[777] == MAX_DOUBLE
    assert by_step[8_888] == -MAX_DOUBLE
    assert math.isnan(by_step[4_000])  # the lone NaN of its bucket: the gap stays visible


def test_another_store_tiling_a_series_is_seen_by_the_next_write(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    first = SqlTrackingStore(uri, str(tmp_path / "a"))
    second = SqlTrackingStore(uri, str(tmp_path / "a"))
    try:
        run_id = first.create_run("0", "u", 0, [], "r").info.run_id
        log(first, run_id, [Metric("m", float(i), T0 + i, i) for i in range(5_000)])
        # The second store (another process, say) takes the series over the threshold...
        log(second, run_id, [Metric("m", float(-i), T0 + i, i) for i in range(5_000, 9_000)])
        assert check_tiles(first, run_id, "m")
        # ...and the first one, which knows the series from before, merges into the tiles.
        log(first, run_id, [Metric("m", 0.5, T0 + i, i) for i in range(9_000, 11_000)])
        assert check_tiles(first, run_id, "m")
        check_downsample(first, run_id, "m", 100)
    finally:
        first.close()
        second.close()


def test_whole_series_downsample_reads_tiles_not_points(tmp_path: Path) -> None:
    store = SqlTrackingStore(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "a"))
    try:
        run_id = store.create_run("0", "u", 0, [], "r").info.run_id
        log(store, run_id, [Metric("m", math.cos(i / 99), T0 + i, i) for i in range(40_000)])
        statements: list[str] = []
        store.engine.dispose()

        @event.listens_for(store.engine, "connect")
        def _trace(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.set_trace_callback(statements.append)

        total, downsampled, points = store.get_metric_history_downsampled(run_id, "m", 1000)
        assert (total, downsampled) == (40_000, True)
        assert 0 < len(points) <= 1000
        reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
        assert any("metric_tiles" in s for s in reads)
        assert not any("metric_points" in s for s in reads), reads
    finally:
        store.close()


def test_narrow_dense_zoom_uses_the_points_within_the_tiles_time_span(
    store: SqlTrackingStore, run_id: str
) -> None:
    # 20 points per step: a zoom of 400 steps holds 8,000 points, too narrow for tiles.
    metrics = [Metric("m", math.sin(i / 7) + (i % 20), T0 + i, i // 20) for i in range(40_000)]
    log(store, run_id, metrics)
    points = check_downsample(store, run_id, "m", 100, 600, 999)
    assert len(points) > 50


@pytest.mark.parametrize("backend", BACKENDS)
def test_gc_deletes_tiles(backend: str, tmp_path: Path) -> None:
    store = fresh_store(backend, tmp_path)
    try:
        exp_id = store.create_experiment("gc")
        runs = [store.create_run(exp_id, "u", 0, [], f"r{i}").info.run_id for i in range(2)]
        for run_id in runs:
            log(store, run_id, [Metric("m", float(i), T0 + i, i) for i in range(9_000)])
        gone, kept = (stored_points(store, r, "m")[0] for r in runs)
        store.delete_run(runs[0])
        assert store.hard_delete_run(runs[0])

        def tiles_of(sid: int) -> int:
            with store.engine.connect() as conn:
                return int(
                    conn.execute(
                        text("SELECT count(*) FROM metric_tiles WHERE series_id = :s"), {"s": sid}
                    ).scalar_one()
                )

        assert tiles_of(gone) == 0
        assert tiles_of(kept) > 0
        store.delete_experiment(exp_id)
        assert store.hard_delete_experiment(exp_id)
        assert tiles_of(kept) == 0
    finally:
        store.close()


# -- migration -----------------------------------------------------------------------------------


@pytest.fixture
def database_at_0003(tmp_path: Path) -> str:
    """A SQLite database at revision 0003 holding one run with a 10,000-point series."""
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(uri)
    upgrade(engine, "0003_auth")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage)"
                " VALUES (1, 'old', '/a', 'active')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (run_uuid, experiment_id, name, status, start_time,"
                " lifecycle_stage, artifact_uri) VALUES ('r', 1, 'r', 'RUNNING', 0, 'active', '/a')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO metric_summaries (series_id, run_uuid, key, value, timestamp, step,"
                " is_nan, min_value, max_value, point_count)"
                " VALUES (1, 'r', 'm', 0.0, :ts, 9999, 0, -1.0, 1.0, 10000)"
            ),
            {"ts": T0 + 9999},
        )
        conn.execute(
            text("INSERT INTO metric_points VALUES (1, :step, :ts, :value, 0)"),
            [{"step": i, "ts": T0 + i, "value": math.sin(i)} for i in range(10_000)],
        )
    engine.dispose()
    return uri


def test_migration_from_0003_tiles_long_series_on_their_next_write(
    database_at_0003: str, tmp_path: Path
) -> None:
    store = SqlTrackingStore(database_at_0003, str(tmp_path / "a"))
    try:
        assert current_revision(store.engine) == SCHEMA_REVISION == "0006_runs_newest_first"
        # Not tiled yet: downsampled from the points as before.
        assert check_tiles(store, "r", "m") is False
        check_downsample(store, "r", "m", 100)
        store.log_batch("r", [Metric("m", 2.0, T0 + 10_000, 10_000)])
        assert check_tiles(store, "r", "m")
        check_series(store, "r", "m", random.Random(3))
    finally:
        store.close()
