"""runyard.xgboost.autolog: xgboost.train and the scikit-learn API log params, metrics per
iteration, early stopping, feature importance, datasets and the model, under MLflow's names.

Every test trains a real (small) XGBoost model; expected values come from XGBoost itself
(``evals_result``, ``get_score``, ``predict``), so the logged values are compared exactly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from matplotlib.image import imread
from sklearn.datasets import load_iris, make_regression

import runyard
import runyard.xgboost as rxgb
from runyard.autolog import INTEGRATIONS
from runyard.autolog.patching import revert_patches
from runyard.errors import InvalidParameterValue
from runyard.models import Model

IRIS_PARAMS = {
    "objective": "multi:softprob",
    "num_class": 3,
    "max_depth": 2,
    "nthread": 1,
    "eval_metric": "mlogloss",
}
#: ``xgboost.train``'s own arguments that autologging logs (the others are data or callables).
TRAIN_ARG_DEFAULTS = {
    "maximize": "None",
    "early_stopping_rounds": "None",
    "verbose_eval": "True",
    "custom_metric": "None",
}


@pytest.fixture
def autolog_off(tracking_env: str) -> Iterator[str]:
    """A clean tracking store; autologging disabled and unpatched afterwards."""
    yield tracking_env
    runyard.autolog(disable=True)
    for integration in INTEGRATIONS:
        revert_patches(integration)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = make_regression(n_samples=240, n_features=5, noise=25.0, random_state=0)
    return X[:160], y[:160], X[160:], y[160:]


def only_run() -> Any:
    runs = runyard.search_runs(output_format="list")
    assert len(runs) == 1
    return runyard.get_run(runs[0].info.run_id)


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in runyard.Client().get_metric_history(run_id, key)]


def artifact_paths(run_id: str) -> list[str]:
    return sorted(f.path for f in runyard.Client().list_artifacts(run_id))


def artifact_json(run_id: str, path: str) -> Any:
    return json.loads(Path(runyard.Client().download_artifacts(run_id, path)).read_text())


def saved_model(logged: Any) -> tuple[Model, Path]:
    """The logged model's MLmodel and its (local) directory."""
    local = Path(logged.artifact_location)
    return Model.load(local), local


def dataset_contexts(run: Any) -> list[tuple[str, str]]:
    """(dataset name, context) of each run input, sorted."""
    found = []
    for item in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        found.append((item.dataset.name, tags["mlflow.data.context"]))
    return sorted(found)


def test_train_logs_params_metrics_importance_datasets_and_model(
    autolog_off: str, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    rxgb.autolog(log_input_examples=True)
    dtrain = xgb.DMatrix(X, label=y)
    evals_result: dict[str, Any] = {}
    booster = xgb.train(
        IRIS_PARAMS,
        dtrain,
        num_boost_round=5,
        evals=[(dtrain, "train")],
        evals_result=evals_result,
        verbose_eval=False,
    )

    run = only_run()
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.autologging"] == "xgboost"
    assert run.data.params == {
        **{k: str(v) for k, v in IRIS_PARAMS.items()},
        **TRAIN_ARG_DEFAULTS,
        "num_boost_round": "5",
        "verbose_eval": "False",
    }
    expected = evals_result["train"]["mlogloss"]
    assert len(expected) == 5
    assert history(run_id, "train-mlogloss") == list(enumerate(expected))
    assert run.data.metrics == {"train-mlogloss": expected[-1]}

    assert artifact_paths(run_id) == [
        "feature_importance_weight.json",
        "feature_importance_weight.png",
    ]
    assert artifact_json(run_id, "feature_importance_weight.json") == booster.get_score(
        importance_type="weight"
    )
    png = imread(runyard.Client().download_artifacts(run_id, "feature_importance_weight.png"))
    assert png.shape[:2] == (480, 640)

    assert dataset_contexts(run) == [("dataset", "train"), ("train", "eval")]

    logged = runyard.last_logged_model()
    assert logged is not None
    assert (logged.name, logged.source_run_id, logged.status) == ("model", run_id, "READY")
    assert logged.params["num_boost_round"] == "5"
    assert {m.key for m in logged.metrics} == {"train-mlogloss"}
    loaded = rxgb.load_model(logged.model_uri)
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_allclose(loaded.predict(dtrain), booster.predict(dtrain))
    mlmodel, local = saved_model(logged)
    assert mlmodel.signature is not None
    assert mlmodel.signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}
    ]
    assert mlmodel.signature.outputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}
    ]
    np.testing.assert_allclose(mlmodel.load_input_example(local), X[:5])


