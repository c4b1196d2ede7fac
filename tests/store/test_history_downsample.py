"""get_metric_history_downsampled: exact when small, else M4 (first, last, min, max per bucket)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from runyard.entities import Metric
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.sql.store import SqlTrackingStore
from runyard.utils.validation import MAX_DOUBLE

T0 = 1_700_000_000_000


def log_series(store: SqlTrackingStore, run_id: str, metrics: list[Metric]) -> None:
    for start in range(0, len(metrics), 1000):
        store.log_batch(run_id, metrics=metrics[start : start + 1000])


def wave(n: int, key: str = "loss") -> list[Metric]:
    """A noisy decaying curve logged in step order, one point per 100 ms."""
    rnd = random.Random(n)
    return [
        Metric(key, math.exp(-i / (n / 3)) + 0.05 * math.sin(i / 7) + 0.01 * rnd.random(),
               T0 + i * 100, i)
        for i in range(n)
    ]  # fmt: skip


def keys(points: list[Metric]) -> list[tuple[int, int, float]]:
    return [(m.step, m.timestamp, m.value) for m in points]


def check_reduction(
    stored: list[Metric], total: int, downsampled: bool, points: list[Metric], max_points: int
) -> None:
    """What every reduction must hold: bounded, ordered, a subset, extremes and ends kept."""
    assert total == len(stored)
    assert downsampled is (len(stored) > max_points)
    assert 0 < len(points) <= max_points
    assert [(m.step, m.timestamp) for m in points] == sorted((m.step, m.timestamp) for m in points)
    as_set = {(m.step, m.timestamp, repr(m.value)) for m in stored}
    chosen = [(m.step, m.timestamp, repr(m.value)) for m in points]
    assert set(chosen) <= as_set
    assert len(set(chosen)) == len(chosen)
    finite = [m.value for m in stored if not math.isnan(m.value)]
    kept = [m.value for m in points if not math.isnan(m.value)]
    assert min(kept) == min(finite)
    assert max(kept) == max(finite)
    assert points[0].step == min(m.step for m in stored)
    assert points[-1].step == max(m.step for m in stored)


def test_short_series_comes_back_whole_ordered_by_step(
    store: SqlTrackingStore, run_id: str
) -> None:
    # Logged out of order; one step twice (two timestamps).
    metrics = [Metric("acc", 0.1 * i, T0 + (9 - i) * 1000, i) for i in range(10)]
    metrics.append(Metric("acc", 0.95, T0 + 50_000, 3))
    store.log_batch(run_id, metrics=metrics)
    total, downsampled, points = store.get_metric_history_downsampled(run_id, "acc", 100)
    assert (total, downsampled) == (11, False)
    assert [(m.step, m.timestamp) for m in points] == sorted((m.step, m.timestamp) for m in metrics)
    assert {(m.key, m.run_id) for m in points} == {("acc", run_id)}
    assert sorted(m.value for m in points) == sorted(m.value for m in metrics)


def test_long_series_reduced_keeps_extremes_and_ends(store: SqlTrackingStore, run_id: str) -> None:
    metrics = wave(20_000)
    # Isolated spikes and dips far apart: each must survive (one per bucket at most).
    for step in range(1_000, 20_000, 2_000):
        metrics[step] = Metric("loss", 50.0 + step, metrics[step].timestamp, step)
        metrics[step + 500] = Metric(
            "loss", -50.0 - step, metrics[step + 500].timestamp, step + 500
        )
    log_series(store, run_id, metrics)
    stored = store.get_metric_history(run_id, "loss")
    for max_points in (1000, 100):
        total, downsampled, points = store.get_metric_history_downsampled(
            run_id, "loss", max_points
        )
        check_reduction(stored, total, downsampled, points, max_points)
        values = {m.value for m in points}
        for step in range(1_000, 20_000, 2_000):
            assert 50.0 + step in values
            assert -50.0 - step in values
    # A generous budget: most of it used (not a handful of points).
    _, _, points = store.get_metric_history_downsampled(run_id, "loss", 1000)
    assert len(points) > 600


@pytest.mark.parametrize(
    "shape",
    [
        # steps that go back in time (a resumed run re-logging steps)
        lambda i, n: (i if i < n // 2 else i - n // 4, T0 + i * 100),
        # steps in random order
        lambda i, n: ((i * 7919) % n, T0 + i * 100),
        # every point logged with one timestamp (a backfill)
        lambda i, n: (i, T0),
        # bursts: 1,000 points a millisecond apart, then an hour of nothing
        lambda i, n: (i, T0 + (i // 1000) * 3_600_000 + i),
    ],
    ids=["resumed", "shuffled", "one-timestamp", "bursts"],
)
def test_reduction_holds_for_any_logging_order(
    store: SqlTrackingStore, run_id: str, shape: Callable[[int, int], tuple[int, int]]
) -> None:
    n = 12_000
    rnd = random.Random(7)
    metrics = []
    for i in range(n):
        step, ts = shape(i, n)
        metrics.append(Metric("m", math.sin(i / 50) + rnd.random() * 0.1, ts, step))
    log_series(store, run_id, metrics)
    stored = store.get_metric_history(run_id, "m")
    for max_points in (1000, 40):
        total, downsampled, points = store.get_metric_history_downsampled(run_id, "m", max_points)
        check_reduction(stored, total, downsampled, points, max_points)
    # The budget is used: the buckets spread over the steps.
    _, _, points = store.get_metric_history_downsampled(run_id, "m", 1000)
    assert len(points) > 400


def test_metrics_without_steps_are_bucketed_by_time(store: SqlTrackingStore, run_id: str) -> None:
    metrics = [Metric("gpu", math.sin(i / 100), T0 + i * 1000, 0) for i in range(5_000)]
    log_series(store, run_id, metrics)
    stored = store.get_metric_history(run_id, "gpu")
    total, downsampled, points = store.get_metric_history_downsampled(run_id, "gpu", 400)
    check_reduction(stored, total, downsampled, points, 400)
    # Not four points for the one step: the shape over time is there.
    assert len(points) > 200
    times = [m.timestamp for m in points]
    assert min(times) == T0
    assert max(times) == T0 + 4_999 * 1000


def test_constant_and_discrete_series(store: SqlTrackingStore, run_id: str) -> None:
    log_series(store, run_id, [Metric("lr", 0.001, T0 + i, i) for i in range(5_000)])
    log_series(store, run_id, [Metric("cls", float(i % 3), T0 + i, i) for i in range(5_000)])
    for key in ("lr", "cls"):
        stored = store.get_metric_history(run_id, key)
        total, downsampled, points = store.get_metric_history_downsampled(run_id, key, 100)
        check_reduction(stored, total, downsampled, points, 100)


def test_step_range(store: SqlTrackingStore, run_id: str) -> None:
    log_series(store, run_id, wave(10_000))
    stored = store.get_metric_history(run_id, "loss")
    # A zoomed range at full resolution.
    total, downsampled, points = store.get_metric_history_downsampled(
        run_id, "loss", 1000, start_step=2_000, end_step=2_500
    )
    assert (total, downsampled) == (501, False)
    assert keys(points) == keys(sorted(
        (m for m in stored if 2_000 <= m.step <= 2_500), key=lambda m: m.step
    ))  # fmt: skip
    # A wide range is reduced within the range.
    in_range = [m for m in stored if 1_000 <= m.step <= 8_999]
    total, downsampled, points = store.get_metric_history_downsampled(
        run_id, "loss", 200, start_step=1_000, end_step=8_999
    )
    check_reduction(in_range, total, downsampled, points, 200)
    # Live refresh: only what came after the last step the chart has.
    log_series(store, run_id, [Metric("loss", 0.5, T0 + 2_000_000, 10_000)])
    total, downsampled, points = store.get_metric_history_downsampled(
        run_id, "loss", 1000, start_step=10_000
    )
    assert (total, downsampled, keys(points)) == (1, False, [(10_000, T0 + 2_000_000, 0.5)])
    # Open at the start; empty ranges.
    total, _, points = store.get_metric_history_downsampled(run_id, "loss", 1000, end_step=9)
    assert total == 10
    assert [m.step for m in points] == list(range(10))
    assert store.get_metric_history_downsampled(run_id, "loss", 1000, start_step=20_000) == (
        0,
        False,
        [],
    )


def test_nan_and_infinity(store: SqlTrackingStore, run_id: str) -> None:
    metrics = wave(8_000, key="m")
    for step in (100, 4_321, 7_000):  # isolated NaNs among numbers
        metrics[step] = Metric("m", math.nan, metrics[step].timestamp, step)
    metrics[2_222] = Metric("m", math.inf, metrics[2_222].timestamp, 2_222)
    metrics[5_555] = Metric("m", -math.inf, metrics[5_555].timestamp, 5_555)
    log_series(store, run_id, metrics)
    stored = store.get_metric_history(run_id, "m")
    total, downsampled, points = store.get_metric_history_downsampled(run_id, "m", 500)
    check_reduction(stored, total, downsampled, points, 500)
    by_step = {m.step: m.value for m in points}
    for step in (100, 4_321, 7_000):  # each NaN is the lone NaN of its bucket: kept as a gap
        assert math.isnan(by_step[step])
    assert by_step[2_222] == MAX_DOUBLE  # infinities are stored as the largest doubles
    assert by_step[5_555] == -MAX_DOUBLE
    # A series of NaN only.
    store.log_batch(run_id, metrics=[Metric("n", math.nan, T0 + i, i) for i in range(300)])
    total, downsampled, points = store.get_metric_history_downsampled(run_id, "n", 20)
    assert (total, downsampled) == (300, True)
    assert 0 < len(points) <= 20
    assert all(math.isnan(m.value) for m in points)
    assert (points[0].step, points[-1].step) == (0, 299)


def test_unknown_key_and_run(store: SqlTrackingStore, run_id: str) -> None:
    assert store.get_metric_history_downsampled(run_id, "nope", 100) == (0, False, [])
    with pytest.raises(ResourceDoesNotExist, match="Run with id=0123 not found"):
        store.get_metric_history_downsampled("0123", "loss", 100)


@pytest.mark.parametrize("max_points", [9, 0, -1, 100_001])
def test_max_points_bounds(store: SqlTrackingStore, run_id: str, max_points: int) -> None:
    with pytest.raises(InvalidParameterValue, match="max_points"):
        store.get_metric_history_downsampled(run_id, "loss", max_points)


def test_max_points_limits_are_accepted(store: SqlTrackingStore, run_id: str) -> None:
    log_series(store, run_id, wave(200))
    assert len(store.get_metric_history_downsampled(run_id, "loss", 10)[2]) <= 10
    assert len(store.get_metric_history_downsampled(run_id, "loss", 100_000)[2]) == 200


def test_start_after_end_is_refused(store: SqlTrackingStore, run_id: str) -> None:
    with pytest.raises(InvalidParameterValue, match="start_step"):
        store.get_metric_history_downsampled(run_id, "loss", 100, start_step=5, end_step=4)
