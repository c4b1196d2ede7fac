"""Custom pyfunc models cross-load between runyard and the real MLflow 3.17.2 (its own venv).

The MLflow interpreter comes from the compat suite's ``compat_venv`` fixture. MLflow needs
runyard importable to unpickle a runyard PythonModel, so the repository goes on its PYTHONPATH;
MLflow 3.17 refuses pickled models unless ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from runyard import pyfunc
from runyard.models import Model
from tests.compat.conftest import compat_venv  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def run(python: Path, script: str, cwd: Path) -> dict[str, Any]:
    """Run ``script`` with ``python``; it prints one JSON object last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RUNYARD_"))}
    env |= {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        "PYTHONPATH": str(REPO),
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


SAVE_WITH_RUNYARD = """
import json
import pandas as pd
import runyard

class Scaled(runyard.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["factor"]) as handle:
            self.factor = float(handle.read())

    def predict(self, context, model_input, params=None):
        power = (params or {}).get("power", 1)
        return (model_input["x"] * self.factor) ** power

open("factor.txt", "w").write("3")
frame = pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]})
runyard.pyfunc.save_model(
    "model", python_model=Scaled(), artifacts={"factor": "factor.txt"},
    input_example=(frame, {"power": 1}),
)
print(json.dumps({"ok": True}))
"""

LOAD_WITH_MLFLOW = """
import json
import mlflow
import pandas as pd

model = mlflow.pyfunc.load_model("model")
frame = pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]})
meta = mlflow.models.Model.load("model")
example = meta.load_input_example("model")
errors = {}
try:
    model.predict(pd.DataFrame({"label": ["a"]}))
except mlflow.exceptions.MlflowException as exc:
    errors["missing"] = exc.message
print(json.dumps({
    "predict": model.predict(frame).tolist(),
    "predict_params": model.predict(frame, params={"power": 2}).tolist(),
    "signature": model.metadata.signature.to_dict(),
    "example": example.to_dict("list"),
    "example_params": meta.load_input_example_params("model"),
    "mlflow_version": meta.mlflow_version,
    "runyard_version": meta.runyard_version,
    "errors": errors,
}))
"""


def test_mlflow_loads_a_runyard_custom_model(compat_venv: Path, tmp_path: Path) -> None:  # noqa: F811
    run(Path(sys.executable), SAVE_WITH_RUNYARD, tmp_path)
    got = run(compat_venv / "bin" / "python", LOAD_WITH_MLFLOW, tmp_path)
    assert got["predict"] == [3.0, 6.0]
    assert got["predict_params"] == [9.0, 36.0]
    assert got["signature"] == {
        "inputs": '[{"type": "double", "name": "x", "required": true}, '
        '{"type": "string", "name": "label", "required": true}]',
        "outputs": '[{"type": "double", "name": "x", "required": true}]',
        "params": '[{"name": "power", "default": 1, "shape": null, "type": "long"}]',
    }
    assert got["example"] == {"x": [1.0, 2.0], "label": ["a", "b"]}
    assert got["example_params"] == {"power": 1}
    assert got["mlflow_version"] == "3.17.2"
    assert got["runyard_version"]
    assert "Model is missing inputs ['x']" in got["errors"]["missing"]


SAVE_WITH_MLFLOW = """
import json
import mlflow
import pandas as pd
from mlflow.models import infer_signature

class Offset(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["offset"]) as handle:
            self.offset = float(handle.read())

    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return model_input["x"] * scale + self.offset

open("offset.txt", "w").write("0.5")
frame = pd.DataFrame({"x": [1.0, 2.0]})
signature = infer_signature(frame, pd.Series([1.5, 2.5], name="x"), params={"scale": 1.0})
mlflow.pyfunc.save_model(
    "model", python_model=Offset(), artifacts={"offset": "offset.txt"},
    signature=signature, input_example=frame, metadata={"team": "ml"},
)
print(json.dumps({"signature": signature.to_dict()}))
"""


def test_runyard_loads_an_mlflow_custom_model(compat_venv: Path, tmp_path: Path) -> None:  # noqa: F811
    saved = run(compat_venv / "bin" / "python", SAVE_WITH_MLFLOW, tmp_path)
    model = pyfunc.load_model(tmp_path / "model")
    meta = model.metadata
    assert meta.signature is not None
    assert meta.signature.to_dict() == saved["signature"]
    assert meta.metadata == {"team": "ml"}
    assert meta.mlflow_version == "3.17.2"
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    assert model.predict(frame).tolist() == [1.5, 2.5]
    assert model.predict(frame, params={"scale": 2.0}).tolist() == [2.5, 4.5]
    pd.testing.assert_frame_equal(model.input_example, frame)
    # The file runyard did not write round-trips unchanged.
    text = (tmp_path / "model" / "MLmodel").read_text()
    assert Model.load(tmp_path / "model").to_yaml() == text