def test_early_stopping_logs_stop_and_best_iteration_metrics(
    autolog_off: str, regression: tuple[np.ndarray, ...]
) -> None:
    X, y, Xv, yv = regression
    rxgb.autolog(log_models=False)
    dtrain, dvalid = xgb.DMatrix(X, label=y), xgb.DMatrix(Xv, label=yv)
    evals_result: dict[str, Any] = {}
    booster = xgb.train(
        {"max_depth": 4, "eta": 0.9, "nthread": 1, "seed": 0},
        dtrain,
        num_boost_round=200,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=3,
        evals_result=evals_result,
        verbose_eval=False,
    )

    run = only_run()
    run_id = run.info.run_id
    rounds = len(evals_result["valid"]["rmse"])
    assert rounds < 200  # training stopped early
    best = booster.best_iteration
    assert rounds == best + 4
    assert run.data.params["early_stopping_rounds"] == "3"
    assert run.data.metrics["stopped_iteration"] == rounds - 1
    assert run.data.metrics["best_iteration"] == best
    for name in ("train", "valid"):
        values = evals_result[name]["rmse"]
        # Every iteration at its step, then the best iteration's value one step past the last.
        assert history(run_id, f"{name}-rmse") == [*enumerate(values), (rounds, values[best])]
        assert run.data.metrics[f"{name}-rmse"] == values[best]
    assert runyard.last_logged_model() is None


def test_sklearn_api_logs_through_the_nested_train_and_logs_the_estimator(
    autolog_off: str, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    frame = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    rxgb.autolog(log_input_examples=True, importance_types=["weight", "gain"])
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1)
    model.fit(frame, y, eval_set=[(frame, y)], verbose=False)

    run = only_run()  # one run: the nested train call logged into fit's
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    booster_params = model.get_xgb_params()
    assert set(run.data.params) == {*booster_params, "num_class", "num_boost_round"} | set(
        TRAIN_ARG_DEFAULTS
    )
    assert run.data.params["num_boost_round"] == "4"
    assert run.data.params["max_depth"] == "2"
    assert run.data.params["objective"] == "multi:softprob"
    assert run.data.params["num_class"] == "3"
    expected = model.evals_result()["validation_0"]["mlogloss"]
    assert history(run_id, "validation_0-mlogloss") == list(enumerate(expected))
    assert set(run.data.metrics) == {"validation_0-mlogloss"}

    assert artifact_paths(run_id) == [
        "feature_importance_gain.json",
        "feature_importance_gain.png",
        "feature_importance_weight.json",
        "feature_importance_weight.png",
    ]
    gain = artifact_json(run_id, "feature_importance_gain.json")
    assert gain == pytest.approx(model.get_booster().get_score(importance_type="gain"))
    assert set(gain) <= set(frame.columns)

    assert dataset_contexts(run) == [("dataset", "train"), ("validation_0", "eval")]
    train_input = next(i for i in run.inputs.dataset_inputs if i.dataset.name == "dataset")
    schema = json.loads(train_input.dataset.schema)
    assert [c["name"] for c in schema["mlflow_colspec"]] == list(frame.columns)

    logged = runyard.last_logged_model()
    assert logged is not None
    assert logged.source_run_id == run_id
    assert {m.key for m in logged.metrics} == {"validation_0-mlogloss"}
    loaded = rxgb.load_model(logged.model_uri)
    assert type(loaded) is xgb.XGBClassifier
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    mlmodel, local = saved_model(logged)
    assert mlmodel.signature is not None
    assert [c["name"] for c in mlmodel.signature.inputs.to_dict()] == list(frame.columns)
    pd.testing.assert_frame_equal(mlmodel.load_input_example(local), frame.iloc[:5])


