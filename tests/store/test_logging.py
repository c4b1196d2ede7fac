"""log_batch and metric history: semantics, limits, atomicity, NaN/Inf, summaries."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from runyard.entities import Metric, Param, RunTag
from runyard.errors import InvalidParameterValue
from runyard.store.sql import schema
from runyard.store.sql.store import SqlTrackingStore
from runyard.utils.validation import MAX_DOUBLE


def test_params_are_immutable(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, params=[Param("lr", "0.1")])
    store.log_batch(run_id, params=[Param("lr", "0.1")])  # same value again is fine
    with pytest.raises(InvalidParameterValue, match=r"Changing param values is not allowed.*'lr'"):
        store.log_batch(run_id, params=[Param("lr", "0.2")])
    assert store.get_run(run_id).data.params == {"lr": "0.1"}


def test_failed_batch_writes_nothing(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, params=[Param("lr", "0.1")])
    with pytest.raises(InvalidParameterValue):
        store.log_batch(
            run_id,
            metrics=[Metric("m", 1.0, 1, 0)],
            params=[Param("new", "1"), Param("lr", "0.3")],
            tags=[RunTag("t", "v")],
        )
    run = store.get_run(run_id)
    assert run.data.metrics == {}
    assert run.data.params == {"lr": "0.1"}
    assert "t" not in run.data.tags
    assert store.get_metric_history(run_id, "m") == []


def test_a_batch_repeating_stored_points_keeps_the_rest(
    store: SqlTrackingStore, run_id: str
) -> None:
    """On PostgreSQL points first go in without ON CONFLICT; a batch that repeats stored
    points is rolled back and written again: its params, tags and new points all land once."""
    if store.engine.dialect.name == "postgresql":
        assert store._sql.insert_new_points is not None  # the optimistic path is in use
    first = [Metric("loss", 1.0 / (s + 1), 100 + s, s) for s in range(4)]
    store.log_batch(run_id, first, params=[Param("a", "1")])
    store.log_batch(
        run_id,
        [*first[2:], Metric("loss", 0.1, 200, 9), Metric("acc", 0.5, 200, 9)],
        params=[Param("a", "1"), Param("b", "2")],
        tags=[RunTag("t", "v")],
    )
    run = store.get_run(run_id)
    assert run.data.params == {"a": "1", "b": "2"}
    assert run.data.tags["t"] == "v"
    assert run.data.metrics == {"loss": 0.1, "acc": 0.5}
    history = store.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [
        *[(s, 1.0 / (s + 1)) for s in range(4)],
        (9, 0.1),
    ]
    summaries = {m.key: m.count for m in store.get_metric_summaries(run_id)}
    assert summaries == {"loss": 5, "acc": 1}


def test_tags_upsert(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, tags=[RunTag("t", "1")])
    store.log_batch(run_id, tags=[RunTag("t", "2")])
    assert store.get_run(run_id).data.tags["t"] == "2"
    store.log_batch(run_id, tags=[RunTag("t", "3"), RunTag("u", "x"), RunTag("t", "4")])
    assert store.get_run(run_id).data.tags == {"t": "4", "u": "x", "mlflow.runName": "first"}


def test_history_is_append_only_and_ordered(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, [Metric("loss", 3.0, 30, 2), Metric("loss", 1.0, 10, 0)])
    store.log_batch(run_id, [Metric("loss", 2.0, 20, 1), Metric("loss", 2.0, 20, 1)])
    history = store.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (0, 1.0, 10),
        (1, 2.0, 20),
        (2, 3.0, 30),
    ]
    assert all(m.key == "loss" and m.run_id == run_id for m in history)


def test_latest_is_greatest_step_timestamp_value(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, [Metric("m", 5.0, 100, 3)])
    store.log_batch(run_id, [Metric("m", 9.0, 200, 1)])  # later in time, earlier step
    store.log_batch(run_id, [Metric("m", 4.0, 100, 3)])  # same step and time, lower value
    [latest] = store.get_run(run_id).data.metric_objs
    assert (latest.value, latest.step, latest.timestamp) == (5.0, 3, 100)
    store.log_batch(run_id, [Metric("m", 7.0, 150, 3)])
    assert store.get_run(run_id).data.metrics == {"m": 7.0}


def test_nan_and_infinity(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(
        run_id,
        [
            Metric("x", float("nan"), 1, 0),
            Metric("x", float("inf"), 2, 1),
            Metric("x", float("-inf"), 3, 2),
            Metric("y", float("nan"), 1, 5),
        ],
    )
    values = [m.value for m in store.get_metric_history(run_id, "x")]
    assert math.isnan(values[0])
    assert values[1:] == [MAX_DOUBLE, -MAX_DOUBLE]
    assert math.isnan(store.get_run(run_id).data.metrics["y"])


def test_summary_min_max_count(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, [Metric("m", v, i, i) for i, v in enumerate([3.0, 1.0, float("nan")])])
    store.log_batch(run_id, [Metric("m", 7.0, 9, 9)])
    with store.engine.connect() as conn:
        s = schema.metric_summaries.c
        row = conn.execute(
            select(s.min_value, s.max_value, s.point_count, s.value).where(s.run_uuid == run_id)
        ).one()
    assert tuple(row) == (1.0, 7.0, 4, 7.0)


def test_history_paging(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, [Metric("m", float(i), i, i) for i in range(10)])
    page = store.get_metric_history(run_id, "m", max_results=4)
    assert [m.step for m in page] == [0, 1, 2, 3]
    assert page.token
    rest = store.get_metric_history(run_id, "m", max_results=10, page_token=page.token)
    assert [m.step for m in rest] == list(range(4, 10))
    assert rest.token is None


def test_unknown_metric_history_is_empty(store: SqlTrackingStore, run_id: str) -> None:
    assert store.get_metric_history(run_id, "nothing") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": [Metric("m", 1.0, 1, i) for i in range(1001)]}, "at most 1000 metrics"),
        ({"params": [Param(f"p{i}", "v") for i in range(101)]}, "at most 100 params"),
        ({"tags": [RunTag(f"t{i}", "v") for i in range(101)]}, "at most 100 tags"),
        (
            {
                "metrics": [Metric("m", 1.0, 1, i) for i in range(950)],
                "params": [Param(f"p{i}", "v") for i in range(60)],
            },
            "in total",
        ),
        ({"params": [Param("p", "a"), Param("p", "b")]}, "Duplicate parameter keys"),
    ],
)
def test_batch_limits(
    store: SqlTrackingStore, run_id: str, kwargs: dict[str, list[object]], message: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        store.log_batch(run_id, **kwargs)  # type: ignore[arg-type]


def test_many_keys_in_one_batch(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, [Metric(f"k{i}", float(i), 1, 0) for i in range(1000)])
    store.log_batch(run_id, [Metric(f"k{i}", float(i) + 1, 2, 1) for i in range(1000)])
    metrics = store.get_run(run_id).data.metrics
    assert len(metrics) == 1000
    assert metrics["k999"] == 1000.0
    assert len(store.get_metric_history(run_id, "k5")) == 2


def test_two_stores_share_one_database(store: SqlTrackingStore, run_id: str) -> None:
    other = SqlTrackingStore(store.db_uri, "/unused")
    try:
        other.log_batch(run_id, [Metric("m", 1.0, 1, 0)])
        store.log_batch(run_id, [Metric("m", 2.0, 2, 1)])
        assert [m.value for m in other.get_metric_history(run_id, "m")] == [1.0, 2.0]
    finally:
        other.close()


# Found by the API fuzz run (tests/server/test_api_fuzz.py): values a database cannot hold were
# answered 500 INTERNAL_ERROR instead of INVALID_PARAMETER_VALUE.
def test_integers_beyond_64_bits_are_refused(store: SqlTrackingStore, run_id: str) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid value"):
        store.log_batch(run_id, [Metric("m", 1.0, 2**64, 0)])
    with pytest.raises(InvalidParameterValue, match="Invalid value"):
        store.log_batch(run_id, [Metric("m", 1.0, 0, -(2**63) - 1)])
    with pytest.raises(InvalidParameterValue, match="Invalid value"):  # many rows: arrays
        store.log_batch(run_id, [Metric("m", 1.0, 1, 0), Metric("m", 1.0, 2**64, 1)])
    assert store.get_metric_history(run_id, "m") == []


def test_nul_characters_are_stored_or_refused(store: SqlTrackingStore, run_id: str) -> None:
    """SQLite keeps a NUL in text; PostgreSQL cannot, and says so as a bad value."""
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(InvalidParameterValue, match="NUL"):
            store.log_batch(run_id, params=[Param("p", "a\x00b")])
        with pytest.raises(InvalidParameterValue, match="NUL"):
            store.get_experiment_by_name("exp\x00")  # reads too
        assert store.get_run(run_id).data.params == {}
    else:
        store.log_batch(run_id, params=[Param("p", "a\x00b")])
        assert store.get_run(run_id).data.params == {"p": "a\x00b"}
