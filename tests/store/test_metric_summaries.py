"""MetricSummaryOps.get_metric_summaries: latest point, min, max and count per metric key."""

from __future__ import annotations

import math

import pytest

from runyard.entities import Metric
from runyard.errors import ResourceDoesNotExist
from runyard.store.sql.metric_summaries import MetricSummary
from runyard.store.sql.store import SqlTrackingStore
from runyard.utils.validation import MAX_DOUBLE


def test_summaries_follow_logged_points(store: SqlTrackingStore, run_id: str) -> None:
    losses = [Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(50)]
    store.log_batch(run_id, metrics=losses[:20])
    store.log_batch(run_id, metrics=[*losses[20:], Metric("acc", 0.5, 5000, 3)])
    store.log_batch(run_id, metrics=[Metric("acc", 0.25, 6000, 1)])  # older step: not latest

    summaries = store.get_metric_summaries(run_id)

    assert [s.key for s in summaries] == ["acc", "loss"]
    acc, loss = summaries
    assert acc == MetricSummary("acc", 0.5, 3, 5000, 0.25, 0.5, 2)
    assert loss.latest_value == pytest.approx(1 / 50)
    assert (loss.latest_step, loss.latest_timestamp) == (49, 1049)
    assert loss.min_value == pytest.approx(1 / 50)
    assert loss.max_value == 1.0
    assert loss.count == 50
    history = store.get_metric_history(run_id, "loss")
    assert loss.count == len(history)
    assert loss.min_value == min(m.value for m in history)
    assert loss.max_value == max(m.value for m in history)


def test_nan_and_infinity(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(
        run_id,
        metrics=[
            Metric("only_nan", math.nan, 10, 0),
            Metric("mixed", 2.0, 10, 0),
            Metric("mixed", math.inf, 11, 1),
            Metric("mixed", math.nan, 12, 2),
        ],
    )
    mixed, only_nan = store.get_metric_summaries(run_id)

    assert only_nan.key == "only_nan"
    assert math.isnan(only_nan.latest_value)
    assert (only_nan.min_value, only_nan.max_value, only_nan.count) == (None, None, 1)
    assert math.isnan(mixed.latest_value)
    assert mixed.latest_step == 2
    # ±Inf is stored as ±max double (MLflow's encoding); NaN is left out of min/max.
    assert (mixed.min_value, mixed.max_value, mixed.count) == (2.0, MAX_DOUBLE, 3)


def test_run_without_metrics_and_missing_run(store: SqlTrackingStore, run_id: str) -> None:
    assert store.get_metric_summaries(run_id) == []
    with pytest.raises(ResourceDoesNotExist, match="not found"):
        store.get_metric_summaries("f" * 32)


def test_summaries_are_per_run(store: SqlTrackingStore, exp_id: str, run_id: str) -> None:
    other = store.create_run(exp_id, "bob", 2000, [], "second").info.run_id
    store.log_batch(run_id, metrics=[Metric("loss", 1.0, 1, 0)])
    store.log_batch(other, metrics=[Metric("loss", 5.0, 1, 0), Metric("loss", 7.0, 2, 1)])

    (mine,) = store.get_metric_summaries(run_id)
    (theirs,) = store.get_metric_summaries(other)

    assert (mine.min_value, mine.max_value, mine.count) == (1.0, 1.0, 1)
    assert (theirs.min_value, theirs.max_value, theirs.count, theirs.latest_value) == (
        5.0,
        7.0,
        2,
        7.0,
    )


def test_a_point_stored_twice_counts_once(store: SqlTrackingStore, run_id: str) -> None:
    points = [Metric("loss", 1.0 - s / 10, 1000 + s, s) for s in range(5)]
    store.log_batch(run_id, metrics=points)
    store.log_batch(run_id, metrics=points[:3])  # a replayed batch
    store.log_batch(run_id, metrics=[points[4], points[4], Metric("loss", 0.1, 2000, 9)])
    store.log_batch(run_id, metrics=[Metric("acc", math.nan, 10, 0)] * 2)

    summaries = {s.key: s for s in store.get_metric_summaries(run_id)}

    assert summaries["loss"].count == len(store.get_metric_history(run_id, "loss")) == 6
    assert summaries["acc"].count == len(store.get_metric_history(run_id, "acc")) == 1
    assert summaries["loss"].latest_value == 0.1
