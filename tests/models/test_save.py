"""The save plumbing every flavor shares: target directory checks and finish_model_dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression

from runyard.errors import InvalidParameterValue, ResourceAlreadyExists
from runyard.models import Model, ModelSignature
from runyard.models.save import finish_model_dir, new_model_dir
from runyard.pyfunc import add_to_model
from runyard.types import ColSpec, Schema
from runyard.version import __version__

X = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
Y = np.array([1.0, 2.0, 4.0, 5.0])


def finish(path: Path, model: Model, **overrides: Any) -> None:
    kwargs: dict[str, Any] = {
        "signature": None,
        "input_example": None,
        "default_pip_requirements": [],
        "pip_requirements": None,
        "extra_pip_requirements": None,
        "conda_env": None,
        "metadata": None,
        "code_paths": None,
    }
    kwargs.update(overrides)
    finish_model_dir(path, model, **kwargs)


def test_new_model_dir(tmp_path: Path) -> None:
    created = new_model_dir(tmp_path / "a" / "b")
    assert created.is_dir()
    assert new_model_dir(created) == created  # an empty directory is fine
    (created / "file").write_text("x")
    with pytest.raises(
        ResourceAlreadyExists, match=f"Path '{created}' already exists and is not empty"
    ):
        new_model_dir(created)


def test_finish_infers_signature_by_predicting(tmp_path: Path) -> None:
    regressor = LinearRegression().fit(X, Y)
    path = new_model_dir(tmp_path / "m")
    (path / "model.bin").write_bytes(b"\0" * 100)
    model = Model()
    add_to_model(model, loader_module="mlflow.sklearn", model_path="model.bin")

    def predict(data: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return regressor.predict(data)

    finish(
        path,
        model,
        input_example=X.head(2),
        default_pip_requirements=["scikit-learn==1.0"],
        metadata={"owner": "me"},
        predict_fn=predict,
    )
    written = Model.load(path)
    assert written.signature is not None
    assert written.signature.to_dict() == {
        "inputs": '[{"type": "double", "name": "x1", "required": true}, '
        '{"type": "double", "name": "x2", "required": true}]',
        "outputs": '[{"type": "double", "required": true}]',
        "params": None,
    }
    assert written.metadata == {"owner": "me"}
    assert written.model_size_bytes is not None
    assert written.model_size_bytes > 100
    assert (path / "requirements.txt").read_text() == f"runyard=={__version__}\nscikit-learn==1.0"
    for name in ("conda.yaml", "python_env.yaml", "input_example.json", "MLmodel"):
        assert (path / name).is_file()
    conf = written.flavors["python_function"]
    assert conf["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert "code" not in conf


def test_finish_input_only_signature_and_disabled_inference(tmp_path: Path) -> None:
    first = new_model_dir(tmp_path / "one")
    finish(first, Model(), input_example=(X.head(1), {"alpha": 0.5}))
    signature = Model.load(first).signature
    assert signature is not None
    assert signature.outputs is None
    assert signature.params is not None
    assert [p.name for p in signature.params] == ["alpha"]

    second = new_model_dir(tmp_path / "two")
    finish(second, Model(), input_example=X.head(1), signature=False)
    assert Model.load(second).signature is None
    assert "signature" not in yaml.safe_load((second / "MLmodel").read_text())

    third = new_model_dir(tmp_path / "three")
    given = ModelSignature(Schema([ColSpec("double", "x1")]))
    finish(third, Model(), input_example=X.head(1), signature=given)
    assert Model.load(third).signature == given


def test_finish_copies_code_and_points_flavors_at_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (src / "helpers.py").write_text("def f():\n    return 2\n")
    path = new_model_dir(tmp_path / "m")
    model = Model()
    add_to_model(model, loader_module="mlflow.sklearn")
    model.add_flavor("sklearn", pickled_model="model.pkl", code=None)
    model.add_flavor("other", x=1)
    finish(path, model, code_paths=[str(src / "pkg"), str(src / "helpers.py")])
    assert (path / "code" / "pkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert (path / "code" / "helpers.py").is_file()
    flavors = Model.load(path).flavors
    assert flavors["python_function"]["code"] == "code"
    assert flavors["sklearn"]["code"] == "code"
    assert "code" not in flavors["other"]
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        finish(new_model_dir(tmp_path / "n"), Model(), code_paths=[str(tmp_path / "missing.py")])


def test_finish_refuses_two_env_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Only one of"):
        finish(tmp_path, Model(), pip_requirements=["a"], conda_env={"dependencies": []})


def test_example_files_are_mlflows(tmp_path: Path) -> None:
    path = new_model_dir(tmp_path / "m")
    finish(path, Model(), input_example={"q": "hello"})
    assert json.loads((path / "input_example.json").read_text()) == {"q": "hello"}
    assert json.loads((path / "serving_input_example.json").read_text()) == {
        "inputs": {"q": "hello"}
    }
