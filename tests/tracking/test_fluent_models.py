"""The fluent registry and logged-model functions (``runyard.register_model``,
``search_registered_models``, ``last_logged_model``, ...) against a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import runyard as mlflow
import runyard.models.logging as model_logging
import runyard.tracking.fluent_models as fluent_models
from runyard import Client
from runyard.entities import LoggedModel, LoggedModelStatus
from runyard.pyfunc import PythonModel
from tests.tracking.helpers import INVALID, MISSING, expect_error


class Echo(PythonModel):
    """The smallest model there is: returns its input."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


@pytest.fixture(autouse=True)
def _no_last_logged_model() -> Iterator[None]:
    """``last_logged_model`` is process state: start and end each test without one."""

    def forget() -> None:
        model_logging._last.model_id = None
        model_logging._last_any.clear()

    forget()
    yield
    forget()


@pytest.fixture
def client(tracking_env: str) -> Client:
    return Client()


def _logged(client: Client, name: str = "model", run_id: str | None = None) -> LoggedModel:
    """A READY logged model without files (enough for the registry)."""
    model = client.create_logged_model("0", name, run_id)
    return client.finalize_logged_model(model.model_id, "READY")


# -- register_model -------------------------------------------------------------------------------
def test_register_model_from_logged_model(client: Client) -> None:
    run_id = client.create_run("0").info.run_id
    model = _logged(client, run_id=run_id)
    mv = mlflow.register_model(f"models:/{model.model_id}", "fraud")
    assert (mv.name, mv.version, mv.status) == ("fraud", "1", "READY")
    assert mv.source == f"models:/{model.model_id}"
    assert mv.model_id == model.model_id
    assert mv.run_id == run_id
    assert client.get_model_version_download_uri("fraud", 1) == model.artifact_location
    tag = client.get_logged_model(model.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tag) == [{"name": "fraud", "version": "1"}]
    # a second registration: the model exists now, the tag lists both
    again = mlflow.register_model(f"models:/{model.model_id}", "fraud", tags={"gate": "ok"})
    assert again.version == "2"
    assert again.tags == {"gate": "ok"}
    tag = client.get_logged_model(model.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tag) == [
        {"name": "fraud", "version": "1"},
        {"name": "fraud", "version": "2"},
    ]


def test_register_model_from_a_run_name(client: Client) -> None:
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="echo", python_model=Echo())
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/echo", "echo-model")
    assert mv.source == f"models:/{info.model_id}"
    assert mv.model_id == info.model_id
    assert mv.run_id == run.info.run_id
    tag = client.get_logged_model(info.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tag) == [{"name": "echo-model", "version": "1"}]


def test_register_model_errors(client: Client) -> None:
    expect_error(MISSING, mlflow.register_model, "models:/m-0123456789abcdef0123456789abcdef", "x")
    expect_error(INVALID, mlflow.register_model, "models:/a/b/c", "x")
    expect_error(INVALID, mlflow.register_model, f"models:/{_logged(client).model_id}", "")


# -- search_registered_models / search_model_versions ---------------------------------------------
def test_search_registered_models_leaves_out_prompts(client: Client) -> None:
    client.create_registered_model("fraud")
    client.create_registered_model("churn", tags={"mlflow.prompt.is_prompt": "false"})
    client.create_registered_model("greeting", tags={"mlflow.prompt.is_prompt": "true"})
    assert [m.name for m in mlflow.search_registered_models()] == ["churn", "fraud"]
    assert [m.name for m in mlflow.search_registered_models(filter_string="name LIKE '%r%'")] == [
        "churn",
        "fraud",
    ]
    assert mlflow.search_registered_models(filter_string="name = 'greeting'") == []
    # the prompt is still there for a search that asks for prompts
    asked = client.search_registered_models("tags.`mlflow.prompt.is_prompt` = 'true'")
    assert [m.name for m in asked] == ["greeting"]


