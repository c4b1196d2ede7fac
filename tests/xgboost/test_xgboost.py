"""runyard.xgboost: Booster and scikit-learn-API models, model formats, pyfunc, MLmodel keys."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml

import runyard.xgboost as rxgb
from runyard import pyfunc
from runyard.errors import InvalidParameterValue
from runyard.models import Model

PY_VERSION = platform.python_version()


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["f0", "f1", "f2"])
    return X, pd.Series((X["f0"] * X["f1"] > 0).astype(int))


@pytest.fixture(scope="module")
def booster(frame: tuple[pd.DataFrame, pd.Series]) -> xgb.Booster:
    X, y = frame
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=4)


@pytest.fixture(scope="module")
def classifier(frame: tuple[pd.DataFrame, pd.Series]) -> xgb.XGBClassifier:
    X, y = frame
    return xgb.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(X, y)


def mlmodel(path: Path) -> dict[str, Any]:
    return yaml.safe_load((path / "MLmodel").read_text())


def test_booster_saved_as_ubj_with_mlflows_flavor_sections(
    tmp_path: Path, booster: xgb.Booster
) -> None:
    rxgb.save_model(booster, tmp_path / "m")

    assert mlmodel(tmp_path / "m")["flavors"] == {
        "python_function": {
            "data": "model.ubj",
            "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            "loader_module": "mlflow.xgboost",
            "python_version": PY_VERSION,
        },
        "xgboost": {
            "code": None,
            "data": "model.ubj",
            "model_class": "xgboost.core.Booster",
            "model_format": "ubj",
            "xgb_version": xgb.__version__,
        },
    }
    assert (tmp_path / "m" / "model.ubj").is_file()
    requirements = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert f"xgboost=={xgb.__version__}" in requirements


def test_booster_round_trip(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], booster: xgb.Booster
) -> None:
    X, _ = frame
    rxgb.save_model(booster, tmp_path / "m")
    loaded = rxgb.load_model(str(tmp_path / "m"))
    assert type(loaded) is xgb.Booster
    want = booster.predict(xgb.DMatrix(X))
    np.testing.assert_allclose(loaded.predict(xgb.DMatrix(X)), want)
    # pyfunc wraps the DataFrame in a DMatrix for a Booster.
    np.testing.assert_allclose(pyfunc.load_model(str(tmp_path / "m")).predict(X), want)


@pytest.mark.parametrize("model_format", ["ubj", "json"])
def test_classifier_round_trip_keeps_its_class(
    tmp_path: Path,
    frame: tuple[pd.DataFrame, pd.Series],
    classifier: xgb.XGBClassifier,
    model_format: str,
) -> None:
    X, _ = frame
    rxgb.save_model(classifier, tmp_path / "m", model_format=model_format)

    conf = mlmodel(tmp_path / "m")["flavors"]["xgboost"]
    assert conf["model_class"] == "xgboost.sklearn.XGBClassifier"
    assert (conf["data"], conf["model_format"]) == (f"model.{model_format}", model_format)
    loaded = rxgb.load_model(str(tmp_path / "m"))
    assert type(loaded) is xgb.XGBClassifier
    np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), classifier.predict_proba(X))


def test_pyfunc_with_ndarray_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 2))
    regressor = xgb.XGBRegressor(n_estimators=3, n_jobs=1).fit(X, X[:, 0] - X[:, 1])
    rxgb.save_model(regressor, tmp_path / "m")
    model = pyfunc.load_model(str(tmp_path / "m"))
    np.testing.assert_allclose(model.predict(X), regressor.predict(X))


def test_signature_inferred_from_example(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], classifier: xgb.XGBClassifier
) -> None:
    X, _ = frame
    rxgb.save_model(classifier, tmp_path / "m", input_example=X.head(4))
    signature = Model.load(str(tmp_path / "m")).signature
    assert signature.inputs.input_names() == ["f0", "f1", "f2"]
    assert signature.outputs is not None
    assert (tmp_path / "m" / "input_example.json").is_file()


def test_pyfunc_wrapper_passes_accepted_params(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], classifier: xgb.XGBClassifier
) -> None:
    X, _ = frame
    rxgb.save_model(classifier, tmp_path / "m")
    wrapper = rxgb._load_pyfunc(str(tmp_path / "m" / "model.ubj"))
    margins = wrapper.predict(X, params={"output_margin": True, "not_a_param": 1})
    np.testing.assert_allclose(margins, classifier.predict(X, output_margin=True))
    assert type(wrapper.get_raw_model()) is xgb.XGBClassifier


def test_unsupported_model_format(tmp_path: Path, booster: xgb.Booster) -> None:
    with pytest.raises(InvalidParameterValue, match="Unsupported model_format 'bin'"):
        rxgb.save_model(booster, tmp_path / "m", model_format="bin")


def test_model_class_outside_xgboost_is_refused(tmp_path: Path, booster: xgb.Booster) -> None:
    """model_class comes from the MLmodel file, so it must not name arbitrary code."""
    rxgb.save_model(booster, tmp_path / "m")
    text = (tmp_path / "m" / "MLmodel").read_text()
    (tmp_path / "m" / "MLmodel").write_text(text.replace("xgboost.core.Booster", "os.system"))
    with pytest.raises(InvalidParameterValue, match="Unsupported model_class 'os.system'"):
        rxgb.load_model(str(tmp_path / "m"))


def test_not_an_xgboost_model(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="should be an xgboost.Booster"):
        rxgb.save_model(object(), tmp_path / "m")
