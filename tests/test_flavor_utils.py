"""Plumbing shared by the flavors: lazy framework imports, install hints, class lookup."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runyard._flavor_utils import class_path, import_class, require
from runyard.errors import InvalidParameterValue, RunyardError

FLAVORS = {
    # flavor module: (framework module, extra)
    "runyard.sklearn": ("sklearn", "sklearn"),
    "runyard.pytorch": ("torch", "pytorch"),
    "runyard.xgboost": ("xgboost", "xgboost"),
    "runyard.lightgbm": ("lightgbm", "lightgbm"),
}


def run_python(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RUNYARD_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_require_names_the_package_and_extra() -> None:
    with pytest.raises(RunyardError) as info:
        require("runyard_no_such_module", package="no-such-package", extra="nothing")
    assert "'no-such-package' package is required" in info.value.message
    assert "pip install 'runyard[nothing]'" in info.value.message
    assert isinstance(info.value.__cause__, ImportError)


def test_import_class_stays_inside_the_package() -> None:
    from xgboost import XGBRegressor

    assert import_class("xgboost.sklearn.XGBRegressor", allowed_package="xgboost") is XGBRegressor
    assert class_path(XGBRegressor()) == "xgboost.sklearn.XGBRegressor"
    with pytest.raises(InvalidParameterValue, match="expected a class of the 'xgboost' package"):
        import_class("subprocess.Popen", allowed_package="xgboost")
    with pytest.raises(InvalidParameterValue, match="no such class"):
        import_class("xgboost.sklearn.train_nothing", allowed_package="xgboost")


@pytest.mark.slow
def test_importing_a_flavor_does_not_import_its_framework(tmp_path: Path) -> None:
    done = run_python(
        f"""
        import sys
        flavors = {FLAVORS!r}
        for flavor, (framework, _) in flavors.items():
            __import__(flavor)
            assert framework not in sys.modules, (flavor, framework)
        print("ok")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def save_tiny_model(flavor: str, path: Path) -> None:
    """A real model of ``flavor``, trained on a few rows, saved at ``path``."""
    import numpy as np

    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]] * 5)
    y = np.array([1, 0, 1, 0] * 5)
    if flavor == "runyard.sklearn":
        from sklearn.linear_model import LogisticRegression

        import runyard.sklearn

        runyard.sklearn.save_model(LogisticRegression().fit(X, y), path)
    elif flavor == "runyard.pytorch":
        import torch

        import runyard.pytorch

        runyard.pytorch.save_model(torch.nn.Linear(2, 1), path)
    elif flavor == "runyard.xgboost":
        import xgboost

        import runyard.xgboost

        model = xgboost.XGBClassifier(n_estimators=2, n_jobs=1).fit(X, y)
        runyard.xgboost.save_model(model, path)
    else:
        import lightgbm

        import runyard.lightgbm

        params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 1}
        booster = lightgbm.train(params, lightgbm.Dataset(X, label=y), num_boost_round=2)
        runyard.lightgbm.save_model(booster, path)


@pytest.mark.slow
@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_missing_framework_names_the_extra(tmp_path: Path, flavor: str) -> None:
    """A saved model whose framework is not importable in the loading interpreter fails with an
    install hint.

    The child interpreter really cannot import the framework: ``sys.modules[name] = None`` is
    Python's documented way to make ``import name`` raise ImportError.
    """
    framework, extra = FLAVORS[flavor]
    save_tiny_model(flavor, tmp_path / "model")
    done = run_python(
        f"""
        import importlib, sys
        sys.modules[{framework!r}] = None
        flavor = importlib.import_module({flavor!r})
        try:
            flavor.load_model("model")
        except Exception as exc:
            print(type(exc).__name__, "|", exc)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    name, _, message = done.stdout.strip().partition(" | ")
    assert name == "RunyardError"
    assert f"pip install 'runyard[{extra}]'" in message
