"""``<flavor>.log_model`` (``runyard.models.logging``): logged models stored, linked to their run,
registered, and marked failed when saving fails; with real sklearn and pyfunc models."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import runyard as mlflow
import runyard.models.logging as model_logging
from runyard import Client
from runyard.entities import LoggedModelOutput, LoggedModelStatus
from runyard.errors import InvalidParameterValue
from runyard.models import Model
from runyard.models.logging import last_logged_model_id
from runyard.pyfunc import PythonModel


class Echo(PythonModel):
    """Returns its input."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


@pytest.fixture(scope="module")
def iris() -> tuple[LogisticRegression, np.ndarray]:
    """A small fitted classifier and its training features."""
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=200).fit(features, labels), features


@pytest.fixture(autouse=True)
def _isolated(tracking_env: str) -> Iterator[None]:
    """A fresh store, and no model remembered from another test."""

    def forget() -> None:
        model_logging._last.model_id = None
        model_logging._last_any.clear()

    forget()
    yield
    forget()


def test_log_model_in_a_run(iris: tuple[LogisticRegression, np.ndarray]) -> None:
    model, features = iris
    mlflow.set_experiment("exp1")
    with mlflow.start_run() as run:
        mlflow.log_params({"C": 0.5, "data": "v3"})
        info = mlflow.sklearn.log_model(
            model,
            name="clf",
            params={"C": 1.0},
            tags={"team": "risk"},
            model_type="classifier",
            step=3,
        )
    client = Client()
    logged = client.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.name == "clf"
    assert logged.source_run_id == run.info.run_id
    assert logged.experiment_id == run.info.experiment_id
    # The run's params come along; the ones given to log_model win.
    assert logged.params == {"C": "1.0", "data": "v3"}
    assert logged.tags["team"] == "risk"
    assert logged.model_type == "classifier"
    outputs = client.get_run(run.info.run_id).outputs
    assert outputs is not None
    assert outputs.model_outputs == [LoggedModelOutput(info.model_id, 3)]
    # what log_model returns
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.run_id == run.info.run_id
    assert info.name == "clf"
    assert info.registered_model_version is None
    assert set(info.flavors) == {"python_function", "sklearn"}
    # the stored MLmodel says where it came from, as MLflow 3 writes it
    location = logged.artifact_location
    assert {"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml"} <= set(
        os.listdir(location)
    )
    stored = Model.load(location)
    assert stored.artifact_path == location
    assert stored.run_id == run.info.run_id
    assert stored.model_id == info.model_id
    assert stored.model_uuid == info.model_id
    # and the stored model is the trained one
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert loaded.predict(features[:5]).tolist() == model.predict(features[:5]).tolist()
    assert last_logged_model_id() == info.model_id


def test_log_model_outside_a_run() -> None:
    exp = mlflow.set_experiment("no-run")
    info = mlflow.pyfunc.log_model(name="echo", python_model=Echo())
    logged = Client().get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.experiment_id == exp.experiment_id
    assert logged.source_run_id is None
    assert info.run_id is None
    assert mlflow.active_run() is None  # no run was started for it
    stored = Model.load(logged.artifact_location)
    assert stored.run_id is None
    assert stored.model_id == info.model_id
    frame = pd.DataFrame({"x": [1, 2]})
    assert mlflow.pyfunc.load_model(info.model_uri).predict(frame).equals(frame)


def test_log_model_with_registered_model_name(iris: tuple[LogisticRegression, Any]) -> None:
    model, _ = iris
    with mlflow.start_run() as run:
        first = mlflow.sklearn.log_model(model, name="clf", registered_model_name="iris")
        second = mlflow.sklearn.log_model(model, name="clf", registered_model_name="iris")
    assert str(first.registered_model_version) == "1"
    assert str(second.registered_model_version) == "2"
    client = Client()
    mv = client.get_model_version("iris", 1)
    assert mv.source == f"models:/{first.model_id}"
    assert mv.model_id == first.model_id
    assert mv.run_id == run.info.run_id
    assert client.get_model_version("iris", 2).model_id == second.model_id
    tag = client.get_logged_model(first.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tag) == [{"name": "iris", "version": "1"}]
    loaded = mlflow.sklearn.load_model("models:/iris/1")
    assert loaded.get_params() == model.get_params()


def test_failed_save_marks_the_model_failed(iris: tuple[LogisticRegression, Any]) -> None:
    model, _ = iris
    with mlflow.start_run() as run:
        before = mlflow.pyfunc.log_model(name="ok", python_model=Echo())
        with pytest.raises(InvalidParameterValue, match="serialization format"):
            mlflow.sklearn.log_model(model, name="broken", serialization_format="bogus")
    client = Client()
    broken = mlflow.search_logged_models(filter_string="name = 'broken'", output_format="list")
    assert len(broken) == 1
    assert broken[0].status == LoggedModelStatus.UPLOAD_FAILED
    assert broken[0].source_run_id == run.info.run_id
    assert not os.path.exists(os.path.join(broken[0].artifact_location, "MLmodel"))
    outputs = client.get_run(run.info.run_id).outputs
    assert outputs is not None
    # As MLflow 3: the run links the failed model too, and it is the last one logged.
    assert sorted(o.model_id for o in outputs.model_outputs) == sorted(
        [before.model_id, broken[0].model_id]
    )
    assert last_logged_model_id() == broken[0].model_id


def test_log_into_an_initialized_model() -> None:
    with mlflow.start_run():
        pending = mlflow.initialize_logged_model(name="planned")
        info = mlflow.pyfunc.log_model(
            name="planned", python_model=Echo(), model_id=pending.model_id
        )
    assert info.model_id == pending.model_id
    logged = mlflow.get_logged_model(pending.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert Model.load(logged.artifact_location).model_id == pending.model_id
    assert len(mlflow.search_logged_models(output_format="list")) == 1


def test_model_info_metrics_are_the_points_logged_with_the_model() -> None:
    with mlflow.start_run():
        pending = mlflow.initialize_logged_model(name="trained")
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, model_id=pending.model_id)
        mlflow.log_metric("unrelated", 1.0)
        val = mlflow.data.from_numpy(np.zeros((2, 2)), name="val")
        mlflow.log_metrics({"acc": 0.9}, model_id=pending.model_id, dataset=val)
        info = mlflow.pyfunc.log_model(
            name="trained", python_model=Echo(), model_id=pending.model_id
        )
    assert info.metrics is not None
    assert sorted((m.key, m.step, m.value) for m in info.metrics) == [
        ("acc", 0, 0.9),
        ("loss", 0, 1.0),
        ("loss", 1, 0.5),
        ("loss", 2, pytest.approx(1 / 3)),
    ]
    assert {m.model_id for m in info.metrics} == {pending.model_id}
    acc = next(m for m in info.metrics if m.key == "acc")
    assert (acc.dataset_name, acc.dataset_digest) == ("val", val.digest)


def test_last_logged_model_id_follows_each_log() -> None:
    assert last_logged_model_id() is None
    first = mlflow.pyfunc.log_model(name="a", python_model=Echo())
    assert last_logged_model_id() == first.model_id
    second = mlflow.pyfunc.log_model(name="b", python_model=Echo())
    assert last_logged_model_id() == second.model_id
    last = mlflow.last_logged_model()
    assert last is not None
    assert last.name == "b"


def test_artifact_path_is_the_old_name_of_name() -> None:
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(artifact_path="legacy", python_model=Echo())
    assert mlflow.get_logged_model(info.model_id).name == "legacy"
    local = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/legacy")
    assert Model.load(local).model_id == info.model_id
