"""``search_run_docs``: runs/search pages as JSON ``Run`` messages straight from rows must be
byte for byte what the entities give through ``run_to_json`` — key order, NaN, empty parts,
dataset inputs and logged models included."""

from __future__ import annotations

import json

import pytest

from runyard.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    RunTag,
    ViewType,
)
from runyard.protocol.codec import run_to_json
from runyard.store.sql.store import SqlTrackingStore


def _seed(store: SqlTrackingStore, exp_id: str, count: int) -> None:
    """Runs with every kind of child, some with none, one running, one deleted."""
    for i in range(count):
        run_id = store.create_run(exp_id, f"user{i % 2}", 1000 + i, [], f"run-{i}").info.run_id
        if i % 3 == 0:
            store.log_batch(
                run_id,
                metrics=[
                    Metric("acc", i / 10, 5, 1),
                    Metric("loss", float("nan"), 5, 0),
                    Metric("big", float("inf"), 5, 0),
                    Metric("small", -float("inf"), 5, 0),
                ],
                params=[Param("lr", str(i)), Param("opt", "adam"), Param("empty", "")],
                tags=[RunTag("team", f"t{i % 2}"), RunTag("note", "x" * 300)],
            )
        if i % 4 == 0:
            dataset = Dataset(f"data-{i}", f"d{i}", "local", f"/data/{i}", '{"a": 1}')
            context = [InputTag("mlflow.data.context", "train")]
            store.log_inputs(run_id, [DatasetInput(dataset, context)])
        if i % 5 == 0:
            first = store.create_logged_model(exp_id, f"a{i}").model_id
            second = store.create_logged_model(exp_id, f"b{i}").model_id
            store.log_outputs(run_id, [LoggedModelOutput(second, 3), LoggedModelOutput(first, 1)])
            store.log_inputs(run_id, models=[LoggedModelInput(second)])
        if i % 6 == 1:
            store.update_run_info(run_id, "FINISHED", 2000 + i, None)
        if i == 8:
            store.delete_run(run_id)


@pytest.mark.parametrize("page_size", [1, 4, 1000])
def test_docs_are_run_to_json_of_the_runs(
    store: SqlTrackingStore, exp_id: str, page_size: int
) -> None:
    _seed(store, exp_id, 31)
    for view in (ViewType.ACTIVE_ONLY, ViewType.ALL):
        for order in ([], ["metrics.acc DESC", "params.lr"]):
            token = None
            pages = 0
            while True:
                runs = store.search_runs([exp_id], None, view, page_size, order, token)
                docs = store.search_run_docs([exp_id], None, view, page_size, order, token)
                expected = [run_to_json(r) for r in runs]
                assert json.dumps(list(docs)) == json.dumps(expected)
                assert docs.token == runs.token
                pages += 1
                token = runs.token
                if not token:
                    break
            assert pages == -(-(31 if view == ViewType.ALL else 30) // page_size)


def test_a_filtered_page_and_an_empty_one(store: SqlTrackingStore, exp_id: str) -> None:
    _seed(store, exp_id, 12)
    docs = store.search_run_docs(
        [exp_id], "params.opt = 'adam' and metrics.acc > 0.2", max_results=10
    )
    assert sorted(d["info"]["run_name"] for d in docs) == ["run-3", "run-6", "run-9"]
    for doc in docs:
        params = {p["key"]: p["value"] for p in doc["data"]["params"]}
        assert params == {"lr": doc["info"]["run_name"][4:], "opt": "adam", "empty": ""}
    metrics = {m["key"]: m["value"] for m in docs[0]["data"]["metrics"]}
    assert metrics["loss"] == "NaN"
    assert list(store.search_run_docs([exp_id], "params.opt = 'sgd'")) == []
