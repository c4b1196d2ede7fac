"""Pages of runs read in one statement (``Statements.rows_of_runs``), and the autocommit reader.

Every run of a search page must come back exactly as ``get_run`` (another statement) reads it:
params, tags, latest metrics (NaN included), dataset inputs with their tags and logged models in
(step, model id) order, for runs with many children, none, or only some kinds. On PostgreSQL the
ids travel as one array, so one statement text serves every page size and the driver prepares
it once per connection; reads use a separate pool whose connections are autocommit from the
start.
"""

from __future__ import annotations

import math
import uuid

from sqlalchemy import text

from runyard.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    Run,
    RunTag,
)
from runyard.store.sql.engine import read_engine
from runyard.store.sql.rows import load_runs
from runyard.store.sql.store import SqlTrackingStore


def _comparable(run: Run) -> tuple[object, ...]:
    """Everything a run read returns, with NaN made comparable and orders kept."""
    metrics = sorted(
        (m.key, "nan" if math.isnan(m.value) else m.value, m.timestamp, m.step)
        for m in run.data.metric_objs
    )
    inputs = [
        (
            i.dataset.name,
            i.dataset.digest,
            i.dataset.source,
            sorted((t.key, t.value) for t in i.tags),
        )
        for i in run.inputs.dataset_inputs
    ]
    return (
        run.info.run_id,
        run.info.status,
        run.info.run_name,
        dict(run.data.params),
        dict(run.data.tags),
        metrics,
        inputs,
        [m.model_id for m in run.inputs.model_inputs],
        [(m.model_id, m.step) for m in run.outputs.model_outputs],
    )


def _seed(store: SqlTrackingStore, exp_id: str, count: int) -> list[str]:
    """``count`` runs: every third with params/metrics/tags, every fifth with a dataset input,
    every seventh with logged models; the others hold only their run name tag."""
    run_ids = []
    for i in range(count):
        run_id = store.create_run(exp_id, "u", 1000 + i, [], f"run-{i}").info.run_id
        run_ids.append(run_id)
        if i % 3 == 0:
            store.log_batch(
                run_id,
                metrics=[
                    Metric("acc", i / 10, 5, 1),
                    Metric("acc", -1.0, 4, 0),  # older: not the latest value
                    Metric("loss", float("nan"), 5, 0),
                ],
                params=[Param("lr", str(i)), Param("opt", "adam")],
                tags=[RunTag("team", f"t{i % 2}")],
            )
        if i % 5 == 0:
            dataset = Dataset(f"data-{i}", f"d{i}", "local", f"/data/{i}")
            context = [InputTag("mlflow.data.context", "train")]
            store.log_inputs(run_id, [DatasetInput(dataset, context)])
        if i % 7 == 0:
            first = store.create_logged_model(exp_id, f"a{i}").model_id
            second = store.create_logged_model(exp_id, f"b{i}").model_id
            store.log_outputs(run_id, [LoggedModelOutput(second, 3), LoggedModelOutput(first, 1)])
            store.log_inputs(run_id, models=[LoggedModelInput(second), LoggedModelInput(first)])
    return run_ids


