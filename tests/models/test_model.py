"""The MLmodel file: MLflow's layout both ways, unknown keys kept, clear errors for bad files."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.models import Model, ModelInfo, ModelSignature, set_signature
from runyard.types import ColSpec, Schema
from runyard.version import MLFLOW_COMPATIBLE_VERSION, __version__

# Written by mlflow 3.17.2's `mlflow.pyfunc.save_model` (custom model, DataFrame example + params).
MLFLOW_MLMODEL = """\
flavors:
  python_function:
    artifacts:
      f:
        path: artifacts/gen.py
        uri: gen.py
    cloudpickle_version: 3.1.3
    code: null
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.pyfunc.model
    python_model: python_model.pkl
    python_version: 3.11.7
    streamable: false
is_signature_from_type_hint: false
mlflow_version: 3.17.2
model_id: null
model_size_bytes: 2552
model_uuid: fded69a81130435bbbbd26b99c7f48c9
prompts: null
saved_input_example_info:
  artifact_path: input_example.json
  pandas_orient: split
  params: 'true'
  serving_input_path: serving_input_example.json
  type: dataframe
signature:
  inputs: '[{"type": "long", "name": "a", "required": true}, {"type": "double", "name":
    "b", "required": true}, {"type": "string", "name": "c", "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: '[{"name": "k", "default": 1, "shape": null, "type": "long"}, {"name": "t",
    "default": "s", "shape": null, "type": "string"}, {"name": "f", "default": [1.0,
    2.0], "shape": [-1], "type": "double"}]'
type_hint_from_example: false
utc_time_created: '2026-11-29 00:00:45.894986'
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "MLmodel").write_text(text)
    return tmp_path


def test_reads_mlflow_mlmodel_and_writes_it_back_identically(tmp_path: Path) -> None:
    model = Model.load(write(tmp_path, MLFLOW_MLMODEL))
    assert model.mlflow_version == "3.17.2"
    assert model.model_uuid == "fded69a81130435bbbbd26b99c7f48c9"
    assert model.model_id is None
    assert model.model_size_bytes == 2552
    assert model.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
    assert model.saved_input_example_info is not None
    assert model.saved_input_example_info["params"] == "true"
    inputs = model.get_input_schema()
    assert inputs is not None
    assert inputs.input_names() == ["a", "b", "c"]
    outputs = model.get_output_schema()
    assert outputs is not None
    assert outputs.is_tensor_spec()
    params = model.get_params_schema()
    assert params is not None
    assert [p.name for p in params] == ["k", "t", "f"]
    # No runyard_version is invented for a file runyard did not write.
    assert model.to_yaml() == MLFLOW_MLMODEL


def test_new_model_defaults() -> None:
    doc = Model().to_dict()
    assert doc["mlflow_version"] == MLFLOW_COMPATIBLE_VERSION
    assert doc["runyard_version"] == __version__
    assert doc["model_id"] is None
    assert doc["prompts"] is None
    assert "run_id" not in doc
    assert "artifact_path" not in doc
    assert "signature" not in doc
    assert re.fullmatch(r"[0-9a-f]{32}", doc["model_uuid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", doc["utc_time_created"])


def test_round_trip_keeps_unknown_keys_and_everything_else(tmp_path: Path) -> None:
    model = Model(
        artifact_path="mlflow-artifacts:/1/models/m-1/artifacts",
        run_id="abc",
        signature=ModelSignature(Schema([ColSpec("long", "x")])),
        metadata={"team": "a"},
        model_id="m-1",
        databricks_feature=[1, 2],
        env_vars=["OPENAI_API_KEY"],
    ).add_flavor("sklearn", pickled_model="model.pkl", code=None)
    model.save(tmp_path / "MLmodel")
    text = (tmp_path / "MLmodel").read_text()
    assert yaml.safe_load(text)["signature"] == {
        "inputs": '[{"type": "long", "name": "x", "required": true}]',
        "outputs": None,
        "params": None,
    }
    again = Model.load(tmp_path / "MLmodel")
    assert again == model
    assert again.databricks_feature == [1, 2]
    assert again.env_vars == ["OPENAI_API_KEY"]
    assert again.metadata == {"team": "a"}
    assert again.to_yaml() == text
    assert Model.load(f"file://{tmp_path}").run_id == "abc"
    assert "sklearn" in str(again)
    assert again.to_json().startswith("{")


def test_missing_and_corrupt_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ResourceDoesNotExist, match='Could not find an "MLmodel"'):
        Model.load(tmp_path / "nope")
    with pytest.raises(ResourceDoesNotExist, match="is not a model directory: no MLmodel file"):
        Model.load(tmp_path)
    write(tmp_path, "flavors: [unclosed\n")
    with pytest.raises(InvalidParameterValue, match="MLmodel' is not valid YAML"):
        Model.load(tmp_path)
    write(tmp_path, "- just\n- a list\n")
    with pytest.raises(InvalidParameterValue, match="expected a YAML mapping, got list"):
        Model.load(tmp_path)
    write(tmp_path, "flavors: {}\nsignature:\n  inputs: 'not json'\n")
    with pytest.raises(InvalidParameterValue, match="is not a valid MLmodel file"):
        Model.load(tmp_path)


def test_set_signature_rewrites_the_file(tmp_path: Path) -> None:
    write(tmp_path, MLFLOW_MLMODEL)
    signature = ModelSignature(Schema([ColSpec("double", "z")]))
    set_signature(str(tmp_path), signature)
    model = Model.load(tmp_path)
    assert model.signature == signature
    assert model.model_uuid == "fded69a81130435bbbbd26b99c7f48c9"
    with pytest.raises(InvalidParameterValue, match="models:/<name>/<version>"):
        set_signature("models:/reg/1", signature)
    with pytest.raises(ResourceDoesNotExist, match="Failed to download an"):
        set_signature(str(tmp_path / "missing"), signature)


def test_model_info_fields() -> None:
    model = Model(run_id="r1", artifact_path="model")
    info = model.get_model_info()
    assert info.model_uri == "runs:/r1/model"
    assert info.run_id == "r1"
    assert info.model_id is None
    logged = SimpleNamespace(
        model_id="m-9", name="clf", params={"a": "1"}, tags={}, metrics=[], creation_timestamp=5
    )
    model.model_id = "m-9"
    info = model.get_model_info(logged)
    assert info.model_uri == "models:/m-9"
    assert info.name == "clf"
    assert info.params == {"a": "1"}
    assert info.creation_timestamp == 5
    explicit = ModelInfo(
        artifact_path="a",
        flavors={},
        model_uri="models:/m-1",
        model_uuid="u",
        run_id=None,
        saved_input_example_info=None,
        signature=None,
        utc_time_created="t",
        mlflow_version="3.17.2",
        registered_model_version=2,
        model_id="m-1",
        name="n",
        tags={"k": "v"},
    )
    assert explicit.model_id == "m-1"
    assert explicit.tags == {"k": "v"}
    assert explicit.registered_model_version == 2
    assert explicit.signature_dict is None
    assert "models:/m-1" in repr(explicit)
