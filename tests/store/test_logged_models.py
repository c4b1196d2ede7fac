"""Logged models in the SQL store (MLflow 3): lifecycle, tags, params, metrics logged with a
model id, run inputs/outputs, and search with filters, order and pages.

Runs on SQLite, and on PostgreSQL too under ``bash scripts/with-postgres``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from runyard.entities import (
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    Param,
    ViewType,
)
from runyard.entities.run import new_metric
from runyard.errors import InvalidFilter, InvalidParameterValue, ResourceDoesNotExist
from runyard.store.sql.engine import read_engine
from runyard.store.sql.store import SqlTrackingStore

# -- entities ----------------------------------------------------------------------------------


def test_status_spellings() -> None:
    ready = LoggedModelStatus.READY
    assert ready == "READY"
    assert str(ready) == "READY"
    assert (ready.to_int(), ready.proto_name) == (2, "LOGGED_MODEL_READY")
    for spelling in ("READY", "ready", "LOGGED_MODEL_READY", 2, "2", ready):
        assert LoggedModelStatus.parse(spelling) is ready
    failed = LoggedModelStatus.parse("LOGGED_MODEL_UPLOAD_FAILED")
    assert failed is LoggedModelStatus.FAILED is LoggedModelStatus.UPLOAD_FAILED
    assert failed.to_int() == 3
    assert LoggedModelStatus.from_int(1) is LoggedModelStatus.PENDING
    assert LoggedModelStatus.is_finalized(failed)
    assert not LoggedModelStatus.is_finalized(LoggedModelStatus.PENDING)
    with pytest.raises(InvalidParameterValue, match="Invalid logged model status 'DONE'"):
        LoggedModelStatus.parse("DONE")
    with pytest.raises(InvalidParameterValue, match="Unknown model status: 9"):
        LoggedModelStatus.parse(9)


def test_metrics_built_in_bulk_have_no_model() -> None:
    bulk = new_metric("loss", 0.5, 10, 1, "r1")
    assert (bulk.model_id, bulk.dataset_name, bulk.dataset_digest) == (None, None, None)
    assert bulk == Metric("loss", 0.5, 10, 1, "r1")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bulk.nope  # type: ignore[attr-defined]  # noqa: B018
    full = Metric("loss", 0.5, 10, 1, "r1", "m-1", "train", "abc")
    assert (full.model_id, full.dataset_name, full.dataset_digest) == ("m-1", "train", "abc")


# -- create / get ------------------------------------------------------------------------------


def test_create_and_get(store: SqlTrackingStore, exp_id: str, run_id: str) -> None:
    before = int(time.time() * 1000)
    model = store.create_logged_model(
        exp_id,
        "clf",
        run_id,
        [LoggedModelTag("team", "a")],
        [LoggedModelParameter("alpha", "0.5")],
        "sklearn",
    )
    assert re.fullmatch(r"m-[0-9a-f]{32}", model.model_id)
    assert model.experiment_id == exp_id
    assert (model.name, model.model_type, model.source_run_id) == ("clf", "sklearn", run_id)
    assert model.status is LoggedModelStatus.PENDING
    assert model.creation_timestamp == model.last_updated_timestamp >= before
    experiment = store.get_experiment(exp_id)
    assert model.artifact_location == (
        f"{experiment.artifact_location}/models/{model.model_id}/artifacts"
    )
    assert model.model_uri == f"models:/{model.model_id}"
    assert (model.tags, model.params, model.metrics) == ({"team": "a"}, {"alpha": "0.5"}, [])
    assert store.get_logged_model(model.model_id) == model


def test_create_defaults_to_a_random_name(store: SqlTrackingStore, exp_id: str) -> None:
    model = store.create_logged_model(exp_id)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", model.name)
    assert (model.source_run_id, model.model_type, model.tags, model.params) == (None, None, {}, {})


@pytest.mark.parametrize("name", ["", "a/b", "a.b", "a:b", "50%", "it's", 'say "x"'])
def test_create_refuses_bad_names(store: SqlTrackingStore, exp_id: str, name: str) -> None:
    with pytest.raises(InvalidParameterValue, match=r"Invalid model name \(.*\) provided"):
        store.create_logged_model(exp_id, name)


def test_create_checks_experiment_and_source_run(
    store: SqlTrackingStore, exp_id: str, run_id: str
) -> None:
    with pytest.raises(ResourceDoesNotExist, match="No Experiment with id=999 exists"):
        store.create_logged_model("999")
    other = store.create_experiment("other")
    with pytest.raises(InvalidParameterValue, match=f"belongs to experiment {exp_id}"):
        store.create_logged_model(other, "m", run_id)
    with pytest.raises(ResourceDoesNotExist, match="Run with id=0123 not found"):
        store.create_logged_model(exp_id, "m", "0123")
    store.delete_experiment(other)
    with pytest.raises(InvalidParameterValue, match="must be in the 'active' state"):
        store.create_logged_model(other, "m")


def test_unknown_model_is_404(store: SqlTrackingStore) -> None:
    with pytest.raises(ResourceDoesNotExist) as caught:
        store.get_logged_model("m-nope")
    assert caught.value.message == "Logged model with ID 'm-nope' not found."
    assert caught.value.get_http_status_code() == 404


# -- finalize / delete -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("LOGGED_MODEL_READY", LoggedModelStatus.READY),
        (LoggedModelStatus.READY, LoggedModelStatus.READY),
        (3, LoggedModelStatus.FAILED),
        ("UPLOAD_FAILED", LoggedModelStatus.FAILED),
    ],
)
def test_finalize(
    store: SqlTrackingStore, exp_id: str, status: Any, expected: LoggedModelStatus
) -> None:
    model = store.create_logged_model(exp_id, "m")
    done = store.finalize_logged_model(model.model_id, status)
    assert done.status is expected
    assert done.last_updated_timestamp >= model.last_updated_timestamp
    assert store.get_logged_model(model.model_id).status is expected


def test_finalize_refuses_unknown_status(store: SqlTrackingStore, exp_id: str) -> None:
    model = store.create_logged_model(exp_id, "m")
    with pytest.raises(InvalidParameterValue, match="Invalid logged model status"):
        store.finalize_logged_model(model.model_id, "SHIPPED")
    with pytest.raises(ResourceDoesNotExist):
        store.finalize_logged_model("m-missing", "READY")


def test_deleted_models_are_hidden(store: SqlTrackingStore, exp_id: str) -> None:
    kept = store.create_logged_model(exp_id, "kept")
    gone = store.create_logged_model(exp_id, "gone")
    store.delete_logged_model(gone.model_id)
    with pytest.raises(ResourceDoesNotExist, match="not found"):
        store.get_logged_model(gone.model_id)
    assert store.get_logged_model(gone.model_id, allow_deleted=True).name == "gone"
    assert [m.model_id for m in store.search_logged_models([exp_id])] == [kept.model_id]
    for write in (
        lambda: store.finalize_logged_model(gone.model_id, "READY"),
        lambda: store.set_logged_model_tags(gone.model_id, [LoggedModelTag("k", "v")]),
        lambda: store.log_logged_model_params(gone.model_id, [LoggedModelParameter("k", "v")]),
        lambda: store.delete_logged_model(gone.model_id),
    ):
        with pytest.raises(ResourceDoesNotExist):
            write()


# -- tags and params ---------------------------------------------------------------------------


def test_tags_upsert_and_delete(store: SqlTrackingStore, exp_id: str) -> None:
    model = store.create_logged_model(exp_id, "m", tags=[LoggedModelTag("a", "1")])
    store.set_logged_model_tags(
        model.model_id, [LoggedModelTag("a", "2"), LoggedModelTag("b", "x")]
    )
    assert store.get_logged_model(model.model_id).tags == {"a": "2", "b": "x"}
    store.delete_logged_model_tag(model.model_id, "a")
    assert store.get_logged_model(model.model_id).tags == {"b": "x"}
    with pytest.raises(ResourceDoesNotExist) as caught:
        store.delete_logged_model_tag(model.model_id, "a")
    assert caught.value.message == (
        f"No tag with key 'a' found for model with ID '{model.model_id}'."
    )
    with pytest.raises(InvalidParameterValue, match="Invalid tag name"):
        store.set_logged_model_tags(model.model_id, [LoggedModelTag("../x", "v")])


def test_registrations_come_from_the_model_versions_tag(
    store: SqlTrackingStore, exp_id: str
) -> None:
    model = store.create_logged_model(exp_id, "m")
    entries = '[{"name": "reg", "version": "1"}, {"name": "reg", "version": "2"}]'
    store.set_logged_model_tags(model.model_id, [LoggedModelTag("mlflow.modelVersions", entries)])
    found = store.get_logged_model(model.model_id).registrations
    assert [(r.name, r.version) for r in found] == [("reg", "1"), ("reg", "2")]
    store.set_logged_model_tags(model.model_id, [LoggedModelTag("mlflow.modelVersions", "{bad")])
    assert store.get_logged_model(model.model_id).registrations == []


def test_params_are_immutable(store: SqlTrackingStore, exp_id: str) -> None:
    model = store.create_logged_model(exp_id, "m", params=[LoggedModelParameter("a", "1")])
    store.log_logged_model_params(
        model.model_id, [LoggedModelParameter("a", "1"), LoggedModelParameter("b", "2")]
    )
    assert store.get_logged_model(model.model_id).params == {"a": "1", "b": "2"}
    with pytest.raises(InvalidParameterValue, match="Changing param values is not allowed"):
        store.log_logged_model_params(model.model_id, [LoggedModelParameter("a", "9")])
    assert store.get_logged_model(model.model_id).params == {"a": "1", "b": "2"}


# -- metrics logged with a model id -------------------------------------------------------------


def test_metrics_with_a_model_id_belong_to_the_model(
    store: SqlTrackingStore, exp_id: str, run_id: str
) -> None:
    model = store.create_logged_model(exp_id, "m", run_id)
    mid = model.model_id
    store.log_batch(
        run_id,
        [
            Metric("acc", 0.8, 100, 0, None, mid, "val", "d1"),
            Metric("acc", 0.9, 200, 1, None, mid, "val", "d1"),
            Metric("loss", float("nan"), 100, 0, None, mid),
            Metric("plain", 1.0, 100, 0),
        ],
    )
    points = store.get_logged_model(mid).metrics
    assert points is not None
    by_key = {(m.key, m.step): m for m in points}
    assert set(by_key) == {("acc", 0), ("acc", 1), ("loss", 0)}
    acc = by_key[("acc", 1)]
    assert (acc.value, acc.timestamp, acc.run_id, acc.model_id) == (0.9, 200, run_id, mid)
    assert (acc.dataset_name, acc.dataset_digest) == ("val", "d1")
    assert math.isnan(by_key[("loss", 0)].value)
    # Callers that only need the model's location and status can skip the points.
    head = store.get_logged_model(mid, include_metrics=False)
    assert (head.model_id, head.artifact_location, head.metrics) == (
        mid,
        model.artifact_location,
        [],
    )
    # The run has its three series as usual.
    run_metrics = store.get_run(run_id).data.metrics
    assert sorted(run_metrics) == ["acc", "loss", "plain"]
    assert (run_metrics["acc"], run_metrics["plain"]) == (0.9, 1.0)
    assert math.isnan(run_metrics["loss"])


def test_metrics_for_an_unknown_model_write_nothing(store: SqlTrackingStore, run_id: str) -> None:
    with pytest.raises(ResourceDoesNotExist, match="Logged model with ID 'm-ghost' not found"):
        store.log_batch(run_id, [Metric("a", 1.0, 1, 0), Metric("b", 1.0, 1, 0, None, "m-ghost")])
    assert store.get_run(run_id).data.metrics == {}


def test_metric_dataset_needs_name_and_digest(
    store: SqlTrackingStore, exp_id: str, run_id: str
) -> None:
    mid = store.create_logged_model(exp_id, "m").model_id
    with pytest.raises(InvalidParameterValue, match="Both dataset_name and dataset_digest"):
        store.log_batch(run_id, [Metric("a", 1.0, 1, 0, None, mid, "val", None)])


# -- run inputs and outputs --------------------------------------------------------------------


def test_run_outputs_and_model_inputs(store: SqlTrackingStore, exp_id: str, run_id: str) -> None:
    first = store.create_logged_model(exp_id, "first").model_id
    second = store.create_logged_model(exp_id, "second").model_id
    used = store.create_logged_model(exp_id, "used").model_id
    store.log_outputs(run_id, [LoggedModelOutput(second, 5), LoggedModelOutput(first, 1)])
    store.log_outputs(run_id, [LoggedModelOutput(first, 2)])  # a repeat moves the step
    store.log_inputs(run_id, models=[LoggedModelInput(used)])
    run = store.get_run(run_id)
    assert run.outputs.model_outputs == [LoggedModelOutput(first, 2), LoggedModelOutput(second, 5)]
    assert run.inputs.model_inputs == [LoggedModelInput(used)]
    assert run.inputs.dataset_inputs == []
    (found,) = store.search_runs([exp_id], run_view_type=ViewType.ALL)
    assert (found.outputs, found.inputs) == (run.outputs, run.inputs)
    other = store.create_run(exp_id, "bob", 2000, [], "second")
    assert store.get_run(other.info.run_id).outputs.model_outputs == []


def test_outputs_need_an_active_run_and_existing_models(
    store: SqlTrackingStore, exp_id: str, run_id: str
) -> None:
    mid = store.create_logged_model(exp_id, "m").model_id
    with pytest.raises(ResourceDoesNotExist, match="Logged model with ID 'm-none' not found"):
        store.log_outputs(run_id, [LoggedModelOutput(mid, 0), LoggedModelOutput("m-none", 0)])
    assert store.get_run(run_id).outputs.model_outputs == []
    with pytest.raises(ResourceDoesNotExist, match="Logged model with ID 'm-none' not found"):
        store.log_inputs(run_id, models=[LoggedModelInput("m-none")])
    store.delete_run(run_id)
    with pytest.raises(InvalidParameterValue, match="must be in the 'active' state"):
        store.log_outputs(run_id, [LoggedModelOutput(mid, 0)])
    with pytest.raises(ResourceDoesNotExist, match="Run with id=abc not found"):
        store.log_outputs("abc", [LoggedModelOutput(mid, 0)])


# -- search ------------------------------------------------------------------------------------


@pytest.fixture
def catalog(store: SqlTrackingStore, exp_id: str, run_id: str) -> dict[str, str]:
    """Five models, created in this order, with types, statuses, params, tags and metrics."""
    specs = [
        ("alpha", "sklearn", "READY", "0.1", "prod", [("acc", 0.70, "val", "d1")]),
        ("beta", "torch", "READY", "0.2", "dev", [("acc", 0.90, "val", "d1")]),
        ("gamma", "sklearn", "UPLOAD_FAILED", "0.3", "prod", [("acc", 0.80, "test", "d2")]),
        ("Delta", None, "PENDING", "0.4", "dev", []),
        ("epsilon", "sklearn", "READY", "0.5", "prod", [("acc", float("nan"), "val", "d1")]),
    ]
    ids = {}
    for name, model_type, status, lr, stage, metrics in specs:
        model = store.create_logged_model(
            exp_id,
            name,
            run_id if name != "Delta" else None,
            [LoggedModelTag("stage", stage)],
            [LoggedModelParameter("lr", lr)],
            model_type,
        )
        if status != "PENDING":
            store.finalize_logged_model(model.model_id, status)
        for i, (key, value, ds_name, ds_digest) in enumerate(metrics):
            store.log_batch(
                run_id, [Metric(key, value, 1000 + i, i, None, model.model_id, ds_name, ds_digest)]
            )
        ids[name] = model.model_id
        time.sleep(0.002)  # distinct creation times
    return ids


def names(store: SqlTrackingStore, exp_id: str, **kwargs: Any) -> list[str]:
    return [m.name for m in store.search_logged_models([exp_id], **kwargs)]


def test_search_defaults_to_newest_first(
    store: SqlTrackingStore, exp_id: str, catalog: dict[str, str]
) -> None:
    assert names(store, exp_id) == ["epsilon", "Delta", "gamma", "beta", "alpha"]
    assert store.search_logged_models([store.create_experiment("empty")]) == []


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'beta'", ["beta"]),
        ("name != 'beta'", ["epsilon", "Delta", "gamma", "alpha"]),
        ("name LIKE '%a'", ["Delta", "gamma", "beta", "alpha"]),
        ("name LIKE 'd%'", []),
        ("name ILIKE 'd%'", ["Delta"]),
        ("model_type = 'sklearn'", ["epsilon", "gamma", "alpha"]),
        ("status = 'READY'", ["epsilon", "beta", "alpha"]),
        ("status = 'LOGGED_MODEL_UPLOAD_FAILED'", ["gamma"]),
        ("status != 'READY'", ["Delta", "gamma"]),
        ("status IN ('PENDING', 'FAILED')", ["Delta", "gamma"]),
        ("params.lr = '0.2'", ["beta"]),
        ("params.lr LIKE '0.%' AND tags.stage = 'dev'", ["Delta", "beta"]),
        ("tags.stage != 'prod'", ["Delta", "beta"]),
        (
            "tags.missing IS NULL AND params.lr IS NOT NULL",
            ["epsilon", "Delta", "gamma", "beta", "alpha"],
        ),
        ("metrics.acc > 0.75", ["gamma", "beta"]),
        ("metrics.acc <= 0.8", ["gamma", "alpha"]),
        ("metrics.acc != 0.7", ["epsilon", "gamma", "beta"]),
        ("metrics.missing > 0", []),
        ("attributes.model_type = 'torch'", ["beta"]),
    ],
)
def test_search_filters(
    store: SqlTrackingStore,
    exp_id: str,
    catalog: dict[str, str],
    filter_string: str,
    expected: list[str],
) -> None:
    assert names(store, exp_id, filter_string=filter_string) == expected


def test_search_by_id_run_and_time(
    store: SqlTrackingStore, exp_id: str, run_id: str, catalog: dict[str, str]
) -> None:
    beta = store.get_logged_model(catalog["beta"])
    assert names(store, exp_id, filter_string=f"model_id = '{beta.model_id}'") == ["beta"]
    assert "Delta" not in names(store, exp_id, filter_string=f"source_run_id = '{run_id}'")
    after = f"creation_time > {beta.creation_timestamp}"
    assert names(store, exp_id, filter_string=after) == ["epsilon", "Delta", "gamma"]
    at_most = f"creation_timestamp <= {beta.creation_timestamp}"
    assert names(store, exp_id, filter_string=at_most) == ["beta", "alpha"]
    updated = f"last_updated_timestamp >= {beta.last_updated_timestamp}"
    assert "beta" in names(store, exp_id, filter_string=updated)


def test_search_with_datasets(
    store: SqlTrackingStore, exp_id: str, catalog: dict[str, str]
) -> None:
    on_test = [{"dataset_name": "test"}]
    assert names(store, exp_id, datasets=on_test) == ["gamma"]
    assert names(store, exp_id, filter_string="metrics.acc > 0.5", datasets=on_test) == ["gamma"]
    val = [{"dataset_name": "val", "dataset_digest": "d1"}]
    assert names(store, exp_id, filter_string="metrics.acc > 0.75", datasets=val) == ["beta"]
    wrong_digest = [{"dataset_name": "val", "dataset_digest": "zz"}]
    assert names(store, exp_id, datasets=wrong_digest) == []
    with pytest.raises(InvalidParameterValue, match="`dataset_name` in the `datasets` clause"):
        store.search_logged_models([exp_id], datasets=[{"dataset_digest": "d1"}])


def test_search_order(store: SqlTrackingStore, exp_id: str, catalog: dict[str, str]) -> None:
    by_name = [{"field_name": "name", "ascending": True}]
    assert names(store, exp_id, order_by=by_name) == ["Delta", "alpha", "beta", "epsilon", "gamma"]
    oldest = [{"field_name": "creation_timestamp", "ascending": True}]
    assert names(store, exp_id, order_by=oldest) == ["alpha", "beta", "gamma", "Delta", "epsilon"]
    # Missing and NaN values last, in both directions; ties newest first.
    best = [{"field_name": "metrics.acc", "ascending": False}]
    assert names(store, exp_id, order_by=best) == ["beta", "gamma", "alpha", "epsilon", "Delta"]
    worst = [{"field_name": "metrics.acc"}]
    assert names(store, exp_id, order_by=worst) == ["alpha", "gamma", "beta", "epsilon", "Delta"]
    on_val = [{"field_name": "metrics.acc", "ascending": False, "dataset_name": "val"}]
    assert names(store, exp_id, order_by=on_val)[:2] == ["beta", "alpha"]
    by_type = [{"field_name": "model_type", "ascending": False}, {"field_name": "name"}]
    assert names(store, exp_id, order_by=by_type) == ["beta", "alpha", "epsilon", "gamma", "Delta"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"filter_string": "name = beta"}, InvalidFilter, "Expected a quoted string"),
        ({"filter_string": "color = 'red'"}, InvalidFilter, "Invalid attribute key 'color'"),
        ({"filter_string": "status = 'DONE'"}, InvalidFilter, "Invalid logged model status"),
        ({"filter_string": "metrics.acc LIKE '1'"}, InvalidFilter, "Invalid comparator"),
        ({"order_by": [{"field_name": "params.lr"}]}, InvalidParameterValue, "order by field"),
        ({"order_by": [{"ascending": True}]}, InvalidParameterValue, "needs a 'field_name'"),
        ({"max_results": -1}, InvalidParameterValue, "must be a positive integer"),
        ({"page_token": "%%%"}, InvalidParameterValue, "Invalid page token"),
    ],
)
def test_search_errors(
    store: SqlTrackingStore, exp_id: str, kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        store.search_logged_models([exp_id], **kwargs)


def test_search_pages(store: SqlTrackingStore, exp_id: str, catalog: dict[str, str]) -> None:
    order = [{"field_name": "name"}]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = store.search_logged_models(
            [exp_id], "params.lr LIKE '0.%'", max_results=2, order_by=order, page_token=token
        )
        pages += 1
        assert len(page) <= 2
        seen.extend(m.name for m in page)
        token = page.token
        if token is None:
            break
    assert pages == 3
    assert seen == ["Delta", "alpha", "beta", "epsilon", "gamma"]
    exact = store.search_logged_models([exp_id], max_results=5)
    assert (len(exact), exact.token) == (5, None)
    first = store.search_logged_models([exp_id], max_results=2)
    assert first.token is not None
    with pytest.raises(InvalidParameterValue, match="Filter string in the page token does not"):
        store.search_logged_models([exp_id], "name = 'x'", page_token=first.token)
    with pytest.raises(InvalidParameterValue, match="Experiment IDs in the page token do not"):
        store.search_logged_models(["0"], page_token=first.token)
    with pytest.raises(InvalidParameterValue, match="Order by in the page token does not"):
        store.search_logged_models([exp_id], order_by=order, page_token=first.token)


def test_search_default_page_size_is_50(store: SqlTrackingStore, exp_id: str) -> None:
    for i in range(51):
        store.create_logged_model(exp_id, f"m{i}")
    page = store.search_logged_models([exp_id])
    assert len(page) == 50
    assert page.token is not None
    rest = store.search_logged_models([exp_id], page_token=page.token)
    assert len(rest) == 1
    assert rest.token is None


@contextmanager
def counted_queries(store: SqlTrackingStore) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engines = {store.engine, read_engine(store.engine)}  # reads have their own on PostgreSQL
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def test_search_loads_a_page_in_a_fixed_number_of_queries(
    store: SqlTrackingStore, exp_id: str, run_id: str
) -> None:
    for i in range(12):
        model = store.create_logged_model(
            exp_id,
            f"m{i}",
            tags=[LoggedModelTag("t", "v")],
            params=[LoggedModelParameter("p", "1")],
        )
        store.log_batch(run_id, [Metric("acc", 0.5, 1, 0, None, model.model_id)])
    sizes = []
    for max_results in (2, 12):
        with counted_queries(store) as statements:
            page = store.search_logged_models([exp_id], max_results=max_results)
        assert all(m.tags == {"t": "v"} and m.params == {"p": "1"} for m in page)
        assert all(m.metrics and m.metrics[0].value == 0.5 for m in page)
        sizes.append(len(statements))
    assert sizes[0] == sizes[1] <= 4


def test_run_params_unaffected(store: SqlTrackingStore, run_id: str) -> None:
    """Model params live apart from run params: the same key may differ between them."""
    store.log_batch(run_id, params=[Param("lr", "0.1")])
    exp_id = store.get_run(run_id).info.experiment_id
    model = store.create_logged_model(exp_id, "m", params=[LoggedModelParameter("lr", "0.2")])
    assert store.get_run(run_id).data.params == {"lr": "0.1"}
    assert store.get_logged_model(model.model_id).params == {"lr": "0.2"}
