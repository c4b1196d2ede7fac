"""The cheat sheet's model and registry snippets (§4, §5, §8, §9, §11, §15), with ``mlflow``
replaced by ``runyard``, against a live ``runyard server``: log, register, transition, load by
stage, the REST register-model call, download a run's model, and the promotion script."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import runyard as mlflow
from runyard.tracking import MlflowClient
from tests.live_server import server_uri, tracking_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


class AddN(mlflow.pyfunc.PythonModel):
    def __init__(self, n: float) -> None:
        self.n = n

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input + self.n


@pytest.fixture
def data() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0)
    return X_train, X_test, y_train


def test_sections_4_5_and_9(server_uri: str, data: tuple, tmp_path: Path) -> None:  # noqa: F811
    X_train, X_test, y_train = data
    mlflow.set_experiment("cheatsheet-models")

    # §4: log a model programmatically, registering it.
    model = RandomForestClassifier(n_estimators=5, random_state=0)
    model.fit(X_train, y_train)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, "rf-model", registered_model_name="RF-Model")
        # §5: signature & input example
        from runyard.models.signature import infer_signature

        signature = infer_signature(X_train, model.predict(X_train))
        mlflow.sklearn.log_model(model, "model", signature=signature, input_example=X_train[:5])
        # §5: save + log + load a pyfunc model
        my_pyfunc_model = AddN(1.0)
        mlflow.pyfunc.save_model(path=str(tmp_path / "pyfunc_model"), python_model=my_pyfunc_model)
        mlflow.pyfunc.log_model("pyfunc_model", python_model=my_pyfunc_model)
    run_id = run.info.run_id
    loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/pyfunc_model")
    frame = pd.DataFrame(np.ones((2, 2)))
    assert loaded.predict(frame).values.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    saved = mlflow.pyfunc.load_model(str(tmp_path / "pyfunc_model"))
    assert saved.predict(frame).values.tolist() == [[2.0, 2.0], [2.0, 2.0]]

    # §9: register a model (Python) from a runs:/ source, transition stages.
    client = MlflowClient()
    client.create_registered_model("MyModel")
    mv = client.create_model_version("MyModel", f"runs:/{run_id}/model", run_id)
    assert mv.version == "1"
    client.transition_model_version_stage(
        name="MyModel", version=1, stage="Staging", archive_existing_versions=True
    )
    client.transition_model_version_stage("MyModel", 1, "Production")
    latest = client.get_latest_versions("MyModel", stages=["Staging", "Production"])
    assert [(v.version, v.current_stage) for v in latest] == [("1", "Production")]
    assert [v.version for v in client.search_model_versions("name='MyModel'")] == ["1"]
    client.update_model_version("MyModel", 1, description="rf on iris")

    # §15: load the registered production model for inference.
    prod = mlflow.pyfunc.load_model("models:/MyModel/Production")
    expected = model.predict(X_test).tolist()
    assert prod.predict(X_test).tolist() == expected
    assert mlflow.pyfunc.load_model("models:/RF-Model/1").predict(X_test).tolist() == expected

    # §13: download a run's model (MLflow 3 keeps it as a logged model; the name still works).
    local = mlflow.artifacts.download_artifacts(run_id=run_id, path="model", dst_path=str(tmp_path))
    assert (Path(local) / "MLmodel").is_file()
    assert (Path(local) / "input_example.json").is_file()

    # §8: the REST register-model call creates a new version of an existing model.
    reply = httpx.post(
        f"{server_uri}/api/2.0/mlflow/registry/register-model",
        json={"name": "MyModel", "source": f"runs:/{run_id}/model"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["model_version"]["version"] == "2"

    # §11: the promotion script.
    version = client.create_model_version("MyModel", f"runs:/{run_id}/model", run_id).version
    client.transition_model_version_stage("MyModel", version, "Staging")
    assert client.get_model_version("MyModel", version).current_stage == "Staging"

    # §9: delete a version, then the model.
    client.delete_model_version("MyModel", 1)
    assert [v.version for v in client.search_model_versions("name='MyModel'")] == ["3", "2"]
    client.delete_registered_model("MyModel")
    assert mlflow.search_registered_models(filter_string="name = 'MyModel'") == []
