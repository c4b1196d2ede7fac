"""The UI's aggregate reads of the SQL store: distinct run keys and per-experiment run stats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from runyard.entities import Metric, Param, RunTag
from runyard.errors import InvalidParameterValue
from runyard.store.sql import run_keys
from runyard.store.sql.engine import read_engine
from runyard.store.sql.run_keys import ExperimentRunStats
from runyard.store.sql.store import SqlTrackingStore


def _run(
    store: SqlTrackingStore,
    exp_id: str,
    start: int,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    run_id = store.create_run(exp_id, "u", start, [], None).info.run_id
    store.log_batch(
        run_id,
        [Metric(k, v, 1, 0) for k, v in (metrics or {}).items()],
        [Param(k, v) for k, v in (params or {}).items()],
        [RunTag(k, v) for k, v in (tags or {}).items()],
    )
    return run_id


def test_keys_are_distinct_sorted_and_per_experiment(store: SqlTrackingStore) -> None:
    first = store.create_experiment("first")
    second = store.create_experiment("second")
    _run(store, first, 1, {"loss": 1.0, "acc": 0.5}, {"lr": "0.1"}, {"stage": "a"})
    _run(store, first, 2, {"loss": 2.0}, {"lr": "0.2", "Batch size": "32"})
    _run(store, second, 3, {"f1": 0.3}, {"depth": "4"}, {"owner": "bo"})

    keys = store.list_run_keys([first])
    assert keys["metrics"] == ["acc", "loss"]
    assert keys["params"] == ["Batch size", "lr"]
    # Every run carries its name tag.
    assert keys["tags"] == ["mlflow.runName", "stage"]

    both = store.list_run_keys([first, second])
    assert both["metrics"] == ["acc", "f1", "loss"]
    assert both["params"] == ["Batch size", "depth", "lr"]
    assert both["tags"] == ["mlflow.runName", "owner", "stage"]
    # Ids as integers mean the same.
    assert store.list_run_keys([int(second)])["params"] == ["depth"]


def test_keys_leave_out_deleted_runs(store: SqlTrackingStore, exp_id: str) -> None:
    _run(store, exp_id, 1, {"kept": 1.0}, {"p_kept": "1"})
    gone = _run(store, exp_id, 2, {"gone": 1.0}, {"p_gone": "1"}, {"t_gone": "x"})
    store.delete_run(gone)
    keys = store.list_run_keys([exp_id])
    assert keys == {"params": ["p_kept"], "metrics": ["kept"], "tags": ["mlflow.runName"]}
    store.restore_run(gone)
    assert store.list_run_keys([exp_id])["metrics"] == ["gone", "kept"]


@pytest.fixture
def statements(store: SqlTrackingStore) -> Iterator[list[str]]:
    """The SQL statements the store runs while the test does."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = {store.engine, read_engine(store.engine)}  # reads have their own on PostgreSQL
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", record)


def test_keys_beyond_the_sample(
    store: SqlTrackingStore, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More runs than the sample: keys the sample misses are probed from the cheaper side,
    or the plain query runs when probing would read more; either way the answer is exact."""
    monkeypatch.setattr(run_keys, "SAMPLE_RUNS", 3)
    mine = store.create_experiment("mine")
    other = store.create_experiment("other")
    wide = {f"p{i}": "1" for i in range(10)}
    for start in range(1, 6):  # the sample reads the earliest three
        _run(store, mine, start, params=wide)
    _run(store, mine, 6, params={**wide, "late": "1"}, tags={"late_tag": "x"})
    gone = _run(store, mine, 7, params={"gone": "1"}, tags={"gone_tag": "x"})
    store.delete_run(gone)
    for start in range(8):
        _run(store, other, start, params={"b_many": "1"}, tags={"b_tag": "x"})
    _run(store, other, 9, {"b_metric": 1.0}, {"b_one": "1"})

    statements.clear()
    keys = store.list_run_keys([mine])
    assert keys["params"] == sorted([*wide, "late"])
    assert keys["tags"] == ["late_tag", "mlflow.runName"]
    assert keys["metrics"] == []
    sql = "\n".join(statements)
    # Params: 10 rows a run make the plain query dear, so unseen keys were probed — those
    # found on few rows from the key side, b_many (on more rows than mine has runs) from the
    # runs side.
    assert "WITH RECURSIVE" in sql
    assert "EXISTS" in sql
    # Tags: one row a run makes the plain query the cheaper one.
    assert any("DISTINCT run_tags" in s.replace('"', "") for s in statements)
    # All experiments together: still exact.
    both = store.list_run_keys([mine, other])
    assert both["params"] == sorted([*wide, "late", "b_many", "b_one"])
    assert both["metrics"] == ["b_metric"]
    assert both["tags"] == ["b_tag", "late_tag", "mlflow.runName"]


def test_keys_of_empty_and_unknown_experiments(store: SqlTrackingStore, exp_id: str) -> None:
    empty = {"params": [], "metrics": [], "tags": []}
    assert store.list_run_keys([exp_id]) == empty
    assert store.list_run_keys(["12345"]) == empty
    assert store.list_run_keys([]) == empty
    with pytest.raises(InvalidParameterValue, match="Invalid experiment ID"):
        store.list_run_keys(["abc"])


def test_run_stats_count_active_runs_and_latest_start(store: SqlTrackingStore) -> None:
    busy = store.create_experiment("busy")
    idle = store.create_experiment("idle")
    _run(store, busy, 1_000)
    _run(store, busy, 5_000)
    deleted = _run(store, busy, 9_000)
    store.delete_run(deleted)

    stats = store.experiment_run_stats([busy, idle, "987"])
    assert stats[busy] == ExperimentRunStats(2, 5_000, 1)
    assert (stats[busy].run_count, stats[busy].last_start_time) == (2, 5_000)
    assert stats[idle] == ExperimentRunStats(0, None, 0)
    assert stats["987"] == ExperimentRunStats(0, None, 0)
    assert store.experiment_run_stats([]) == {}


def test_run_stats_of_a_deleted_experiment(store: SqlTrackingStore, exp_id: str) -> None:
    _run(store, exp_id, 10)
    _run(store, exp_id, 20)
    store.delete_experiment(exp_id)
    # Its runs went with it: none active, both counted as deleted.
    assert store.experiment_run_stats([exp_id])[exp_id] == ExperimentRunStats(0, None, 2)
    store.restore_experiment(exp_id)
    assert store.experiment_run_stats([exp_id])[exp_id] == ExperimentRunStats(2, 20, 0)
