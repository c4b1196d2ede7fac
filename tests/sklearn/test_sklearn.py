"""runyard.sklearn: save/load in skops, cloudpickle and pickle; pyfunc; signatures; MLmodel keys."""

from __future__ import annotations

import pickle
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
import skops
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import runyard.sklearn as rsk
from runyard import pyfunc
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.models import Model

PY_VERSION = platform.python_version()
ENV = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """A user's own estimator class: skops needs it named in skops_trusted_types."""

    def fit(self, X: Any, y: Any) -> MajorityClassifier:
        values, counts = np.unique(y, return_counts=True)
        self.majority_ = int(values[np.argmax(counts)])
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.majority_)


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(60, 4)), columns=["a", "b", "c", "d"])
    y = pd.Series((X["a"] + X["b"] > 0).astype(int) + (X["c"] > 1).astype(int), name="y")
    return X, y


@pytest.fixture(scope="module")
def logreg(frame: tuple[pd.DataFrame, pd.Series]) -> LogisticRegression:
    X, y = frame
    return LogisticRegression(max_iter=300).fit(X, y)


@pytest.fixture(scope="module")
def array_model() -> tuple[LinearRegression, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    return LinearRegression().fit(X, X @ np.array([1.0, -2.0, 0.5])), X


def mlmodel(path: Path) -> dict[str, Any]:
    return yaml.safe_load((path / "MLmodel").read_text())


def test_default_save_is_skops_with_mlflows_flavor_sections(
    tmp_path: Path, logreg: LogisticRegression
) -> None:
    path = tmp_path / "m"
    rsk.save_model(logreg, path)

    doc = mlmodel(path)
    assert doc["flavors"] == {
        "python_function": {
            "env": ENV,
            "loader_module": "mlflow.sklearn",
            "model_path": "model.skops",
            "predict_fn": "predict",
            "python_version": PY_VERSION,
        },
        "sklearn": {
            "code": None,
            "pickled_model": "model.skops",
            "serialization_format": "skops",
            "sklearn_version": sklearn.__version__,
            "skops_trusted_types": None,
        },
    }
    assert (path / "model.skops").is_file()
    assert not (path / "model.pkl").exists()
    requirements = (path / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"skops=={skops.__version__}" in requirements


@pytest.mark.parametrize(
    ("fmt", "filename"),
    [("skops", "model.skops"), ("cloudpickle", "model.pkl"), ("pickle", "model.pkl")],
)
def test_native_round_trip_in_every_format(
    tmp_path: Path,
    frame: tuple[pd.DataFrame, pd.Series],
    logreg: LogisticRegression,
    fmt: str,
    filename: str,
) -> None:
    X, _ = frame
    path = tmp_path / fmt
    rsk.save_model(logreg, path, serialization_format=fmt)

    conf = mlmodel(path)["flavors"]["sklearn"]
    assert (conf["pickled_model"], conf["serialization_format"]) == (filename, fmt)
    assert (path / filename).is_file()
    loaded = rsk.load_model(str(path))
    assert type(loaded) is LogisticRegression
    np.testing.assert_array_equal(loaded.predict(X), logreg.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), logreg.predict_proba(X))


def test_cloudpickle_requirement_listed(tmp_path: Path, logreg: LogisticRegression) -> None:
    import cloudpickle

    rsk.save_model(logreg, tmp_path / "m", serialization_format="cloudpickle")
    requirements = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert f"cloudpickle=={cloudpickle.__version__}" in requirements
    assert not any(r.startswith("skops==") for r in requirements)


def test_pyfunc_predicts_dataframe(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression
) -> None:
    X, _ = frame
    rsk.save_model(logreg, tmp_path / "m")
    model = pyfunc.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(np.asarray(model.predict(X)), logreg.predict(X))


def test_pyfunc_predicts_ndarray(
    tmp_path: Path, array_model: tuple[LinearRegression, np.ndarray]
) -> None:
    reg, X = array_model
    rsk.save_model(reg, tmp_path / "m", serialization_format="cloudpickle")
    model = pyfunc.load_model(str(tmp_path / "m"))
    np.testing.assert_allclose(np.asarray(model.predict(X)), reg.predict(X))


def test_signature_and_example_inferred_from_input_example(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression
) -> None:
    X, _ = frame
    path = tmp_path / "m"
    rsk.save_model(logreg, path, input_example=X.head(3))

    doc = mlmodel(path)
    # The literal JSON MLflow 3.17 writes for the same model and example.
    assert doc["signature"]["inputs"] == (
        '[{"type": "double", "name": "a", "required": true}, '
        '{"type": "double", "name": "b", "required": true}, '
        '{"type": "double", "name": "c", "required": true}, '
        '{"type": "double", "name": "d", "required": true}]'
    )
    assert doc["signature"]["outputs"] == '[{"type": "long", "required": true}]'
    assert doc["saved_input_example_info"]["artifact_path"] == "input_example.json"
    assert (path / "input_example.json").is_file()
    assert (path / "serving_input_example.json").is_file()
    example = Model.load(str(path)).load_input_example(str(path))
    pd.testing.assert_frame_equal(example, X.head(3), check_dtype=False)


def test_explicit_signature_is_kept(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression
) -> None:
    from runyard.models import infer_signature

    X, _ = frame
    signature = infer_signature(X, logreg.predict_proba(X))
    rsk.save_model(logreg, tmp_path / "m", signature=signature, input_example=X.head(2))
    assert Model.load(str(tmp_path / "m")).signature == signature


def test_signature_false_saves_the_example_without_a_signature(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression
) -> None:
    X, _ = frame
    rsk.save_model(logreg, tmp_path / "m", signature=False, input_example=X.head(2))
    doc = mlmodel(tmp_path / "m")
    assert "signature" not in doc
    assert doc["saved_input_example_info"]["type"] == "dataframe"


def test_pyfunc_predict_fn_predict_proba(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression
) -> None:
    X, _ = frame
    path = tmp_path / "m"
    rsk.save_model(logreg, path, pyfunc_predict_fn="predict_proba", input_example=X.head(3))

    assert mlmodel(path)["flavors"]["python_function"]["predict_fn"] == "predict_proba"
    probabilities = np.asarray(pyfunc.load_model(str(path)).predict(X))
    np.testing.assert_allclose(probabilities, logreg.predict_proba(X))
    # The output schema describes what the pyfunc returns: one probability per class.
    outputs = Model.load(str(path)).signature.outputs
    assert outputs.is_tensor_spec()
    assert outputs.inputs[0].shape == (-1, 3)


def test_unsupported_pyfunc_predict_fn(tmp_path: Path, logreg: LogisticRegression) -> None:
    with pytest.raises(InvalidParameterValue, match="Unsupported pyfunc_predict_fn 'transform'"):
        rsk.save_model(logreg, tmp_path / "m", pyfunc_predict_fn="transform")
    assert not (tmp_path / "m").exists()


def test_model_without_the_predict_fn_gets_no_pyfunc_flavor(tmp_path: Path) -> None:
    scaler = StandardScaler().fit(np.arange(12.0).reshape(4, 3))
    rsk.save_model(scaler, tmp_path / "m")
    assert set(mlmodel(tmp_path / "m")["flavors"]) == {"sklearn"}
    np.testing.assert_allclose(rsk.load_model(str(tmp_path / "m")).mean_, scaler.mean_)


def test_unknown_serialization_format(tmp_path: Path, logreg: LogisticRegression) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        rsk.save_model(logreg, tmp_path / "m", serialization_format="joblib")
    assert info.value.message == (
        "Unrecognized serialization format: joblib. Please specify one of the following "
        "supported formats: ['skops', 'pickle', 'cloudpickle']."
    )


def test_random_forest_records_the_trusted_types_it_needs(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = frame
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    rsk.save_model(forest, tmp_path / "m")

    conf = mlmodel(tmp_path / "m")["flavors"]["sklearn"]
    assert conf["skops_trusted_types"] == ["sklearn.tree._tree.Tree"]
    loaded = rsk.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(X), forest.predict(X))


def test_custom_estimator_class_must_be_trusted_explicitly(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = frame
    model = MajorityClassifier().fit(X, y)
    class_name = f"{MajorityClassifier.__module__}.MajorityClassifier"
    with pytest.raises(RunyardError, match="untrusted types") as info:
        rsk.save_model(model, tmp_path / "refused")
    assert class_name in info.value.message
    assert not (tmp_path / "refused").exists()

    rsk.save_model(model, tmp_path / "m", skops_trusted_types=[class_name])
    assert mlmodel(tmp_path / "m")["flavors"]["sklearn"]["skops_trusted_types"] == [class_name]
    np.testing.assert_array_equal(rsk.load_model(str(tmp_path / "m")).predict(X), model.predict(X))


def test_lambda_needs_cloudpickle(tmp_path: Path) -> None:
    X = np.arange(20.0).reshape(10, 2)
    y = (X[:, 0] > 8).astype(int)
    model = make_pipeline(FunctionTransformer(lambda x: x * 2), LogisticRegression()).fit(X, y)
    (tmp_path / "skops").mkdir()
    with pytest.raises(RunyardError, match="serialization_format='cloudpickle'"):
        rsk.save_model(model, tmp_path / "skops")
    # The directory was there before the failed save: it stays, empty, ready for another try.
    assert list((tmp_path / "skops").iterdir()) == []

    rsk.save_model(model, tmp_path / "m", serialization_format="cloudpickle")
    np.testing.assert_array_equal(rsk.load_model(str(tmp_path / "m")).predict(X), model.predict(X))


def test_save_into_a_non_empty_directory_is_refused(
    tmp_path: Path, logreg: LogisticRegression
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "other.txt").write_text("x")
    with pytest.raises(RunyardError, match="already exists and is not empty"):
        rsk.save_model(logreg, tmp_path / "m")


def test_code_paths_are_copied_and_recorded(tmp_path: Path, logreg: LogisticRegression) -> None:
    helper = tmp_path / "my_features.py"
    helper.write_text("SCALE = 3\n")
    rsk.save_model(logreg, tmp_path / "m", code_paths=[str(helper)])

    flavors = mlmodel(tmp_path / "m")["flavors"]
    assert flavors["sklearn"]["code"] == "code"
    assert flavors["python_function"]["code"] == "code"
    assert (tmp_path / "m" / "code" / "my_features.py").read_text() == "SCALE = 3\n"


def test_loads_an_mlflow_1x_pickle_model_without_serialization_format(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression
) -> None:
    """Old MLflow wrote only pickled_model + sklearn_version; the format then is plain pickle."""
    X, _ = frame
    path = tmp_path / "legacy"
    path.mkdir()
    with open(path / "model.pkl", "wb") as f:
        pickle.dump(logreg, f)
    (path / "MLmodel").write_text(
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    data: model.pkl\n"
        "    env: conda.yaml\n"
        "    loader_module: mlflow.sklearn\n"
        "    python_version: 3.8.10\n"
        "  sklearn:\n"
        "    pickled_model: model.pkl\n"
        "    sklearn_version: 0.24.2\n"
        "run_id: 3f1c9b0e2f7a4c7c9a0e6f1d2b3c4d5e\n"
        "utc_time_created: '2021-06-01 10:00:00.000000'\n"
    )
    np.testing.assert_array_equal(rsk.load_model(str(path)).predict(X), logreg.predict(X))
    model = pyfunc.load_model(str(path), suppress_warnings=True)
    np.testing.assert_array_equal(np.asarray(model.predict(X)), logreg.predict(X))


def test_pyfunc_loader_accepts_the_model_file(
    tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression
) -> None:
    X, _ = frame
    rsk.save_model(logreg, tmp_path / "m")
    wrapper = rsk._load_pyfunc(str(tmp_path / "m" / "model.skops"))
    np.testing.assert_array_equal(wrapper.predict(X), logreg.predict(X))
    np.testing.assert_allclose(wrapper.predict_proba(X), logreg.predict_proba(X))
    assert wrapper.get_raw_model().coef_.shape == logreg.coef_.shape


def test_load_model_without_sklearn_flavor(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.mkdir()
    (path / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: my.module\n")
    with pytest.raises(ResourceDoesNotExist, match='Model does not have the "sklearn" flavor'):
        rsk.load_model(str(path))


def test_default_pip_requirements_are_pinned() -> None:
    assert rsk.get_default_pip_requirements() == [f"scikit-learn=={sklearn.__version__}"]
    assert rsk.get_default_pip_requirements(include_skops=True)[1] == f"skops=={skops.__version__}"
