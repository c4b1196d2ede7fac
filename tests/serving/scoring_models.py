"""Real models for the scoring-server tests: a scikit-learn classifier on the iris data (column
signature of doubles) and small custom pyfunc models (params, failures, slowness, mixed dtypes,
no signature)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import runyard.pyfunc
import runyard.sklearn
from runyard.models import infer_signature

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def iris_frame() -> tuple[pd.DataFrame, pd.Series]:
    """The iris features (a DataFrame with IRIS_COLUMNS) and labels."""
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True, as_frame=True)
    return features, labels


def fit_iris_classifier() -> Any:
    """A LogisticRegression fitted on the iris DataFrame (so it knows its feature names)."""
    from sklearn.linear_model import LogisticRegression

    features, labels = iris_frame()
    return LogisticRegression(max_iter=1000).fit(features, labels)


def save_iris_model(path: Path) -> Any:
    """Save the iris classifier with a signature under ``path``; return the fitted estimator."""
    classifier = fit_iris_classifier()
    features, _ = iris_frame()
    signature = infer_signature(features, classifier.predict(features))
    runyard.sklearn.save_model(classifier, str(path), signature=signature)
    return classifier


class Scale(runyard.pyfunc.PythonModel):
    """``x * factor`` with ``factor`` a param (default 1.0)."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        factor = (params or {}).get("factor", 1.0)
        return (model_input["x"] * factor).to_numpy()


class Failing(runyard.pyfunc.PythonModel):
    """Raises ValueError for negative inputs, else returns them."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        if (model_input["x"] < 0).any():
            raise ValueError("negative input reached the model")
        return model_input["x"].to_numpy()


class Slow(runyard.pyfunc.PythonModel):
    """Sleeps ``seconds`` (a param, default 2) before answering."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        time.sleep(float((params or {}).get("seconds", 2.0)))
        return model_input["x"].to_numpy()


class Dtypes(runyard.pyfunc.PythonModel):
    """Returns, for each input column, its dtype name and its values as a list."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return {
            str(name): {"dtype": str(column.dtype), "values": column.tolist()}
            for name, column in model_input.items()
        }


class EnvFactor(runyard.pyfunc.PythonModel):
    """Multiplies ``x`` by the SCORING_TEST_FACTOR environment variable."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return (model_input["x"] * float(os.environ["SCORING_TEST_FACTOR"])).to_numpy()


class Echo(runyard.pyfunc.PythonModel):
    """Returns its input as it arrives (no signature: nothing is enforced)."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return {"received": model_input, "params": params}


def save_python_model(path: Path, model: Any, example: Any = None, params: Any = None) -> None:
    """Save a custom model, with a signature inferred from ``example`` (and ``params``)."""
    signature = None
    if example is not None:
        signature = infer_signature(example, None, params=params)
    runyard.pyfunc.save_model(str(path), python_model=model, signature=signature)


def x_frame(*values: float) -> pd.DataFrame:
    """A one-column DataFrame ``x`` of doubles."""
    return pd.DataFrame({"x": np.array(values, dtype=np.float64)})
