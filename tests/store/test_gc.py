"""Permanent deletion in the SQL store (``runyard gc``'s store side): listing what is eligible
and removing runs, logged models and experiments with every row that belongs to them.

Runs on SQLite, and on PostgreSQL too under ``bash scripts/with-postgres``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from runyard.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelTag,
    Metric,
    Param,
    RunTag,
)
from runyard.errors import ResourceDoesNotExist
from runyard.store.sql import gc as gc_module
from runyard.store.sql import schema as t
from runyard.store.sql.store import SqlTrackingStore

# Every table that holds rows of one run, and the column naming the run.
RUN_TABLES = [
    (t.runs, "run_uuid"),
    (t.params, "run_uuid"),
    (t.run_tags, "run_uuid"),
    (t.metric_summaries, "run_uuid"),
    (t.dataset_inputs, "run_uuid"),
    (t.run_models, "run_uuid"),
]
MODEL_TABLES = [
    (t.logged_models, "model_id"),
    (t.logged_model_params, "model_id"),
    (t.logged_model_tags, "model_id"),
    (t.logged_model_metrics, "model_id"),
    (t.run_models, "model_id"),
]


def _count(store: SqlTrackingStore, table: object, column: str, value: object) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c[column] == value)  # type: ignore[attr-defined]
            ).scalar_one()
        )


def _total(store: SqlTrackingStore, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _points_of(store: SqlTrackingStore, run_id: str) -> int:
    series = select(t.metric_summaries.c.series_id).where(t.metric_summaries.c.run_uuid == run_id)
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(t.metric_points)
                .where(t.metric_points.c.series_id.in_(series))
            ).scalar_one()
        )


def _run_rows(store: SqlTrackingStore, run_id: str) -> dict[str, int]:
    rows = {table.name: _count(store, table, col, run_id) for table, col in RUN_TABLES}
    rows["metric_points"] = _points_of(store, run_id)
    return rows


def _model_rows(store: SqlTrackingStore, model_id: str) -> dict[str, int]:
    return {table.name: _count(store, table, col, model_id) for table, col in MODEL_TABLES}


def _full_run(store: SqlTrackingStore, exp_id: str, name: str, keys: int = 3) -> str:
    """A run with params, tags, several metric series, a dataset input and model links."""
    run_id = store.create_run(exp_id, "alice", 1000, [RunTag("team", "a")], name).info.run_id
    metrics = [Metric(f"m{k}", float(s), 1000 + s, s) for k in range(keys) for s in range(4)]
    store.log_batch(run_id, metrics, [Param("lr", "0.1")], [RunTag("t", "v")])
    dataset = Dataset(f"ds-{name}", "d1", "local", '{"uri": "x"}')
    store.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "train")])])
    produced = store.create_logged_model(exp_id, f"model-{name}", source_run_id=run_id)
    store.log_outputs(run_id, [LoggedModelOutput(produced.model_id, 1)])
    store.log_inputs(run_id, models=[LoggedModelInput(produced.model_id)])
    return run_id


def _set(store: SqlTrackingStore, table: object, where: object, **values: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(table).where(where).values(**values))  # type: ignore[arg-type]


# -- runs ----------------------------------------------------------------------------------------
def test_hard_delete_run_removes_every_row_and_keeps_other_runs(
    store: SqlTrackingStore, exp_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so the series-by-series deletion of points takes several transactions.
    monkeypatch.setattr(gc_module, "SERIES_PER_TRANSACTION", 2)
    doomed = _full_run(store, exp_id, "doomed", keys=5)
    kept = _full_run(store, exp_id, "kept")
    before_kept = _run_rows(store, kept)
    assert all(before_kept.values()), before_kept
    assert _run_rows(store, doomed)["metric_points"] == 20
    input_tags_before = _total(store, t.input_tags)
    store.delete_run(doomed)

    assert store.hard_delete_run(doomed) is True

    assert set(_run_rows(store, doomed).values()) == {0}
    assert _run_rows(store, kept) == before_kept
    assert _total(store, t.input_tags) == input_tags_before - 1
    with pytest.raises(ResourceDoesNotExist):
        store.get_run(doomed)
    assert store.get_run(kept).data.params == {"lr": "0.1"}
    # The logged model the run produced is the model's own object: it stays.
    assert store.search_logged_models([exp_id]).__len__() == 2
    # Already gone: nothing to do, no error.
    assert store.hard_delete_run(doomed) is False


def test_deleted_runs_lists_only_deleted_runs_older_than_the_cutoff(
    store: SqlTrackingStore, exp_id: str
) -> None:
    old, recent, active = (
        store.create_run(exp_id, "u", 0, [], name).info.run_id for name in ("a", "b", "c")
    )
    store.delete_run(old)
    store.delete_run(recent)
    _set(store, t.runs, t.runs.c.run_uuid == old, deleted_time=1_000)
    _set(store, t.runs, t.runs.c.run_uuid == recent, deleted_time=5_000)

    assert [r.run_id for r in store.deleted_runs()] == [old, recent]
    assert [r.run_id for r in store.deleted_runs(cutoff_ms=5_000)] == [old]
    assert store.deleted_runs(cutoff_ms=1_000) == []
    listed = store.deleted_runs()[0]
    assert (listed.experiment_id, listed.deleted_time, listed.lifecycle_stage) == (
        exp_id,
        1_000,
        "deleted",
    )
    assert listed.artifact_uri is not None
    assert listed.artifact_uri.endswith(f"/{old}/artifacts")
    # find_gc_runs reports existing runs whatever their stage, and skips unknown ids.
    found = store.find_gc_runs([active, old, "0" * 32])
    assert set(found) == {active, old}
    assert found[active].lifecycle_stage == "active"


# -- logged models -------------------------------------------------------------------------------
def test_hard_delete_logged_model_removes_its_rows_only(
    store: SqlTrackingStore, exp_id: str, run_id: str
) -> None:
    models = [
        store.create_logged_model(
            exp_id,
            name,
            tags=[LoggedModelTag("k", "v")],
            params=[LoggedModelParameter("p", "1")],
        ).model_id
        for name in ("doomed", "kept")
    ]
    for model_id in models:
        store.log_batch(run_id, [Metric("acc", 0.9, 5, 0, model_id=model_id)])
        store.log_outputs(run_id, [LoggedModelOutput(model_id, 0)])
    doomed, kept = models
    kept_rows = _model_rows(store, kept)
    assert all(kept_rows.values()), kept_rows
    store.delete_logged_model(doomed)
    assert [m.model_id for m in store.deleted_logged_models()] == [doomed]

    assert store.hard_delete_logged_model(doomed) is True

    assert set(_model_rows(store, doomed).values()) == {0}
    assert _model_rows(store, kept) == kept_rows
    assert store.get_run(run_id).data.metrics == {"acc": 0.9}  # the run's own series stays
    assert store.hard_delete_logged_model(doomed) is False
    assert store.deleted_logged_models() == []


def test_deleted_logged_models_respect_the_cutoff(store: SqlTrackingStore, exp_id: str) -> None:
    old, recent = (store.create_logged_model(exp_id, n).model_id for n in ("old", "new"))
    store.create_logged_model(exp_id, "active")
    for model_id, when in ((old, 1_000), (recent, 9_000)):
        store.delete_logged_model(model_id)
        _set(store, t.logged_models, t.logged_models.c.model_id == model_id,
             last_updated_timestamp_ms=when)  # fmt: skip
    assert sorted(m.model_id for m in store.deleted_logged_models()) == sorted([old, recent])
    assert [m.model_id for m in store.deleted_logged_models(cutoff_ms=5_000)] == [old]
    found = store.find_gc_logged_models([old, "m-missing"])
    assert list(found) == [old]
    assert found[old].last_updated_timestamp == 1_000


# -- experiments ---------------------------------------------------------------------------------
def test_hard_delete_experiment_removes_everything_in_it_and_frees_the_name(
    store: SqlTrackingStore,
) -> None:
    doomed = store.create_experiment("doomed", tags=[ExperimentTag("owner", "bob")])
    kept = store.create_experiment("kept", tags=[ExperimentTag("owner", "eve")])
    doomed_runs = [_full_run(store, doomed, name) for name in ("r1", "r2")]
    kept_run = _full_run(store, kept, "r3")
    kept_rows = _run_rows(store, kept_run)
    doomed_models = [m.model_id for m in store.search_logged_models([doomed])]
    assert len(doomed_models) == 2
    datasets_before = _total(store, t.datasets)
    store.delete_experiment(doomed)
    runs, models = store.experiment_gc_contents(doomed)
    assert sorted(r.run_id for r in runs) == sorted(doomed_runs)
    assert sorted(m.model_id for m in models) == sorted(doomed_models)
    assert [e.experiment_id for e in store.deleted_experiments()] == [doomed]

    assert store.hard_delete_experiment(doomed) is True

    for run_id in doomed_runs:
        assert set(_run_rows(store, run_id).values()) == {0}
    for model_id in doomed_models:
        assert set(_model_rows(store, model_id).values()) == {0}
    assert _count(store, t.experiment_tags, "experiment_id", int(doomed)) == 0
    assert _count(store, t.datasets, "experiment_id", int(doomed)) == 0
    assert _total(store, t.datasets) == datasets_before - 2
    assert _run_rows(store, kept_run) == kept_rows
    assert store.get_experiment(kept).tags == {"owner": "eve"}
    with pytest.raises(ResourceDoesNotExist):
        store.get_experiment(doomed)
    assert store.get_experiment_by_name("doomed") is None
    assert store.hard_delete_experiment(doomed) is False
    reborn = store.create_experiment("doomed")
    assert store.get_experiment(reborn).lifecycle_stage == "active"
    assert store.get_experiment(reborn).tags == {}


def test_deleted_experiments_respect_the_cutoff(store: SqlTrackingStore) -> None:
    old, recent, _active = (store.create_experiment(n) for n in ("old", "recent", "active"))
    for exp_id, when in ((old, 2_000), (recent, 8_000)):
        store.delete_experiment(exp_id)
        _set(store, t.experiments, t.experiments.c.experiment_id == int(exp_id),
             last_update_time=when)  # fmt: skip
    assert [e.experiment_id for e in store.deleted_experiments()] == [old, recent]
    assert [e.experiment_id for e in store.deleted_experiments(cutoff_ms=5_000)] == [old]
    found = store.find_gc_experiments([old, _active, "999"])
    assert set(found) == {old, _active}
    assert (found[old].name, found[old].last_update_time) == ("old", 2_000)
