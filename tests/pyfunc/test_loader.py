"""load_model for every kind of python_function model, log_model through real tracking, and the
errors for models runyard cannot load."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from runyard import models, pyfunc, start_run
from runyard.errors import RunyardError
from runyard.models import Model
from runyard.models.download import download_model
from runyard.pyfunc import PythonModel
from runyard.pyfunc.loader import resolve_loader_module


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_model puts a model's code/ directory on sys.path; keep that to each test.
    monkeypatch.setattr(sys, "path", list(sys.path))


def write_loader(directory: Path, body: str) -> str:
    name = f"loader_{uuid.uuid4().hex[:10]}"
    (directory / f"{name}.py").write_text(body)
    return name


LOADER = """
from pathlib import Path


class _Model:
    def __init__(self, weights):
        self.weights = weights

    def predict(self, model_input, params=None):
        return model_input.sum(axis=1) * self.weights


def _load_pyfunc(data_path):
    return _Model(float(Path(data_path).read_text()))
"""


def test_loader_module_with_data_and_code(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    name = write_loader(src, LOADER)
    (tmp_path / "weights.txt").write_text("2.5")
    pyfunc.save_model(
        tmp_path / "m",
        loader_module=name,
        data_path=str(tmp_path / "weights.txt"),
        code_paths=[str(src / f"{name}.py")],
    )
    conf = Model.load(tmp_path / "m").flavors["python_function"]
    assert conf["loader_module"] == name
    assert conf["data"] == "data/weights.txt"
    assert conf["code"] == "code"
    assert (tmp_path / "m" / "code" / f"{name}.py").is_file()
    assert name not in sys.modules
    loaded = pyfunc.load_model(str(tmp_path / "m"))
    assert str(tmp_path / "m" / "code") in sys.path
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 0.0]})
    assert loaded.predict(frame).tolist() == [5.0, 5.0]
    with pytest.raises(RunyardError, match="Unable to retrieve base model object"):
        loaded.unwrap_python_model()


def test_model_without_pyfunc_flavor_names_its_flavors(tmp_path: Path) -> None:
    Model().add_flavor("sklearn", pickled_model="m.pkl").add_flavor("onnx", data="m").save(
        tmp_path / "MLmodel"
    )
    with pytest.raises(RunyardError) as info:
        pyfunc.load_model(tmp_path)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert info.value.message == (
        'Model does not have the "python_function" flavor; its flavors are: onnx, sklearn'
    )


def test_missing_flavor_dependency_names_the_package(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    name = write_loader(src, "import surely_missing_pkg_xyz\n\n" + LOADER)
    pyfunc.save_model(tmp_path / "m", loader_module=name, code_paths=[str(src / f"{name}.py")])
    with pytest.raises(RunyardError) as info:
        pyfunc.load_model(tmp_path / "m")
    assert "needs the 'surely_missing_pkg_xyz' package" in info.value.message
    assert "pip install surely_missing_pkg_xyz" in info.value.message

    pyfunc.save_model(tmp_path / "n", loader_module="no_such_loader_module_xyz")
    with pytest.raises(RunyardError, match="Cannot import the model's loader module"):
        pyfunc.load_model(tmp_path / "n")


def test_loader_module_names_are_mapped() -> None:
    assert resolve_loader_module("mlflow.sklearn") == "runyard.sklearn"
    assert resolve_loader_module("mlflow.pyfunc.model") == "runyard.pyfunc.model"
    assert resolve_loader_module("mlflowish.x") == "mlflowish.x"
    assert resolve_loader_module("my.loader") == "my.loader"


class PlusOne(PythonModel):
    def predict(self, context: object, model_input: pd.DataFrame, params: object = None) -> object:
        return model_input["a"] + 1


def test_log_model_load_by_uri_and_validate_serving_input(tracking_env: str) -> None:
    example = pd.DataFrame({"a": [1, 2]})
    with start_run() as run:
        info = pyfunc.log_model(
            name="plus",
            python_model=PlusOne(),
            input_example=example,
            registered_model_name="plus-one",
        )
    assert info.run_id == run.info.run_id
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.registered_model_version == "1"  # a string, as the MLflow client returns it
    assert info.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
    loaded = pyfunc.load_model(info.model_uri)
    assert loaded.model_id == info.model_id
    assert loaded.predict(pd.DataFrame({"a": [10]})).tolist() == [11]
    assert pyfunc.load_model("models:/plus-one/1").predict(example).tolist() == [2, 3]
    assert pyfunc.load_model(f"runs:/{run.info.run_id}/plus").predict(example).tolist() == [2, 3]

    payload = json.dumps({"dataframe_split": {"columns": ["a"], "data": [[5]]}})
    assert models.validate_serving_input(info.model_uri, payload).tolist() == [6]
    serving = loaded.metadata.get_serving_input(download_model(info.model_uri))
    assert serving is not None
    assert models.validate_serving_input(info.model_uri, serving).tolist() == [2, 3]
    with pytest.raises(RunyardError) as error:
        models.validate_serving_input(info.model_uri, {"instances": [{"b": 1}]})
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Model is missing inputs ['a']" in error.value.message
