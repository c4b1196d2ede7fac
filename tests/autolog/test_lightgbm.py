"""runyard.lightgbm.autolog: lightgbm.train and the scikit-learn API log params, metrics per
iteration, early stopping, feature importance, datasets and the model, under MLflow's names.

Every test trains a real (small) LightGBM model; expected values come from LightGBM itself
(``record_evaluation``, ``feature_importance``, ``predict``), so logged values compare exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from sklearn.datasets import load_iris, make_regression

import runyard
import runyard.lightgbm as rlgb
from runyard.autolog import INTEGRATIONS
from runyard.autolog.patching import revert_patches
from runyard.models import Model

REGRESSION_PARAMS = {
    "objective": "regression",
    "metric": "l2",
    "num_leaves": 7,
    "learning_rate": 0.3,
    "num_threads": 1,
    "seed": 0,
    "verbose": -1,
}


@pytest.fixture
def autolog_off(tracking_env: str) -> Iterator[str]:
    """A clean tracking store; autologging disabled and unpatched afterwards."""
    yield tracking_env
    runyard.autolog(disable=True)
    for integration in INTEGRATIONS:
        revert_patches(integration)


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = make_regression(n_samples=300, n_features=4, noise=30.0, random_state=1)
    return X[:200], y[:200], X[200:], y[200:]


def only_run() -> Any:
    runs = runyard.search_runs(output_format="list")
    assert len(runs) == 1
    return runyard.get_run(runs[0].info.run_id)


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in runyard.Client().get_metric_history(run_id, key)]


def artifact_paths(run_id: str) -> list[str]:
    return sorted(f.path for f in runyard.Client().list_artifacts(run_id))


def artifact_text(run_id: str, path: str) -> str:
    return Path(runyard.Client().download_artifacts(run_id, path)).read_text()


def dataset_contexts(run: Any) -> list[tuple[str, str]]:
    """(dataset name, context) of each run input, sorted."""
    found = []
    for item in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        found.append((item.dataset.name, tags["mlflow.data.context"]))
    return sorted(found)


def test_train_logs_params_metrics_importance_datasets_and_model(
    autolog_off: str, regression: tuple[np.ndarray, ...]
) -> None:
    X, y, Xv, yv = regression
    rlgb.autolog(log_input_examples=True)
    train_set = lgb.Dataset(X, label=y)
    valid_set = lgb.Dataset(Xv, label=yv, reference=train_set)
    evals: dict[str, Any] = {}
    booster = lgb.train(
        REGRESSION_PARAMS,
        train_set,
        num_boost_round=6,
        valid_sets=[train_set, valid_set],
        valid_names=["train", "valid"],
        callbacks=[lgb.record_evaluation(evals)],
    )

    run = only_run()
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.autologging"] == "lightgbm"
    assert run.data.params == {
        **{k: str(v) for k, v in REGRESSION_PARAMS.items()},
        "num_boost_round": "6",
        "keep_training_booster": "False",
    }
    for name in ("train", "valid"):
        expected = evals[name]["l2"]
        assert len(expected) == 6
        assert history(run_id, f"{name}-l2") == list(enumerate(expected))
    assert run.data.metrics == {
        "train-l2": evals["train"]["l2"][-1],
        "valid-l2": evals["valid"]["l2"][-1],
    }

    assert artifact_paths(run_id) == [
        "feature_importance_gain.json",
        "feature_importance_gain.png",
        "feature_importance_split.json",
        "feature_importance_split.png",
    ]
    for imp_type in ("split", "gain"):
        importance = booster.feature_importance(importance_type=imp_type).tolist()
        expected_json = dict(zip(booster.feature_name(), importance, strict=True))
        text = artifact_text(run_id, f"feature_importance_{imp_type}.json")
        assert text == json.dumps(expected_json, indent=2)
        png_path = runyard.Client().download_artifacts(run_id, f"feature_importance_{imp_type}.png")
        assert imread(png_path).shape[:2] == (480, 640)

    assert dataset_contexts(run) == [("dataset", "train"), ("train", "eval"), ("valid", "eval")]

    logged = runyard.last_logged_model()
    assert logged is not None
    assert (logged.name, logged.source_run_id, logged.status) == ("model", run_id, "READY")
    assert logged.params["num_boost_round"] == "6"
    assert {m.key for m in logged.metrics} == {"train-l2", "valid-l2"}
    loaded = rlgb.load_model(logged.model_uri)
    assert isinstance(loaded, lgb.Booster)
    np.testing.assert_allclose(loaded.predict(Xv), booster.predict(Xv))
    local = Path(logged.artifact_location)
    mlmodel = Model.load(local)
    assert mlmodel.signature is not None
    assert mlmodel.signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}
    ]
    np.testing.assert_allclose(mlmodel.load_input_example(local), X[:5])


def test_early_stopping_logs_stop_and_best_iteration_metrics(
    autolog_off: str, regression: tuple[np.ndarray, ...]
) -> None:
    X, y, Xv, yv = regression
    rlgb.autolog(log_models=False, log_datasets=False)
    evals: dict[str, Any] = {}
    train_set = lgb.Dataset(X, label=y)
    booster = lgb.train(
        {**REGRESSION_PARAMS, "learning_rate": 0.9},
        train_set,
        num_boost_round=300,
        valid_sets=[lgb.Dataset(Xv, label=yv, reference=train_set)],
        callbacks=[lgb.early_stopping(3, verbose=False), lgb.record_evaluation(evals)],
    )

    run = only_run()
    run_id = run.info.run_id
    values = evals["valid_0"]["l2"]
    rounds = len(values)
    assert rounds < 300  # training stopped early
    best = booster.best_iteration  # 1-based
    assert rounds == best + 3
    assert run.data.metrics["stopped_iteration"] == rounds
    assert run.data.metrics["best_iteration"] == best
    # Every iteration at its step, then the best iteration's value one step past the last.
    assert history(run_id, "valid_0-l2") == [*enumerate(values), (rounds, values[best - 1])]
    assert run.data.metrics["valid_0-l2"] == values[best - 1]
    assert runyard.last_logged_model() is None
    assert run.inputs.dataset_inputs == []


def test_sklearn_api_logs_through_the_nested_train_and_logs_the_estimator(
    autolog_off: str,
) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    rlgb.autolog(log_input_examples=True)
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=7, n_jobs=1, verbose=-1)
    model.fit(X, y, eval_X=(X.iloc[::2],), eval_y=(y.iloc[::2],))

    run = only_run()  # one run: the nested train call logged into fit's
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.params["num_boost_round"] == "5"
    assert run.data.params["num_leaves"] == "7"
    assert run.data.params["objective"] == "multiclass"
    assert run.data.params["num_class"] == "3"
    assert run.data.params["keep_training_booster"] == "False"
    assert run.data.params["metric"] == "['multiclass']"
    expected = model.evals_result_["valid_0"]["multi_logloss"]
    assert history(run_id, "valid_0-multi_logloss") == list(enumerate(expected))
    assert set(run.data.metrics) == {"valid_0-multi_logloss"}

    split = json.loads(artifact_text(run_id, "feature_importance_split.json"))
    booster = model.booster_
    importance = booster.feature_importance().tolist()
    # LightGBM's own feature names: the columns with spaces replaced by underscores.
    assert split == dict(zip(booster.feature_name(), importance, strict=True))
    assert list(split) == [c.replace(" ", "_") for c in X.columns]

    assert dataset_contexts(run) == [("dataset", "eval"), ("dataset", "train")]
    train_input = next(
        i
        for i in run.inputs.dataset_inputs
        if i.tags[0].value == "train"  # one tag each
    )
    schema = json.loads(train_input.dataset.schema)
    assert [c["name"] for c in schema["mlflow_colspec"]] == list(X.columns)

    logged = runyard.last_logged_model()
    assert logged is not None
    assert logged.source_run_id == run_id
    assert {m.key for m in logged.metrics} == {"valid_0-multi_logloss"}
    loaded = rlgb.load_model(logged.model_uri)
    assert type(loaded) is lgb.LGBMClassifier
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    local = Path(logged.artifact_location)
    mlmodel = Model.load(local)
    assert mlmodel.signature is not None
    assert [c["name"] for c in mlmodel.signature.inputs.to_dict()] == list(X.columns)
    pd.testing.assert_frame_equal(mlmodel.load_input_example(local), X.iloc[:5])


def test_failing_training_ends_the_run_failed_with_the_same_exception(
    autolog_off: str, regression: tuple[np.ndarray, ...]
) -> None:
    X, y, Xv, yv = regression
    rlgb.autolog(log_datasets=False)
    boom = RuntimeError("disk full at iteration 2")

    def explode(env: Any) -> None:
        if env.iteration == 2:
            raise boom

    explode.order = 100  # type: ignore[attr-defined]  # after autolog's callback
    with pytest.raises(RuntimeError) as caught:
        lgb.train(
            REGRESSION_PARAMS,
            lgb.Dataset(X, label=y),
            num_boost_round=10,
            valid_sets=[lgb.Dataset(Xv, label=yv)],
            callbacks=[explode],
        )
    assert caught.value is boom

    run = only_run()
    assert run.info.status == "FAILED"
    assert [step for step, _ in history(run.info.run_id, "valid_0-l2")] == [0, 1, 2]
    logged = runyard.last_logged_model()
    assert logged is not None
    assert logged.status == "FAILED"
    assert runyard.active_run() is None


def test_disable_and_reenable(autolog_off: str, regression: tuple[np.ndarray, ...]) -> None:
    X, y, _, _ = regression
    rlgb.autolog()
    rlgb.autolog(disable=True)
    lgb.train(REGRESSION_PARAMS, lgb.Dataset(X, label=y), num_boost_round=2)
    lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(X, y)
    assert runyard.search_runs(output_format="list") == []

    rlgb.autolog(log_models=False, extra_tags={"team": "trees"})
    lgb.LGBMRegressor(n_estimators=3, n_jobs=1, verbose=-1).fit(X, y)
    run = only_run()
    assert run.data.params["num_boost_round"] == "3"
    assert run.data.tags["team"] == "trees"
    assert run.data.tags["mlflow.autologging"] == "lightgbm"
    assert run.data.metrics == {}  # no validation set, no metrics
    assert runyard.last_logged_model() is None


def test_registered_model_name_registers_each_logged_model(
    autolog_off: str, regression: tuple[np.ndarray, ...]
) -> None:
    X, y, _, _ = regression
    rlgb.autolog(registered_model_name="trees", log_datasets=False)
    lgb.LGBMRegressor(n_estimators=3, n_jobs=1, verbose=-1).fit(X, y)
    lgb.train(REGRESSION_PARAMS, lgb.Dataset(X, label=y), num_boost_round=2)

    models = runyard.search_logged_models(output_format="list")
    versions = runyard.search_model_versions(filter_string="name='trees'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert {v.model_id for v in versions} == {m.model_id for m in models}
    loaded = rlgb.load_model("models:/trees/1")
    assert type(loaded) is lgb.LGBMRegressor
    assert isinstance(rlgb.load_model("models:/trees/2"), lgb.Booster)
