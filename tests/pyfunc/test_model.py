"""Custom Python models: save → load → predict, with artifacts, context, config and params."""

from __future__ import annotations

import json
import logging
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from runyard import pyfunc
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.models import Model, ModelSignature, infer_signature
from runyard.models.signature import _TypeHints
from runyard.pyfunc import PythonModel, PythonModelContext
from runyard.pyfunc.model import _unpickle
from runyard.version import __version__

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0]})


class Scaler(PythonModel):
    """Multiplies by a factor read from an artifact file, plus an offset from the model config."""

    def load_context(self, context: PythonModelContext) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())
        self.offset = (context.model_config or {}).get("offset", 0.0)
        self.lookup = json.loads((Path(context.artifacts["tables"]) / "lookup.json").read_text())

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        power = (params or {}).get("power", 1)
        assert context.artifacts["factor"].endswith("factor.txt")
        return (model_input["x"] * self.factor + self.offset) ** power


class NoContext(PythonModel):
    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return model_input["x"].to_numpy() + (params or {}).get("shift", 0)


class NoParams(PythonModel):
    def predict(self, context: Any, model_input: Any) -> Any:
        return len(model_input)


class Streamer(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return list(model_input["x"])

    def predict_stream(self, context: Any, model_input: Any, params: Any = None) -> Iterator[Any]:
        yield from model_input["x"]


class Words(PythonModel):
    def predict(self, model_input: list[str], params: Any = None) -> list[int]:
        return [len(w) for w in model_input]


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "factor.txt").write_text("10")
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "lookup.json").write_text('{"a": 1}')
    return {"factor": str(tmp_path / "factor.txt"), "tables": str(tables)}


def test_artifacts_context_and_model_config(tmp_path: Path, artifacts: dict[str, str]) -> None:
    path = tmp_path / "model"
    pyfunc.save_model(
        path,
        python_model=Scaler(),
        artifacts=artifacts,
        model_config={"offset": 1.0},
        input_example=(FRAME, {"power": 1}),
    )
    conf = Model.load(path).flavors["python_function"]
    assert conf["loader_module"] == "mlflow.pyfunc.model"
    assert conf["python_model"] == "python_model.pkl"
    assert conf["config"] == {"offset": 1.0}
    assert conf["artifacts"] == {
        "factor": {"path": "artifacts/factor.txt", "uri": artifacts["factor"]},
        "tables": {"path": "artifacts/tables", "uri": artifacts["tables"]},
    }
    assert conf["cloudpickle_version"]
    assert conf["code"] is None
    assert conf["streamable"] is False
    assert (path / "artifacts" / "tables" / "lookup.json").is_file()

    loaded = pyfunc.load_model(path)
    assert loaded.predict(FRAME).tolist() == [11.0, 21.0, 31.0]
    assert loaded.predict(FRAME, params={"power": 2}).tolist() == [121.0, 441.0, 961.0]
    assert loaded.model_config == {"offset": 1.0}
    assert isinstance(loaded.unwrap_python_model(), Scaler)
    assert loaded.unwrap_python_model().lookup == {"a": 1}
    assert loaded.loader_module == "mlflow.pyfunc.model"
    assert "mlflow.pyfunc.model" in repr(loaded)
    pd.testing.assert_frame_equal(loaded.input_example, FRAME)

    # The signature came from running the model on the example.
    signature = loaded.metadata.signature
    assert signature is not None
    assert signature.to_dict() == {
        "inputs": '[{"type": "double", "name": "x", "required": true}]',
        "outputs": '[{"type": "double", "name": "x", "required": true}]',
        "params": '[{"name": "power", "default": 1, "shape": null, "type": "long"}]',
    }

    overridden = pyfunc.load_model(path, model_config={"offset": 5.0, "unknown": 1})
    assert overridden.predict(FRAME).tolist() == [15.0, 25.0, 35.0]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump({"offset": 2.0}))
    assert pyfunc.load_model(path, model_config=str(config_file)).predict(FRAME).tolist()[0] == 12.0


