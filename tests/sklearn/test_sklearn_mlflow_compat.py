"""sklearn models cross-load between runyard and the real MLflow 3.17.2 (its own venv).

The MLflow interpreter is the compat suite's venv (``RUNYARD_COMPAT_VENV``, by default
``~/.cache/runyard-compat/mlflow-3.17.2``), created from PyPI on first use like
tests/compat/conftest.py does; ``mlflow`` depends on scikit-learn and skops, so the venv has both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import runyard.sklearn as rsk
from runyard import pyfunc
from runyard.models import Model

pytestmark = pytest.mark.slow

MLFLOW_VERSION = "3.17.2"
DEFAULT_VENV = Path.home() / ".cache" / "runyard-compat" / f"mlflow-{MLFLOW_VERSION}"


def _has_mlflow(python: Path) -> bool:
    if not python.exists():
        return False
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout.strip() == MLFLOW_VERSION


@pytest.fixture(scope="module")
def mlflow_python() -> Path:
    """The interpreter of a venv holding mlflow==3.17.2 (created from PyPI when missing)."""
    venv = Path(os.environ.get("RUNYARD_COMPAT_VENV") or DEFAULT_VENV).expanduser()
    python = venv / "bin" / "python"
    if not _has_mlflow(python):
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"mlflow=={MLFLOW_VERSION}"],
            check=True,
            timeout=1800,
        )
    assert _has_mlflow(python), f"no mlflow {MLFLOW_VERSION} in {venv}"
    return python


def run_mlflow(python: Path, script: str, cwd: Path) -> dict[str, object]:
    """Run ``script`` with MLflow's interpreter; it prints one JSON object last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RUNYARD_"))}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["x1", "x2", "x3"])
    return X, pd.Series((X["x1"] - X["x3"] > 0).astype(int))


@pytest.mark.parametrize("fmt", ["skops", "cloudpickle"])
def test_mlflow_loads_runyard_saved_models(
    tmp_path: Path, mlflow_python: Path, data: tuple[pd.DataFrame, pd.Series], fmt: str
) -> None:
    X, y = data
    # A forest needs a trusted skops type, which runyard records and MLflow must honour.
    forest = RandomForestClassifier(n_estimators=4, random_state=1).fit(X, y)
    rsk.save_model(forest, tmp_path / "forest", serialization_format=fmt, input_example=X.head(2))
    logreg = LogisticRegression().fit(X, y)
    rsk.save_model(
        logreg, tmp_path / "proba", serialization_format=fmt, pyfunc_predict_fn="predict_proba"
    )
    X.to_csv(tmp_path / "X.csv", index=False)

    out = run_mlflow(
        mlflow_python,
        """
        import json
        import mlflow.pyfunc, mlflow.sklearn
        import pandas as pd

        X = pd.read_csv("X.csv")
        forest = mlflow.pyfunc.load_model("forest")
        native = mlflow.sklearn.load_model("forest")
        proba = mlflow.pyfunc.load_model("proba")
        print(json.dumps({
            "pyfunc": [int(v) for v in forest.predict(X)],
            "native": [int(v) for v in native.predict(X)],
            "proba": proba.predict(X).tolist(),
            "inputs": forest.metadata.get_input_schema().input_names(),
        }))
        """,
        tmp_path,
    )
    assert out["pyfunc"] == forest.predict(X).tolist()
    assert out["native"] == forest.predict(X).tolist()
    np.testing.assert_allclose(np.asarray(out["proba"]), logreg.predict_proba(X))
    assert out["inputs"] == ["x1", "x2", "x3"]


@pytest.mark.parametrize("fmt", ["skops", "cloudpickle", "pickle"])
def test_runyard_loads_mlflow_saved_models(
    tmp_path: Path, mlflow_python: Path, data: tuple[pd.DataFrame, pd.Series], fmt: str
) -> None:
    X, y = data
    X.assign(y=y).to_csv(tmp_path / "train.csv", index=False)
    run_mlflow(
        mlflow_python,
        f"""
        import json
        import mlflow.sklearn
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        df = pd.read_csv("train.csv")
        X, y = df.drop(columns="y"), df["y"]
        model = LogisticRegression().fit(X, y)
        mlflow.sklearn.save_model(
            model, "model", serialization_format="{fmt}", input_example=X.head(3),
            pyfunc_predict_fn="predict_proba",
        )
        pd.DataFrame(model.predict_proba(X)).to_csv("expected.csv", index=False)
        print(json.dumps({{}}))
        """,
        tmp_path,
    )
    expected = pd.read_csv(tmp_path / "expected.csv").to_numpy()

    native = rsk.load_model(str(tmp_path / "model"))
    assert type(native) is LogisticRegression
    np.testing.assert_allclose(native.predict_proba(X), expected)
    model = pyfunc.load_model(str(tmp_path / "model"))
    np.testing.assert_allclose(np.asarray(model.predict(X)), expected)
    signature = Model.load(str(tmp_path / "model")).signature
    assert signature.inputs.input_names() == ["x1", "x2", "x3"]
