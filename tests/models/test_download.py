"""Model URIs to files (``runyard.models.download``): every ``models:/`` form, ``runs:/``,
``file:`` and plain paths, resolved against a real SQLite store and real logged models."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import runyard as mlflow
from runyard import Client
from runyard.models import Model
from runyard.models.download import (
    ModelsUri,
    download_model,
    parse_models_uri,
    resolve_model_uri,
    resolve_registry_source,
)
from runyard.pyfunc import PythonModel
from tests.tracking.helpers import INVALID, MISSING, expect_error


class Echo(PythonModel):
    """Returns its input."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


@dataclass
class Registry:
    """Three logged models of one run, registered as versions 1-3 of ``echo``:
    v1 in Staging with alias ``champion``, v2 in Production, v3 in None."""

    client: Client
    run_id: str
    model_ids: list[str]
    locations: list[str]


@pytest.fixture
def client(tracking_env: str) -> Client:
    return Client()


@pytest.fixture
def registry(client: Client) -> Registry:
    with mlflow.start_run() as run:
        infos = [mlflow.pyfunc.log_model(name="echo", python_model=Echo()) for _ in range(3)]
    client.create_registered_model("echo")
    for info in infos:
        mlflow.register_model(f"models:/{info.model_id}", "echo")
    client.transition_model_version_stage("echo", 1, "Staging")
    client.transition_model_version_stage("echo", 2, "Production")
    client.set_registered_model_alias("echo", "champion", 1)
    ids = [info.model_id for info in infos]
    return Registry(
        client,
        run.info.run_id,
        ids,
        [client.get_logged_model(i).artifact_location for i in ids],
    )


# -- parse_models_uri -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/fraud/1", ModelsUri(name="fraud", version="1")),
        ("models:///fraud/12", ModelsUri(name="fraud", version="12")),
        ("models:/fraud/Production", ModelsUri(name="fraud", stage="Production")),
        ("models:/fraud/staging", ModelsUri(name="fraud", stage="staging")),
        ("models:/fraud/latest", ModelsUri(name="fraud", latest=True)),
        ("models:/fraud/LATEST", ModelsUri(name="fraud", latest=True)),
        ("models:/fraud@champion", ModelsUri(name="fraud", alias="champion")),
        ("models:/team@fraud@champion", ModelsUri(name="team@fraud", alias="champion")),
        ("models:/m-0123abcd", ModelsUri(model_id="m-0123abcd")),
    ],
)
def test_parse_models_uri(uri: str, expected: ModelsUri) -> None:
    assert parse_models_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "models:/",
        "models:",
        "models:/fraud/1/extra",
        "models:/a/b/c/d",
        "models:/fraud/1/",
        "models:/fraud/",
        "models:/fraud//1",
        "models://",
        "models:/@champion",
        "models:/fraud@",
        "runs:/0123/model",
        "/some/path",
    ],
)
def test_parse_invalid_models_uri(uri: str) -> None:
    expect_error(INVALID, parse_models_uri, uri)


# -- local paths ----------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A pyfunc model saved to ``tmp_path/saved``."""
    path = tmp_path / "saved"
    mlflow.pyfunc.save_model(path, python_model=Echo())
    return path


def test_local_model_is_used_in_place(tracking_env: str, saved: Path, tmp_path: Path) -> None:
    before = sorted(os.listdir(tmp_path))
    assert resolve_model_uri(str(saved)) == str(saved)
    assert download_model(str(saved)) == str(saved)
    assert download_model(f"file://{saved}") == str(saved)
    assert download_model("saved") == str(saved)  # relative to the working directory
    assert sorted(os.listdir(tmp_path)) == before  # nothing copied


