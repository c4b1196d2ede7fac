"""``search_run_docs``: runs/search pages as JSON ``Run`` messages straight from rows must
serialize byte for byte as the entities do through ``run_to_json`` — key order, NaN, empty
parts, dataset inputs, logged models and strings that need escaping included (on SQLite params
and tags arrive as JSON text built by SQLite)."""

from __future__ import annotations

import json

import orjson
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

#: A value every JSON writer must escape alike: quotes, backslash, control characters, slash,
#: non-ASCII (two-, three- and four-byte UTF-8), a line separator.
_ODD = 'q"\\ /\n\t\r\b\f\x01\x1f\x7f é✓😀 \u2028'


def test_params_and_tags_are_written_as_orjson_writes_them(
    store: SqlTrackingStore, exp_id: str
) -> None:
    """The JSON text SQLite builds is byte for byte orjson's, escapes included."""
    _seed(store, exp_id, 1)
    (doc,) = store.search_run_docs([exp_id], None)
    body = orjson.dumps(doc)
    (run,) = store.search_runs([exp_id], None)
    for part, values in (("params", run.data.params), ("tags", run.data.tags)):
        listed = [{"key": k, "value": v} for k, v in values.items()]
        assert b'"' + part.encode() + b'":' + orjson.dumps(listed) in body


def _nul(store: SqlTrackingStore) -> str:
    """A NUL character where the database can hold one (PostgreSQL text cannot)."""
    return "\x00end" if store._engine.dialect.name == "sqlite" else ""


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
                params=[
                    Param("lr", str(i)),
                    Param("opt", "adam"),
                    Param("empty", ""),
                    Param("odd", _ODD + _nul(store)),
                ],  # fmt: skip
                tags=[
                    RunTag("team", f"t{i % 2}"),
                    RunTag("note", "x" * 300),
                    RunTag(f"k{_ODD}", _ODD),
                ],  # fmt: skip
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
                assert orjson.dumps(list(docs)) == orjson.dumps(expected)
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
    docs = json.loads(orjson.dumps(list(docs)))  # params and tags may be JSON text until sent
    assert sorted(d["info"]["run_name"] for d in docs) == ["run-3", "run-6", "run-9"]
    for doc in docs:
        params = {p["key"]: p["value"] for p in doc["data"]["params"]}
        assert params == {"lr": doc["info"]["run_name"][4:], "opt": "adam", "empty": "",
                          "odd": _ODD + _nul(store)}  # fmt: skip
        assert {t["key"]: t["value"] for t in doc["data"]["tags"]}[f"k{_ODD}"] == _ODD
    metrics = {m["key"]: m["value"] for m in docs[0]["data"]["metrics"]}
    assert metrics["loss"] == "NaN"
    assert list(store.search_run_docs([exp_id], "params.opt = 'sgd'")) == []
