"""runyard.lightgbm: Booster text files, LGBM* estimators via skops/cloudpickle, pyfunc, MLmodel."""

from __future__ import annotations

import pickle
import platform
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import skops
import yaml

import runyard.lightgbm as rlgb
from runyard import pyfunc
from runyard.models import Model

PY_VERSION = platform.python_version()


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(9)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["u", "v", "w"])
    return X, pd.Series((X["u"] + 0.5 * X["v"] > 0).astype(int))


@pytest.fixture(scope="module")
def booster(frame: tuple[pd.DataFrame, pd.Series]) -> lgb.Booster:
    X, y = frame
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=5)


@pytest.fixture(scope="module")
def classifier(frame: tuple[pd.DataFrame, pd.Series]) -> lgb.LGBMClassifier:
    X, y = frame
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1)
    return model.fit(X, y)


def mlmodel(path: Path) -> dict[str, Any]:
    return yaml.safe_load((path / "MLmodel").read_text())


def test_booster_saved_as_text_with_mlflows_flavor_sections(
    tmp_path: Path, booster: lgb.Booster
) -> None:
    rlgb.save_model(booster, tmp_path / "m")

    assert mlmodel(tmp_path / "m")["flavors"] == {
        "lightgbm": {
            "code": None,
            "data": "model.lgb",
            "lgb_version": lgb.__version__,
            "model_class": "lightgbm.basic.Booster",
            "serialization_format": "skops",
            "skops_trusted_types": None,
        },
        "python_function": {
            "data": "model.lgb",
            "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            "loader_module": "mlflow.lightgbm",
            "python_version": PY_VERSION,
        },
    }
    assert (tmp_path / "m" / "model.lgb").read_text().startswith("tree\n")
    requirements = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert f"lightgbm=={lgb.__version__}" in requirements
    assert not any(r.startswith("skops==") for r in requirements)


def test_booster_round_trip_and_pyfunc(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], booster: lgb.Booster
) -> None:
    X, _ = frame
    rlgb.save_model(booster, tmp_path / "m")
    loaded = rlgb.load_model(str(tmp_path / "m"))
    assert type(loaded) is lgb.Booster
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))
    np.testing.assert_allclose(
        pyfunc.load_model(str(tmp_path / "m")).predict(X), booster.predict(X)
    )


def test_classifier_defaults_to_skops(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], classifier: lgb.LGBMClassifier
) -> None:
    X, _ = frame
    rlgb.save_model(classifier, tmp_path / "m")

    conf = mlmodel(tmp_path / "m")["flavors"]["lightgbm"]
    assert conf["data"] == "model.skops"
    assert conf["model_class"] == "lightgbm.sklearn.LGBMClassifier"
    assert conf["serialization_format"] == "skops"
    # MLflow's built-in trusted LightGBM types, which this file needs.
    assert {"lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier"} <= set(
        conf["skops_trusted_types"]
    )
    assert f"skops=={skops.__version__}" in (tmp_path / "m" / "requirements.txt").read_text()
    loaded = rlgb.load_model(str(tmp_path / "m"))
    assert type(loaded) is lgb.LGBMClassifier
    np.testing.assert_allclose(loaded.predict_proba(X), classifier.predict_proba(X))
    np.testing.assert_array_equal(
        pyfunc.load_model(str(tmp_path / "m")).predict(X), classifier.predict(X)
    )


def test_classifier_with_cloudpickle(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], classifier: lgb.LGBMClassifier
) -> None:
    X, _ = frame
    rlgb.save_model(classifier, tmp_path / "m", serialization_format="cloudpickle")
    conf = mlmodel(tmp_path / "m")["flavors"]["lightgbm"]
    assert (conf["data"], conf["serialization_format"]) == ("model.pkl", "cloudpickle")
    assert conf["skops_trusted_types"] is None
    np.testing.assert_array_equal(
        rlgb.load_model(str(tmp_path / "m")).predict(X), classifier.predict(X)
    )


def test_loads_an_older_mlflow_pickled_estimator(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], classifier: lgb.LGBMClassifier
) -> None:
    """MLflow before skops wrote LGBM* estimators as model.pkl with no serialization_format."""
    X, _ = frame
    path = tmp_path / "old"
    path.mkdir()
    with open(path / "model.pkl", "wb") as f:
        pickle.dump(classifier, f)
    (path / "MLmodel").write_text(
        "flavors:\n"
        "  lightgbm:\n"
        "    code: null\n"
        "    data: model.pkl\n"
        "    lgb_version: 3.3.5\n"
        "    model_class: lightgbm.sklearn.LGBMClassifier\n"
        "  python_function:\n"
        "    data: model.pkl\n"
        "    env: conda.yaml\n"
        "    loader_module: mlflow.lightgbm\n"
        "    python_version: 3.9.16\n"
        "mlflow_version: 2.3.0\n"
    )
    np.testing.assert_array_equal(rlgb.load_model(str(path)).predict(X), classifier.predict(X))


def test_signature_inferred_from_example(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], classifier: lgb.LGBMClassifier
) -> None:
    X, _ = frame
    rlgb.save_model(classifier, tmp_path / "m", input_example=X.head(5))
    signature = Model.load(str(tmp_path / "m")).signature
    assert signature.inputs.input_names() == ["u", "v", "w"]
    assert signature.outputs.to_dict() == [{"type": "long", "required": True}]