def test_user_run_is_reused_and_left_open(
    autolog_off: str, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    rxgb.autolog(log_models=False, log_datasets=False, extra_tags={"team": "trees"})
    with runyard.start_run() as run:
        runyard.log_param("owner", "me")
        xgb.train(IRIS_PARAMS, xgb.DMatrix(X, label=y), num_boost_round=2)
        assert runyard.active_run() is not None
    logged = runyard.get_run(run.info.run_id)
    assert logged.data.params["owner"] == "me"
    assert logged.data.params["num_boost_round"] == "2"
    assert "mlflow.autologging" not in logged.data.tags  # the user's run, not autolog's
    assert "team" not in logged.data.tags
    assert logged.data.metrics == {}  # no evals, no metrics
    assert logged.inputs.dataset_inputs == []


def test_failing_training_ends_the_run_failed_with_the_same_exception(
    autolog_off: str, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    rxgb.autolog()
    boom = RuntimeError("out of memory at iteration 2")

    class Explode(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if epoch == 2:
                raise boom
            return False

    dtrain = xgb.DMatrix(X, label=y)
    with pytest.raises(RuntimeError) as caught:
        xgb.train(
            IRIS_PARAMS,
            dtrain,
            10,
            evals=[(dtrain, "train")],
            callbacks=[Explode()],
            verbose_eval=False,
        )
    assert caught.value is boom

    run = only_run()
    assert run.info.status == "FAILED"
    # Iterations 0 and 1 were logged; the user's callback stopped iteration 2 before ours ran.
    assert [step for step, _ in history(run.info.run_id, "train-mlogloss")] == [0, 1]
    logged = runyard.last_logged_model()
    assert logged is not None
    assert logged.status == "FAILED"
    assert runyard.active_run() is None


def test_disable_and_reenable(autolog_off: str, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    rxgb.autolog(log_models=False)
    rxgb.autolog(disable=True)
    xgb.train(IRIS_PARAMS, xgb.DMatrix(X, label=y), num_boost_round=2)
    xgb.XGBClassifier(n_estimators=2, n_jobs=1).fit(X, y)
    assert runyard.search_runs(output_format="list") == []

    runyard.autolog(log_models=False, exclusive=True)  # the top-level switch enables xgboost too
    with runyard.start_run():  # exclusive: the user's run is left alone
        xgb.train(IRIS_PARAMS, xgb.DMatrix(X, label=y), num_boost_round=2)
    xgb.train(IRIS_PARAMS, xgb.DMatrix(X, label=y), num_boost_round=3)
    runs = runyard.search_runs(output_format="list", order_by=["start_time ASC"])
    assert [r.data.params.get("num_boost_round") for r in runs] == [None, "3"]


def test_invalid_extra_tags_are_refused(autolog_off: str) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid `extra_tags` type"):
        rxgb.autolog(extra_tags=["not", "a", "dict"])  # type: ignore[arg-type]


def test_metric_names_with_at_are_sanitized_and_a_failing_step_only_warns(
    autolog_off: str, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    dtrain = xgb.DMatrix(rng.normal(size=(60, 3)), label=rng.integers(0, 3, size=60))
    dtrain.set_group([20, 20, 20])
    rxgb.autolog(log_models=False, log_datasets=False, importance_types=["weight", "no-such"])
    params = {"objective": "rank:ndcg", "eval_metric": "ndcg@2", "nthread": 1}
    evals_result: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        booster = xgb.train(
            params,
            dtrain,
            3,
            evals=[(dtrain, "train")],
            evals_result=evals_result,
            verbose_eval=False,
        )

    assert isinstance(booster, xgb.Booster)  # training is unaffected by the failing step
    run = only_run()
    assert run.info.status == "FINISHED"
    expected = evals_result["train"]["ndcg@2"]
    assert history(run.info.run_id, "train-ndcg_at_2") == list(enumerate(expected))
    assert set(run.data.metrics) == {"train-ndcg_at_2"}
    assert artifact_paths(run.info.run_id) == [
        "feature_importance_weight.json",
        "feature_importance_weight.png",
    ]
    assert "Failed to compute the 'no-such' feature importance" in caplog.text
