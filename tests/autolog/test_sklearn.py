"""scikit-learn autologging on real models and a real SQLite store."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import runyard
from runyard.autolog import versions
from runyard.autolog.config import get_config
from runyard.autolog.patching import revert_patches
from runyard.autolog.runs import AUTOLOGGING_TAG
from runyard.entities import Run

CLASSIFIER_METRICS = {
    "training_accuracy_score",
    "training_f1_score",
    "training_log_loss",
    "training_precision_score",
    "training_recall_score",
    "training_roc_auc",
    "training_score",
}


@pytest.fixture
def autolog(tracking_env: str) -> Iterator[Any]:
    """``runyard.sklearn.autolog`` (call it with the options a test needs); undone afterwards."""
    yield runyard.sklearn.autolog
    runyard.sklearn.autolog(disable=True)
    revert_patches("sklearn")


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any, Any, Any]:
    X, y = load_iris(return_X_y=True)
    return tuple(train_test_split(X, y, random_state=0))  # type: ignore[return-value]


def last_run() -> Run:
    run = runyard.last_active_run()
    assert run is not None
    return run


def run_models(run_id: str) -> dict[str, Any]:
    models = runyard.search_logged_models(output_format="list")
    return {m.name: m for m in models if m.source_run_id == run_id}


def artifact_paths(run_id: str, path: str | None = None) -> set[str]:
    return {f.path for f in runyard.MlflowClient().list_artifacts(run_id, path)}


def test_logistic_regression_on_iris(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog()
    model = LogisticRegression(max_iter=300)
    assert model.fit(X_train, y_train) is model
    run = last_run()
    assert run.info.status == "FINISHED"
    assert runyard.active_run() is None

    assert run.data.params == {k: str(v) for k, v in model.get_params(deep=True).items()}
    tags = run.data.tags
    assert tags[AUTOLOGGING_TAG] == "sklearn"
    assert tags["estimator_name"] == "LogisticRegression"
    assert tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"

    pred, proba = model.predict(X_train), model.predict_proba(X_train)
    expected = {
        "training_score": model.score(X_train, y_train),
        "training_accuracy_score": skm.accuracy_score(y_train, pred),
        "training_precision_score": skm.precision_score(y_train, pred, average="weighted"),
        "training_recall_score": skm.recall_score(y_train, pred, average="weighted"),
        "training_f1_score": skm.f1_score(y_train, pred, average="weighted"),
        "training_log_loss": skm.log_loss(y_train, proba),
        "training_roc_auc": skm.roc_auc_score(
            y_train, proba, average="weighted", multi_class="ovo"
        ),
    }
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    for key, value in expected.items():
        assert run.data.metrics[key] == pytest.approx(value), key

    assert {"estimator.html", "training_confusion_matrix.png"} <= artifact_paths(run.info.run_id)
    [dataset_input] = run.inputs.dataset_inputs
    assert {t.key: t.value for t in dataset_input.tags} == {"mlflow.data.context": "train"}
    assert json.loads(dataset_input.dataset.profile)["features_shape"] == [len(X_train), 4]

    logged = run_models(run.info.run_id)
    assert set(logged) == {"model"}
    loaded = runyard.sklearn.load_model(f"models:/{logged['model'].model_id}")
    np.testing.assert_array_equal(loaded.predict(X_train), pred)
    info = runyard.pyfunc.load_model(f"models:/{logged['model'].model_id}").metadata
    assert info.signature is not None
    assert info.saved_input_example_info is None  # log_input_examples defaults to False


def test_input_example_and_no_signature(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(log_input_examples=True, log_model_signatures=False)
    LogisticRegression(max_iter=300).fit(X_train, y_train)
    model_id = run_models(last_run().info.run_id)["model"].model_id
    info = runyard.pyfunc.load_model(f"models:/{model_id}").metadata
    assert info.signature is None
    assert info.saved_input_example_info is not None


def test_binary_classifier_logs_curves(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(log_models=False)
    binary = y_train == 0
    LogisticRegression().fit(X_train, binary)
    assert {
        "training_confusion_matrix.png",
        "training_roc_curve.png",
        "training_precision_recall_curve.png",
    } <= artifact_paths(last_run().info.run_id)


def test_regressor_metrics(autolog: Any) -> None:
    X, y = load_diabetes(return_X_y=True)
    autolog(log_models=False)
    model = LinearRegression().fit(X, y)
    run = last_run()
    pred = model.predict(X)
    mse = skm.mean_squared_error(y, pred)
    assert run.data.metrics == pytest.approx(
        {
            "training_score": model.score(X, y),
            "training_mean_squared_error": mse,
            "training_root_mean_squared_error": math.sqrt(mse),
            "training_mean_absolute_error": skm.mean_absolute_error(y, pred),
            "training_r2_score": skm.r2_score(y, pred),
        }
    )
    assert run.data.tags["estimator_name"] == "LinearRegression"
    assert run_models(run.info.run_id) == {}
    assert "training_confusion_matrix.png" not in artifact_paths(run.info.run_id)


def test_pipeline_logs_deep_params_in_one_run(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(log_models=False)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5))
    pipe.fit(X_train, y_train)
    run = last_run()
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.params["logisticregression__C"] == "0.5"
    assert run.data.params["standardscaler__with_mean"] == "True"
    assert run.data.params == {k: str(v) for k, v in pipe.get_params(deep=True).items()}
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    # The steps' own fits ran inside the pipeline's and created no runs.
    assert len(runyard.search_runs(output_format="list")) == 1


def test_grid_search_child_runs(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(max_tuning_runs=2)
    grid = {"C": [0.01, 0.1, 1.0], "fit_intercept": [True, False]}
    search = GridSearchCV(LogisticRegression(max_iter=300), grid, cv=3)
    search.fit(X_train, y_train)
    parent = last_run()
    assert parent.data.tags["estimator_name"] == "GridSearchCV"
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert parent.data.params["best_fit_intercept"] == str(search.best_params_["fit_intercept"])
    assert parent.data.params["param_grid"] == str(grid)
    assert "estimator__C" not in parent.data.params  # the seed's untuned params are not logged
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "cv_results.csv" in artifact_paths(parent.info.run_id)
    assert set(run_models(parent.info.run_id)) == {"model", "best_estimator"}

    children = runyard.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert len(children) == 2
    ranks = sorted(int(c.data.metrics["rank_test_score"]) for c in children)
    assert ranks == sorted(search.cv_results_["rank_test_score"])[:2]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["estimator_name"] == "LogisticRegression"
        assert child.data.tags[AUTOLOGGING_TAG] == "sklearn"
        assert child.data.params["max_iter"] == "300"
        assert {"mean_test_score", "std_test_score", "mean_fit_time"} <= set(child.data.metrics)
        assert not any(k.startswith(("split", "param")) for k in child.data.metrics)
    best = min(children, key=lambda c: c.data.metrics["rank_test_score"])
    assert best.data.params["C"] == str(search.best_params_["C"])
    # One parent and two children: the candidates' fits created no runs of their own.
    assert len(runyard.search_runs(output_format="list")) == 3


def test_max_tuning_runs_must_be_non_negative(autolog: Any) -> None:
    with pytest.raises(runyard.MlflowException, match="must be non-negative, instead got -1"):
        autolog(max_tuning_runs=-1)


def test_post_training_metrics(autolog: Any, iris: Any) -> None:
    X_train, X_test, y_train, y_test = iris
    autolog(log_models=False)
    model = LogisticRegression(max_iter=300).fit(X_train, y_train)
    run_id = last_run().info.run_id

    score = model.score(X_test, y_test)
    y_pred = model.predict(X_test)
    acc = skm.accuracy_score(y_test, y_pred)
    acc_again = skm.accuracy_score(y_test, y_pred, normalize=False)
    f1 = skm.f1_score(y_test, y_pred, average="macro")
    skm.accuracy_score(y_test, y_test)  # not a prediction of an autologged model: not logged

    metrics = runyard.get_run(run_id).data.metrics
    post = {k: v for k, v in metrics.items() if not k.startswith("training_")}
    assert post == pytest.approx(
        {
            "LogisticRegression_score_X_test": score,
            "accuracy_score_X_test": acc,
            "accuracy_score-2_X_test": acc_again,
            "f1_score_X_test": f1,
        }
    )
    local = runyard.artifacts.download_artifacts(run_id=run_id, artifact_path="metric_info.json")
    with open(local, encoding="utf-8") as fh:
        info = json.load(fh)
    assert info["accuracy_score_X_test"] == "accuracy_score(y_true=y_test, y_pred=y_pred)"
    assert info["accuracy_score-2_X_test"] == (
        "accuracy_score(y_true=y_test, y_pred=y_pred, normalize=False)"
    )
    assert info["LogisticRegression_score_X_test"] == (
        "LogisticRegression.score(X=X_test, y=y_test)"
    )
    contexts = [
        {t.key: t.value for t in d.tags}["mlflow.data.context"]
        for d in runyard.get_run(run_id).inputs.dataset_inputs
    ]
    assert sorted(contexts) == ["eval", "train"]


def test_post_training_metrics_can_be_off(autolog: Any, iris: Any) -> None:
    X_train, X_test, y_train, y_test = iris
    autolog(log_models=False, log_post_training_metrics=False)
    model = LogisticRegression(max_iter=300).fit(X_train, y_train)
    run_id = last_run().info.run_id
    model.score(X_test, y_test)
    skm.accuracy_score(y_test, model.predict(X_test))
    assert set(runyard.get_run(run_id).data.metrics) == CLASSIFIER_METRICS


def test_disable_and_re_enable(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(log_models=False)
    autolog(disable=True)
    assert get_config("sklearn") is None
    LogisticRegression(max_iter=300).fit(X_train, y_train)
    assert runyard.search_runs(output_format="list") == []
    autolog(log_models=False)
    LogisticRegression(max_iter=300).fit(X_train, y_train)
    assert len(runyard.search_runs(output_format="list")) == 1


def test_failing_fit_ends_failed_with_the_same_exception(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    bad = X_train.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN") as plain:
        LogisticRegression().fit(bad, y_train)
    autolog(log_models=False)
    with pytest.raises(ValueError, match="NaN") as logged:
        LogisticRegression().fit(bad, y_train)
    assert type(logged.value) is type(plain.value)
    assert str(logged.value) == str(plain.value)
    run = last_run()
    assert run.info.status == "FAILED"
    assert run.data.params["C"] == "1.0"  # logged before training failed
    assert run.data.metrics == {}
    assert runyard.active_run() is None


def test_reuses_the_active_run(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(log_models=False)
    with runyard.start_run() as user_run:
        LogisticRegression(max_iter=300).fit(X_train, y_train)
        active = runyard.active_run()
        assert active is not None
        assert active.info.run_id == user_run.info.run_id
    run = runyard.get_run(user_run.info.run_id)
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert AUTOLOGGING_TAG not in run.data.tags
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    assert len(runyard.search_runs(output_format="list")) == 1


def test_exclusive_stays_out_of_user_runs(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(log_models=False, exclusive=True)
    with runyard.start_run() as user_run:
        LogisticRegression(max_iter=300).fit(X_train, y_train)
    run = runyard.get_run(user_run.info.run_id)
    assert run.data.params == {}
    assert run.data.metrics == {}
    assert len(runyard.search_runs(output_format="list")) == 1
    LogisticRegression(max_iter=300).fit(X_train, y_train)
    assert last_run().data.tags[AUTOLOGGING_TAG] == "sklearn"
    assert len(runyard.search_runs(output_format="list")) == 2


def test_extra_tags_and_registered_model(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(extra_tags={"team": "search"}, registered_model_name="iris-clf")
    LogisticRegression(max_iter=300).fit(X_train, y_train)
    run = last_run()
    assert run.data.tags["team"] == "search"
    versions_ = runyard.search_model_versions(filter_string="name = 'iris-clf'")
    assert [v.run_id for v in versions_] == [run.info.run_id]


def test_unsupervised_fit_predict_and_transformers(autolog: Any, iris: Any) -> None:
    X_train, _, _, _ = iris
    autolog(log_models=False)
    labels = KMeans(n_clusters=3, n_init=2, random_state=0).fit_predict(X_train)
    assert labels.shape == (len(X_train),)
    kmeans_run = last_run()
    assert kmeans_run.data.tags["estimator_name"] == "KMeans"
    assert kmeans_run.data.params["n_clusters"] == "3"
    assert kmeans_run.data.metrics == {}  # no labels: no training metrics (as MLflow)
    scaled = StandardScaler().fit_transform(X_train)
    assert scaled.shape == X_train.shape
    assert last_run().data.tags["estimator_name"] == "StandardScaler"
    assert len(runyard.search_runs(output_format="list")) == 2


def test_cross_val_score_pauses_autologging(autolog: Any, iris: Any) -> None:
    X_train, _, y_train, _ = iris
    autolog(log_models=False)
    from sklearn import model_selection

    scores = model_selection.cross_val_score(LogisticRegression(max_iter=300), X_train, y_train)
    assert len(scores) == 5
    assert runyard.search_runs(output_format="list") == []
    # The name imported before autolog() was enabled is the unpatched function, as in MLflow.
    assert len(cross_val_score(LogisticRegression(max_iter=300), X_train, y_train, cv=2)) == 2


def test_silent_hides_autolog_warnings(
    autolog: Any, iris: Any, caplog: pytest.LogCaptureFixture
) -> None:
    X_train, _, y_train, _ = iris
    rows, labels = X_train.tolist(), y_train.tolist()  # lists: a dataset type not described
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        autolog(log_models=False)
        LogisticRegression(max_iter=300).fit(rows, labels)
    assert "Unrecognized dataset type" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        autolog(log_models=False, silent=True)
        LogisticRegression(max_iter=300).fit(rows, labels)
    assert caplog.text == ""
    assert set(last_run().data.metrics) == CLASSIFIER_METRICS


def test_unsupported_version_warns_and_still_logs(
    autolog: Any, iris: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    X_train, _, y_train, _ = iris
    monkeypatch.setitem(
        versions.SUPPORTED_VERSIONS,
        "sklearn",
        versions.VersionRange("scikit-learn", "sklearn", "0.20", "0.21"),
    )
    monkeypatch.setattr(versions, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        autolog(log_models=False)
    assert "unsupported version of scikit-learn" in caplog.text
    LogisticRegression(max_iter=300).fit(X_train, y_train)
    assert last_run().data.tags["estimator_name"] == "LogisticRegression"

    autolog(log_models=False, disable_for_unsupported_versions=True)
    assert get_config("sklearn") is None
    LogisticRegression(max_iter=300).fit(X_train, y_train)
    assert len(runyard.search_runs(output_format="list")) == 1