def test_search_registered_models_all_pages_order_and_limit(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"model-{i:02d}" for i in range(7)]
    for name in names:
        client.create_registered_model(name)
    client.create_registered_model("prompt", tags={"mlflow.prompt.is_prompt": "true"})
    monkeypatch.setattr(fluent_models, "_REGISTERED_MODELS_PAGE", 3)
    found = mlflow.search_registered_models()
    assert [m.name for m in found] == names
    assert [m.name for m in mlflow.search_registered_models(order_by=["name DESC"])] == (
        names[::-1]
    )
    assert [m.name for m in mlflow.search_registered_models(max_results=4)] == names[:4]
    assert isinstance(found, list)


def test_search_registered_models_default_page_size(client: Client) -> None:
    names = [f"m{i:03d}" for i in range(105)]
    for name in names:
        client.create_registered_model(name)
    assert [m.name for m in mlflow.search_registered_models()] == names


def test_search_model_versions_all_pages(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.create_registered_model("fraud")
    client.create_registered_model("churn")
    for _ in range(5):
        client.create_model_version("fraud", "/models/fraud")
    client.create_model_version("churn", "/models/churn")
    monkeypatch.setattr(fluent_models, "_MODEL_VERSIONS_PAGE", 2)
    found = mlflow.search_model_versions(
        filter_string="name = 'fraud'", order_by=["version_number ASC"]
    )
    assert [v.version for v in found] == ["1", "2", "3", "4", "5"]
    assert len(mlflow.search_model_versions()) == 6
    limited = mlflow.search_model_versions(
        max_results=3, filter_string="name = 'fraud'", order_by=["version_number DESC"]
    )
    assert [v.version for v in limited] == ["5", "4", "3"]
    assert mlflow.search_model_versions(filter_string="name = 'nope'") == []


# -- logged models --------------------------------------------------------------------------------
def test_initialize_logged_model_in_active_run() -> None:
    exp = mlflow.set_experiment("exp1")
    with mlflow.start_run() as run:
        model = mlflow.initialize_logged_model(
            name="net", tags={"k": 1}, params={"lr": 0.1}, model_type="clf"
        )
    assert model.status == LoggedModelStatus.PENDING
    assert model.experiment_id == exp.experiment_id
    assert model.source_run_id == run.info.run_id
    assert model.tags == {"k": "1"}
    assert model.params == {"lr": "0.1"}
    assert model.model_type == "clf"
    # as in MLflow, the new model is the last logged one
    last = mlflow.last_logged_model()
    assert last is not None
    assert last.model_id == model.model_id


def test_initialize_logged_model_outside_a_run(client: Client) -> None:
    other = client.create_experiment("other")
    mlflow.set_experiment("exp1")
    model = mlflow.initialize_logged_model(name="a")
    assert model.source_run_id is None
    assert model.experiment_id == mlflow.get_experiment_by_name("exp1").experiment_id  # type: ignore[union-attr]
    run_id = client.create_run(other).info.run_id
    explicit = mlflow.initialize_logged_model(source_run_id=run_id, experiment_id=other)
    assert (explicit.experiment_id, explicit.source_run_id) == (other, run_id)
    assert explicit.name  # a generated name


def test_finalize_logged_model() -> None:
    model = mlflow.initialize_logged_model(name="a")
    ready = mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert ready.status == LoggedModelStatus.READY
    assert mlflow.get_logged_model(model.model_id).status == LoggedModelStatus.READY
    failed = mlflow.initialize_logged_model(name="b")
    assert mlflow.finalize_logged_model(failed.model_id, "FAILED").status == "FAILED"
    expect_error(
        MISSING, mlflow.finalize_logged_model, "m-0123456789abcdef0123456789abcdef", "READY"
    )


def test_get_and_last_logged_model() -> None:
    assert mlflow.last_logged_model() is None
    first = mlflow.pyfunc.log_model(name="first", python_model=Echo())
    second = mlflow.pyfunc.log_model(name="second", python_model=Echo())
    last = mlflow.last_logged_model()
    assert last is not None
    assert (last.model_id, last.name) == (second.model_id, "second")
    got = mlflow.get_logged_model(first.model_id)
    assert (got.name, got.status) == ("first", LoggedModelStatus.READY)
    expect_error(MISSING, mlflow.get_logged_model, "m-0123456789abcdef0123456789abcdef")


def test_logged_model_tags() -> None:
    model = mlflow.initialize_logged_model(name="a")
    mlflow.set_logged_model_tags(model.model_id, {"owner": "ana", "n": 2})
    mlflow.set_logged_model_tags(model.model_id, {"owner": "bo"})
    assert mlflow.get_logged_model(model.model_id).tags == {"owner": "bo", "n": "2"}
    mlflow.delete_logged_model_tag(model.model_id, "owner")
    assert mlflow.get_logged_model(model.model_id).tags == {"n": "2"}


def test_log_model_params_explicit_and_default() -> None:
    expect_error(INVALID, mlflow.log_model_params, {"lr": 0.1})  # nothing logged yet
    first = mlflow.initialize_logged_model(name="a")
    second = mlflow.initialize_logged_model(name="b")
    mlflow.log_model_params({"lr": 0.1, "depth": 3}, model_id=first.model_id)
    mlflow.log_model_params({"alpha": "x"})  # the last logged model
    assert mlflow.get_logged_model(first.model_id).params == {"lr": "0.1", "depth": "3"}
    assert mlflow.get_logged_model(second.model_id).params == {"alpha": "x"}


def test_search_logged_models_pandas_and_list(client: Client) -> None:
    mlflow.set_experiment("exp1")
    with mlflow.start_run() as run:
        a = mlflow.initialize_logged_model(name="a", tags={"k": "v"}, params={"p": 1})
        b = mlflow.initialize_logged_model(name="b", model_type="clf")
    mlflow.finalize_logged_model(b.model_id, "READY")
    client.create_logged_model("0", "elsewhere")  # another experiment: not in the default search
    # newest first; two models made in the same millisecond come in model id order
    newest_first = sorted([a, b], key=lambda m: (-m.creation_timestamp, m.model_id))
    listed = mlflow.search_logged_models(output_format="list")
    assert [m.model_id for m in listed] == [m.model_id for m in newest_first]
    assert all(isinstance(m, LoggedModel) for m in listed)
    frame = mlflow.search_logged_models()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["model_id"]) == [m.model_id for m in newest_first]
    rows = {row["name"]: row for row in frame.to_dict("records")}
    assert sorted(rows) == ["a", "b"]
    assert (rows["a"]["status"], rows["b"]["status"]) == ("PENDING", "READY")
    assert rows["a"]["source_run_id"] == rows["b"]["source_run_id"] == run.info.run_id
    assert rows["a"]["experiment_id"] == a.experiment_id
    assert rows["a"]["artifact_location"] == a.artifact_location
    assert (rows["a"]["tags"], rows["a"]["params"]) == ({"k": "v"}, {"p": "1"})
    assert pd.isna(rows["a"]["model_type"])
    assert rows["b"]["model_type"] == "clf"
    ready = mlflow.search_logged_models(filter_string="status = 'READY'", output_format="list")
    assert [m.model_id for m in ready] == [b.model_id]
    everywhere = mlflow.search_logged_models(experiment_ids=["0", a.experiment_id])
    assert sorted(everywhere["name"]) == ["a", "b", "elsewhere"]
    expect_error(INVALID, mlflow.search_logged_models, output_format="json")


def test_search_logged_models_all_pages_and_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    created = [mlflow.initialize_logged_model(name=f"m{i}").model_id for i in range(5)]
    monkeypatch.setattr(fluent_models, "_LOGGED_MODELS_PAGE", 2)
    ordered = [{"field_name": "creation_time", "ascending": True}]
    found = [
        m.model_id for m in mlflow.search_logged_models(order_by=ordered, output_format="list")
    ]
    # every model once across the pages (models made in the same millisecond tie on time)
    assert sorted(found) == sorted(created)
    limited = mlflow.search_logged_models(max_results=3, order_by=ordered, output_format="list")
    assert [m.model_id for m in limited] == found[:3]
    assert mlflow.search_logged_models(filter_string="name = 'none'").empty
