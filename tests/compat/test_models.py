"""Models and the registry through the official client: log a model with
``registered_model_name``, load it by version, stage, alias and ``runs:/``, search the registry
(with the client's prompt-tag filter), register a run's model — and the files interchange both
ways: a model logged by runyard's client loads in MLflow, one logged by MLflow loads in runyard.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import runyard
from runyard.tracking.registry import release
from tests.compat.conftest import ClientResult, CompatServer, RunClient
from tests.conftest import reset_fluent_state

pytestmark = pytest.mark.slow

SCRIPT = """
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

P = PARAMS["prefix"]
NAME = f"{P}-iris"
X, y = load_iris(return_X_y=True, as_frame=True)
mlflow.set_experiment(f"{P}-models")

with section("log") as out:
    model = LogisticRegression(max_iter=300).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", float(model.score(X, y)))
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X.head(3), registered_model_name=NAME
        )
    out["run_id"] = run.info.run_id
    out["model_id"] = info.model_id
    out["model_uri"] = info.model_uri
    out["version"] = info.registered_model_version
    out["expected"] = model.predict(X.head(10)).tolist()
    out["outputs"] = [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs]

with section("load") as out:
    rid = RESULT["log"]["run_id"]
    client.set_registered_model_alias(NAME, "champion", 1)
    client.transition_model_version_stage(NAME, 1, "Staging")
    for uri in [
        f"models:/{NAME}/1",
        f"models:/{NAME}@champion",
        f"models:/{NAME}/Staging",
        f"models:/{NAME}/latest",
        f"runs:/{rid}/model",
        RESULT["log"]["model_uri"],
    ]:
        out[uri] = mlflow.pyfunc.load_model(uri).predict(X.head(10)).tolist()

with section("registry") as out:
    rm = client.get_registered_model(NAME)
    out["aliases"] = rm.aliases
    out["latest"] = [[v.version, v.current_stage] for v in rm.latest_versions]
    out["fluent_search"] = [m.name for m in mlflow.search_registered_models() if m.name == NAME]
    found = mlflow.search_model_versions(filter_string=f"name='{NAME}'")
    out["versions"] = [[v.version, v.run_id, v.source] for v in found]
    out["by_alias"] = client.get_model_version_by_alias(NAME, "champion").version
    out["download_uri"] = client.get_model_version_download_uri(NAME, 1)
    registered = mlflow.register_model(f"runs:/{RESULT['log']['run_id']}/model", f"{NAME}-2")
    out["register_run_model"] = [registered.name, registered.version, registered.source]
    out["unknown_alias"] = error_of(client.get_model_version_by_alias, NAME, "nope")
    out["bad_stage"] = error_of(client.transition_model_version_stage, NAME, 1, "Bogus")
    out["unknown_model"] = error_of(client.get_registered_model, f"{NAME}-missing")

with section("load_runyard") as out:
    # A model runyard's client logged and registered through the same server.
    out["predictions"] = mlflow.pyfunc.load_model(
        f"models:/{PARAMS['runyard_model']}/1"
    ).predict(X.head(10)).tolist()
"""


@pytest.fixture(scope="module")
def runyard_logged(compat_server: CompatServer) -> Iterator[dict[str, Any]]:
    """runyard's client logs and registers an sklearn model on the server under test."""
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    prefix = f"models-{uuid.uuid4().hex[:8]}"
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    runyard.set_tracking_uri(compat_server.url)
    try:
        runyard.set_experiment(f"{prefix}-runyard")
        with runyard.start_run():
            runyard.sklearn.log_model(
                model, name="tree", input_example=X.head(2), registered_model_name=f"{prefix}-tree"
            )
        yield {
            "prefix": prefix,
            "name": f"{prefix}-tree",
            "expected": model.predict(X.head(10)).tolist(),
        }
    finally:
        release(compat_server.url)
        reset_fluent_state()


@pytest.fixture(scope="module")
def result(run_client: RunClient, runyard_logged: dict[str, Any]) -> ClientResult:
    return run_client(
        SCRIPT, {"prefix": runyard_logged["prefix"], "runyard_model": runyard_logged["name"]}
    )


def test_log_model_registers_a_version(result: ClientResult) -> None:
    log = result["log"]
    assert log["version"] in (1, "1")  # MLflow 3.17 returns the string
    assert log["model_id"].startswith("m-")
    assert log["model_uri"] == f"models:/{log['model_id']}"
    assert log["outputs"] == [log["model_id"]]


def test_every_model_uri_form_loads(result: ClientResult) -> None:
    loads = result["load"]
    expected = result["log"]["expected"]
    assert len(loads) == 6
    for uri, predictions in loads.items():
        assert predictions == expected, uri


def test_registry_reads(result: ClientResult) -> None:
    reg = result["registry"]
    assert reg["aliases"] == {"champion": "1"}
    assert reg["latest"] == [["1", "Staging"]]
    assert len(reg["fluent_search"]) == 1
    assert reg["versions"] == [
        ["1", result["log"]["run_id"], f"models:/{result['log']['model_id']}"]
    ]
    assert reg["by_alias"] == "1"
    assert reg["download_uri"].endswith(f"/models/{result['log']['model_id']}/artifacts")
    assert reg["register_run_model"][1] == "1"
    assert reg["register_run_model"][2] == f"models:/{result['log']['model_id']}"


def test_registry_errors(result: ClientResult, assert_error: Any) -> None:
    reg = result["registry"]
    assert_error(reg["unknown_alias"], "INVALID_PARAMETER_VALUE", 400, "alias nope not found")
    assert_error(reg["bad_stage"], "INVALID_PARAMETER_VALUE", 400, "Invalid Model Version stage")
    assert_error(reg["unknown_model"], "RESOURCE_DOES_NOT_EXIST", 404)


def test_mlflow_loads_a_model_runyard_logged(
    result: ClientResult, runyard_logged: dict[str, Any]
) -> None:
    assert result["load_runyard"]["predictions"] == runyard_logged["expected"]


def test_runyard_loads_a_model_mlflow_logged(
    result: ClientResult, compat_server: CompatServer
) -> None:
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    name = f"{result['log']['model_uri']}"
    runyard.set_tracking_uri(compat_server.url)
    try:
        registered = result["registry"]["register_run_model"][0]
        for uri in (name, f"models:/{registered}/1", f"runs:/{result['log']['run_id']}/model"):
            model = runyard.pyfunc.load_model(uri)
            assert np.asarray(model.predict(X.head(10))).tolist() == result["log"]["expected"], uri
        assert (
            runyard.sklearn.load_model(name).predict(X.head(10)).tolist()
            == (result["log"]["expected"])
        )
    finally:
        release(compat_server.url)
        reset_fluent_state()