def test_predict_without_context_and_without_params(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pyfunc.save_model(tmp_path / "a", python_model=NoContext())
    loaded = pyfunc.load_model(tmp_path / "a")
    assert loaded.metadata.signature is None
    assert loaded.predict(FRAME).tolist() == [1.0, 2.0, 3.0]
    # Without a params schema, params are dropped with a logged warning.
    with caplog.at_level(logging.WARNING):
        assert loaded.predict(FRAME, params={"shift": 1}).tolist() == [1.0, 2.0, 3.0]
    assert "Ignoring provided params: ['shift']" in caplog.text

    signature = infer_signature(FRAME, params={"shift": 0})
    pyfunc.save_model(tmp_path / "b", python_model=NoContext(), signature=signature)
    assert pyfunc.load_model(tmp_path / "b").predict(FRAME, {"shift": 10}).tolist() == [
        11.0,
        12.0,
        13.0,
    ]
    pyfunc.save_model(tmp_path / "c", python_model=NoParams())
    assert pyfunc.load_model(tmp_path / "c").predict(FRAME) == 3


def test_signature_enforced_at_predict(tmp_path: Path) -> None:
    signature = infer_signature(FRAME, params={"shift": 0})
    pyfunc.save_model(tmp_path / "m", python_model=NoContext(), signature=signature)
    loaded = pyfunc.load_model(tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match=r"Model is missing inputs \['x'\]"):
        loaded.predict(pd.DataFrame({"y": [1.0]}))
    with pytest.raises(InvalidParameterValue, match="Incompatible input types for column x"):
        loaded.predict(pd.DataFrame({"x": ["a"]}))
    with pytest.raises(InvalidParameterValue, match="Invalid parameters found"):
        loaded.predict(FRAME, params={"shift": "far"})
    # A dict and a list of records are turned into the DataFrame the schema describes.
    assert loaded.predict({"x": [1.0, 2.0]}).tolist() == [1.0, 2.0]
    assert loaded.predict([{"x": 4.0}]).tolist() == [4.0]


def test_function_as_python_model_and_list_str_hint(tmp_path: Path) -> None:
    def double(model_input: pd.DataFrame) -> pd.DataFrame:
        return model_input * 2

    pyfunc.save_model(tmp_path / "f", python_model=double, input_example=FRAME)
    assert pyfunc.load_model(tmp_path / "f").predict(FRAME)["x"].tolist() == [2.0, 4.0, 6.0]

    pyfunc.save_model(tmp_path / "w", python_model=Words(), input_example=["ab", "abc"])
    words = pyfunc.load_model(tmp_path / "w")
    assert words.predict(["hello", "a"]) == [5, 1]
    assert Words().predict_type_hints.input == list[str]


def test_streamable_models(tmp_path: Path) -> None:
    pyfunc.save_model(tmp_path / "s", python_model=Streamer())
    conf = Model.load(tmp_path / "s").flavors["python_function"]
    assert conf["streamable"] is True
    loaded = pyfunc.load_model(tmp_path / "s")
    assert list(loaded.predict_stream(FRAME)) == [1.0, 2.0, 3.0]
    pyfunc.save_model(tmp_path / "n", python_model=NoContext())
    with pytest.raises(RunyardError, match="does not support predict_stream"):
        pyfunc.load_model(tmp_path / "n").predict_stream(FRAME)


def test_environment_files_of_a_custom_model(tmp_path: Path) -> None:
    pyfunc.save_model(tmp_path / "m", python_model=NoContext(), extra_pip_requirements=["numpy"])
    lines = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert lines[0] == f"runyard=={__version__}"
    assert lines[1].startswith("cloudpickle==")
    assert lines[2] == "numpy"
    assert pyfunc.get_model_dependencies(str(tmp_path / "m")) == str(
        tmp_path / "m" / "requirements.txt"
    )


def test_save_argument_errors(tmp_path: Path, artifacts: dict[str, str]) -> None:
    with pytest.raises(InvalidParameterValue, match="Either `loader_module` or `python_model`"):
        pyfunc.save_model(tmp_path / "a")
    with pytest.raises(InvalidParameterValue, match="must be a PythonModel instance"):
        pyfunc.save_model(tmp_path / "b", python_model=42)
    with pytest.raises(InvalidParameterValue, match="`artifacts` can only be used"):
        pyfunc.save_model(tmp_path / "c", loader_module="m", artifacts=artifacts)
    pyfunc.save_model(tmp_path / "d", python_model=NoContext())
    with pytest.raises(RunyardError, match="already exists and is not empty"):
        pyfunc.save_model(tmp_path / "d", python_model=NoContext())
    with pytest.raises(InvalidParameterValue, match="Artifact .* does not exist"):
        pyfunc.save_model(tmp_path / "e", python_model=NoContext(), artifacts={"x": "/nope/x"})
    assert not (tmp_path / "e").exists()  # a failed save leaves nothing behind


def test_corrupt_model_directories(tmp_path: Path) -> None:
    with pytest.raises(ResourceDoesNotExist, match="is not a model directory: no MLmodel file"):
        pyfunc.load_model(str(tmp_path))
    pyfunc.save_model(tmp_path / "m", python_model=NoContext())
    (tmp_path / "m" / "python_model.pkl").unlink()
    with pytest.raises(RunyardError, match="python_model file is missing"):
        pyfunc.load_model(tmp_path / "m")
    (tmp_path / "m" / "python_model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(RunyardError, match="is not a readable cloudpickle file"):
        pyfunc.load_model(tmp_path / "m")
    (tmp_path / "m" / "MLmodel").write_text("flavors: {python_function: [\n")
    with pytest.raises(InvalidParameterValue, match="is not valid YAML"):
        pyfunc.load_model(tmp_path / "m")


def test_mlflow_references_resolve_to_runyard(tmp_path: Path) -> None:
    """A pickle naming mlflow's classes (as MLflow writes them) loads without mlflow installed."""
    assert "mlflow" not in sys.modules
    # Protocol 2 names classes as text (`c<module>\n<name>\n`), so the module can be swapped.
    ours = pickle.dumps(_TypeHints(list[str], None), protocol=2)
    path = tmp_path / "python_model.pkl"
    path.write_bytes(ours.replace(b"runyard.models.signature", b"mlflow.models.signature"))
    restored = _unpickle(str(path))
    assert isinstance(restored, _TypeHints)
    assert restored.input == list[str]
    path.write_bytes(
        ours.replace(b"runyard.models.signature\n_TypeHints", b"mlflow.models.signature\nGone")
    )
    with pytest.raises(RunyardError, match="refers to mlflow.models.signature.Gone"):
        _unpickle(str(path))


def test_model_signature_passthrough_for_tensors(tmp_path: Path) -> None:
    class Identity(PythonModel):
        def predict(self, model_input: Any, params: Any = None) -> Any:
            return model_input

    example = np.zeros((2, 3), dtype=np.float32)
    pyfunc.save_model(tmp_path / "t", python_model=Identity(), input_example=example)
    loaded = pyfunc.load_model(tmp_path / "t")
    signature: ModelSignature | None = loaded.metadata.signature
    assert signature is not None
    assert signature.to_dict()["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]'
    )
    with pytest.raises(InvalidParameterValue, match="dtype of input float64"):
        loaded.predict(np.zeros((1, 3)))
    assert loaded.predict(np.ones((1, 3), dtype=np.float32)).shape == (1, 3)