def test_local_model_is_copied_to_dst_path(tracking_env: str, saved: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    local = Path(download_model(str(saved), dst_path=str(dst)))
    assert local != saved
    assert local.is_relative_to(dst)
    assert sorted(os.listdir(local)) == sorted(os.listdir(saved))
    assert (local / "MLmodel").read_text() == (saved / "MLmodel").read_text()


def test_missing_local_model(tracking_env: str, tmp_path: Path) -> None:
    error = expect_error(MISSING, download_model, str(tmp_path / "nothing"))
    assert "does not exist" in error.message
    expect_error(MISSING, download_model, f"file://{tmp_path}/nothing")


# -- runs:/ ---------------------------------------------------------------------------------------
def test_runs_uri_finds_the_logged_model(registry: Registry) -> None:
    # three models named "echo" in the run: the newest is the one runs:/<run>/echo names
    uri = f"runs:/{registry.run_id}/echo"
    assert resolve_model_uri(uri) == registry.locations[2]
    assert download_model(uri) == registry.locations[2]  # local store: used in place
    assert Model.load(download_model(uri)).model_id == registry.model_ids[2]


def test_runs_uri_with_mlmodel_in_run_artifacts(client: Client, saved: Path) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_artifacts(run_id, str(saved), "packaged")
    root = client.get_run(run_id).info.artifact_uri
    assert resolve_model_uri(f"runs:/{run_id}/packaged") == f"{root}/packaged"
    assert resolve_model_uri(f"runs:/{run_id}/packaged/") == f"{root}/packaged"
    assert resolve_model_uri(f"runs:/{run_id}") == root
    local = Path(download_model(f"runs:/{run_id}/packaged"))
    assert (local / "MLmodel").is_file()


def test_runs_uri_errors(client: Client) -> None:
    run_id = client.create_run("0").info.run_id
    expect_error(MISSING, download_model, f"runs:/{run_id}/nothing")
    expect_error(MISSING, resolve_model_uri, "runs:/0123456789abcdef0123456789abcdef/model")
    expect_error(INVALID, resolve_model_uri, "runs:/")


# -- models:/ -------------------------------------------------------------------------------------
def test_models_uri_by_logged_model_id(registry: Registry) -> None:
    for model_id, location in zip(registry.model_ids, registry.locations, strict=True):
        assert resolve_model_uri(f"models:/{model_id}") == location
    expect_error(MISSING, resolve_model_uri, "models:/m-0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize(
    ("uri", "index"),
    [
        ("models:/echo/1", 0),
        ("models:/echo/2", 1),
        ("models:/echo/3", 2),
        ("models:/echo/Staging", 0),
        ("models:/echo/staging", 0),
        ("models:/echo/PRODUCTION", 1),
        ("models:/echo/None", 2),
        ("models:/echo/latest", 2),
        ("models:/echo@champion", 0),
    ],
)
def test_models_uri_by_registry_reference(registry: Registry, uri: str, index: int) -> None:
    assert resolve_model_uri(uri) == registry.locations[index]
    assert download_model(uri) == registry.locations[index]


def test_latest_is_the_highest_version_in_any_stage(registry: Registry) -> None:
    registry.client.transition_model_version_stage("echo", 3, "Archived")
    assert resolve_model_uri("models:/echo/latest") == registry.locations[2]
    registry.client.delete_model_version("echo", 3)
    assert resolve_model_uri("models:/echo/latest") == registry.locations[1]


@pytest.mark.parametrize(
    ("uri", "code", "fragment"),
    [
        ("models:/echo@nope", INVALID, "alias nope not found"),
        ("models:/nope@champion", MISSING, "nope"),
        ("models:/nope/1", MISSING, "nope"),
        ("models:/echo/9", MISSING, "9"),
        ("models:/nope/latest", MISSING, "nope"),
        ("models:/echo/Archived", MISSING, "stage 'Archived'"),
        ("models:/echo/Live", INVALID, "Invalid Model Version stage: Live"),
        ("models:/echo/1/x", INVALID, "models:/echo/1/x"),
    ],
)
def test_unknown_registry_references(
    registry: Registry, uri: str, code: str, fragment: str
) -> None:
    error = expect_error(code, download_model, uri)
    assert fragment in error.message


def test_download_registered_model_to_dst_path(registry: Registry, tmp_path: Path) -> None:
    local = Path(download_model("models:/echo@champion", dst_path=str(tmp_path / "dl")))
    assert local.is_relative_to(tmp_path / "dl")
    assert Model.load(str(local)).model_id == registry.model_ids[0]
    assert sorted(os.listdir(local)) == sorted(os.listdir(registry.locations[0]))


def test_version_with_a_runs_source_is_followed(registry: Registry) -> None:
    client = registry.client
    client.create_registered_model("plain")
    client.create_model_version("plain", f"runs:/{registry.run_id}/echo", registry.run_id)
    assert resolve_model_uri("models:/plain/1") == registry.locations[2]


def test_loaded_registered_model_predicts(registry: Registry) -> None:
    frame = pd.DataFrame({"x": [1, 2]})
    loaded = mlflow.pyfunc.load_model("models:/echo/Production")
    assert loaded.predict(frame).equals(frame)


def test_resolve_against_another_store(registry: Registry, tmp_path: Path) -> None:
    other_uri = f"sqlite:///{tmp_path}/other.db"
    other = Client(other_uri)
    other.create_registered_model("elsewhere")
    other.create_model_version("elsewhere", registry.locations[1])
    assert (
        resolve_model_uri("models:/elsewhere/1", tracking_uri=other_uri) == (registry.locations[1])
    )
    expect_error(MISSING, resolve_model_uri, "models:/elsewhere/1")  # not in the default store


# -- resolve_registry_source ----------------------------------------------------------------------
def test_registry_source_of_each_uri_form(registry: Registry, saved: Path) -> None:
    client, run_id = registry.client, registry.run_id
    first = registry.model_ids[0]
    assert resolve_registry_source(client, f"models:/{first}") == (f"models:/{first}", run_id)
    assert resolve_registry_source(client, "models:/echo/2") == (registry.locations[1], run_id)
    assert resolve_registry_source(client, "models:/echo@champion") == (
        registry.locations[0],
        run_id,
    )
    assert resolve_registry_source(client, f"runs:/{run_id}/echo") == (
        f"models:/{registry.model_ids[2]}",
        run_id,
    )
    assert resolve_registry_source(client, str(saved)) == (str(saved), None)


def test_registry_source_of_run_artifacts_with_mlmodel(client: Client, saved: Path) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_artifacts(run_id, str(saved), "packaged")
    source, source_run = resolve_registry_source(client, f"runs:/{run_id}/packaged")
    assert source_run == run_id
    assert resolve_model_uri(source) == f"{client.get_run(run_id).info.artifact_uri}/packaged"


def test_registry_source_of_nothing_is_an_error(client: Client) -> None:
    run_id = client.create_run("0").info.run_id
    # as in MLflow: a run path with neither an MLmodel nor a logged model of that name
    error = expect_error(MISSING, resolve_registry_source, client, f"runs:/{run_id}/nothing")
    assert "nothing" in error.message
    expect_error(MISSING, mlflow.register_model, f"runs:/{run_id}/nothing", "ghost")
    assert client.search_model_versions("name = 'ghost'") == []


def test_registry_source_when_artifact_root_has_a_models_folder(
    client: Client, tmp_path: Path
) -> None:
    """An artifact root under a directory named ``models`` must not hide the logged model."""
    exp = client.create_experiment("nested", artifact_location=str(tmp_path / "models" / "exp"))
    with mlflow.start_run(experiment_id=exp) as run:
        info = mlflow.pyfunc.log_model(name="echo", python_model=Echo())
    uri = f"runs:/{run.info.run_id}/echo"
    assert resolve_registry_source(client, uri) == (f"models:/{info.model_id}", run.info.run_id)
    mv = mlflow.register_model(uri, "nested")
    assert mv.model_id == info.model_id
    assert mv.source == f"models:/{info.model_id}"
    assert "mlflow.modelVersions" in client.get_logged_model(info.model_id).tags