def test_a_page_reads_every_run_as_get_run_does(store: SqlTrackingStore, exp_id: str) -> None:
    run_ids = _seed(store, exp_id, 60)
    for page_size in (1, 7, 60):
        found: list[Run] = []
        token = None
        while True:
            page = store.search_runs([exp_id], max_results=page_size, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        assert sorted(r.info.run_id for r in found) == sorted(run_ids)
        for run in found:
            assert _comparable(run) == _comparable(store.get_run(run.info.run_id))


def test_children_of_each_kind_come_back(store: SqlTrackingStore, exp_id: str) -> None:
    _seed(store, exp_id, 15)
    runs = {r.info.run_name: r for r in store.search_runs([exp_id], max_results=100)}
    full, bare = runs["run-0"], runs["run-1"]
    assert full.data.params == {"lr": "0", "opt": "adam"}
    assert full.data.tags == {"team": "t0", "mlflow.runName": "run-0"}
    assert full.data.metrics["acc"] == 0.0
    assert math.isnan(full.data.metrics["loss"])
    assert [i.dataset.name for i in full.inputs.dataset_inputs] == ["data-0"]
    assert [(t.key, t.value) for t in full.inputs.dataset_inputs[0].tags] == [
        ("mlflow.data.context", "train")
    ]
    outputs = [
        (o.step, store.get_logged_model(o.model_id).name) for o in full.outputs.model_outputs
    ]
    assert outputs == [(1, "a0"), (3, "b0")]
    assert sorted(m.model_id for m in full.inputs.model_inputs) == [
        m.model_id for m in full.inputs.model_inputs
    ]
    assert len(full.inputs.model_inputs) == 2
    # A run with nothing but its name tag.
    assert bare.data.params == {}
    assert bare.data.metrics == {}
    assert bare.data.tags == {"mlflow.runName": "run-1"}
    assert bare.inputs.dataset_inputs == []
    assert bare.inputs.model_inputs == []
    assert bare.outputs.model_outputs == []
    # Only a dataset input (run-5), only logged models (run-7).
    assert [i.dataset.name for i in runs["run-5"].inputs.dataset_inputs] == ["data-5"]
    assert runs["run-5"].data.params == {}
    assert len(runs["run-7"].outputs.model_outputs) == 2
    assert runs["run-7"].inputs.dataset_inputs == []


def test_zero_unknown_and_many_ids(store: SqlTrackingStore, exp_id: str) -> None:
    run_ids = _seed(store, exp_id, 4)
    sql = store._sql
    with store._read() as conn:
        assert load_runs(conn, sql, []) == []
        unknown = [uuid.uuid4().hex for _ in range(3)]
        assert sql.rows_of_runs(conn, "children", unknown) == []
        # The largest page load_runs asks for at once (its chunk), mostly runs that do not
        # exist: SQLite's IN lists stay under its parameter limit, PostgreSQL gets one array.
        many = [uuid.uuid4().hex for _ in range(1996)] + run_ids
        rows = sql.rows_of_runs(conn, "children", many)
    assert {row[0] for row in rows} == set(run_ids)
    kinds = {(row[0], row[1]) for row in rows}
    assert (run_ids[0], "p") in kinds
    assert (run_ids[0], "m") in kinds
    assert (run_ids[0], "i") in kinds
    assert (run_ids[0], "r") in kinds
    assert (run_ids[1], "t") in kinds
    assert (run_ids[1], "p") not in kinds
    # One "i" row per run with inputs, however many inputs it has.
    assert sum(1 for row in rows if row[1] == "i") == 1


def test_an_empty_experiment_reads_no_runs(store: SqlTrackingStore, exp_id: str) -> None:
    page = store.search_runs([exp_id])
    assert list(page) == []
    assert page.token is None


def test_one_prepared_statement_serves_every_page_size(
    store: SqlTrackingStore, exp_id: str
) -> None:
    if store.engine.dialect.name == "sqlite":
        # SQLite compiles one IN list per page size; nothing is prepared server-side.
        assert store._sql.of_runs("children", 3) is store._sql.of_runs("children", 3)
        return
    run_ids = _seed(store, exp_id, 12)
    sql = store._sql
    with store._read() as conn:
        for size in (1, 2, 3, 5, 8, 12, 12, 7):
            rows = sql.rows_of_runs(conn, "children", run_ids[:size])
            assert {row[0] for row in rows} == set(run_ids[:size])
        prepared = conn.execute(
            text("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%ANY%'")
        ).all()
    # psycopg prepares a statement after 5 executions of the same text on a connection.
    assert len([s for (s,) in prepared if "run_models" in s]) == 1


def test_reads_use_an_autocommit_pool_disposed_with_the_store(
    store: SqlTrackingStore, exp_id: str
) -> None:
    engine = store.engine
    reader = read_engine(engine)
    assert read_engine(engine) is reader
    if engine.dialect.name == "sqlite":
        assert reader is engine
        return
    assert reader is not engine
    assert reader.pool is not engine.pool
    with store._read() as conn:
        assert conn.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
        status = conn.connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
        assert status.name == "IDLE"  # no BEGIN was sent
    with store._write() as conn:
        assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
    store.get_experiment(exp_id)
    assert reader.pool.checkedin() >= 1
    engine.dispose()
    assert reader.pool.checkedin() == 0
