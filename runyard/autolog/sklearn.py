"""scikit-learn autologging: ``runyard.sklearn.autolog()``.

Patches ``fit``, ``fit_transform`` and ``fit_predict`` of every estimator
``sklearn.utils.all_estimators()`` lists (Pipeline, GridSearchCV and RandomizedSearchCV included).
The outermost fit logs, into the active run or a run it starts and ends:

* params: ``get_params(deep=True)`` (``deep=False`` for a parameter search, whose seed
  estimator's params are not the ones trained), plus ``best_<param>`` for a search;
* tags ``estimator_name`` and ``estimator_class``;
* training metrics (``training_score``, ``training_accuracy_score``, ...,
  ``training_mean_squared_error``, ...), a normalized confusion matrix (and ROC / PR curves for
  binary classifiers) and ``estimator.html``;
* the model (``model``; ``best_estimator`` too for a search) with signature and input example;
* the training data as a run input with context ``train``;
* for a search: ``best_cv_score``, ``cv_results.csv`` and a child run per candidate.

After the fit, ``predict``/``score`` and ``sklearn.metrics`` calls on that model's predictions are
logged to its run as post-training metrics (see :mod:`runyard.autolog._sklearn_post`).
``cross_val_score`` and its siblings run with autologging paused, as in MLflow.
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runyard.autolog._sklearn_post import PostTrainingMetrics, call_command, is_loggable
from runyard.autolog._sklearn_search import log_search_results
from runyard.autolog._sklearn_utils import (
    TRAINING_PREFIX,
    FitInputs,
    estimator_tags,
    fit_inputs,
    input_example,
    is_search_estimator,
    log_estimator_content,
    log_params,
    make_dataset,
    warn,
)
from runyard.autolog.config import AutologConfig, enable_integration, get_config
from runyard.autolog.patching import capture_warnings, safe_patch
from runyard.autolog.runs import autolog_run
from runyard.errors import InvalidParameterValue
from runyard.tracking import fluent
from runyard.tracking.client import Client

__all__ = ["FLAVOR_NAME", "autolog"]

FLAVOR_NAME = "sklearn"

_TRAINING_METHODS = ("fit", "fit_transform", "fit_predict")
_INFERENCE_METHODS = ("predict", "predict_proba", "transform", "predict_log_proba")
#: model_selection helpers that fit many clones: autologging pauses inside them (MLflow).
_PAUSING_APIS = (
    "cross_validate",
    "cross_val_predict",
    "cross_val_score",
    "learning_curve",
    "permutation_test_score",
    "validation_curve",
)
_NOT_METRICS = {"check_scoring", "get_scorer", "make_scorer", "get_scorer_names"}

_post = PostTrainingMetrics()
# Fits running now in any thread: estimators fitted in worker threads of a fit (joblib's
# threading backend) must not log, and there the thread-local guard of patching cannot see it.
_sessions = 0
_sessions_lock = threading.Lock()


@contextmanager
def _session() -> Iterator[None]:
    global _sessions
    with _sessions_lock:
        _sessions += 1
    try:
        yield
    finally:
        with _sessions_lock:
            _sessions -= 1


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Enable (or disable) and configure autologging for scikit-learn estimators.

    Args:
        log_input_examples: Save the first rows of the training data as the input example.
        log_model_signatures: Infer the model signature from the training data.
        log_models: Log the fitted model as ``model`` (and ``best_estimator`` for a search).
        log_datasets: Record training (context ``train``) and evaluation (``eval``) datasets.
        disable: Turn scikit-learn autologging off.
        exclusive: Never log into runs the user started.
        disable_for_unsupported_versions: Do nothing on an untested scikit-learn version.
        silent: No warnings or event logs from autologging.
        max_tuning_runs: Child runs for the best ``k`` candidates of a parameter search (all
            when None).
        log_post_training_metrics: Log ``score()`` and ``sklearn.metrics`` calls made after the
            fit on the model's predictions.
        serialization_format: The model file format (``runyard.sklearn`` default when None).
        registered_model_name: Register each logged model as a new version of this model.
        pos_label: The positive label for binary precision/recall/f1 training metrics.
        extra_tags: Tags added to the runs autologging creates.
    """
    if max_tuning_runs is not None and max_tuning_runs < 0:
        raise InvalidParameterValue(
            f"`max_tuning_runs` must be non-negative, instead got {max_tuning_runs}."
        )
    config = AutologConfig(
        log_models=log_models,
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_datasets=log_datasets,
        disable=disable,
        exclusive=exclusive,
        disable_for_unsupported_versions=disable_for_unsupported_versions,
        silent=silent,
        registered_model_name=registered_model_name,
        extra_tags=extra_tags,
        extras={
            "max_tuning_runs": max_tuning_runs,
            "log_post_training_metrics": log_post_training_metrics,
            "serialization_format": serialization_format,
            "pos_label": pos_label,
        },
    )
    if enable_integration(FLAVOR_NAME, config):
        _install_patches()


@functools.lru_cache(maxsize=1)
def _estimator_classes() -> tuple[type, ...]:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    classes = {cls for _, cls in all_estimators()} | {GridSearchCV, RandomizedSearchCV, Pipeline}
    return tuple(sorted(classes, key=lambda c: (c.__module__, c.__qualname__)))


def _metric_names() -> list[str]:
    import sklearn.metrics

    return [
        name
        for name in sklearn.metrics.__all__
        if name not in _NOT_METRICS
        and not name.startswith("plot_")
        and not inspect.isclass(getattr(sklearn.metrics, name, None))
        and callable(getattr(sklearn.metrics, name, None))
    ]


def _patch_if_possible(owner: Any, name: str, wrapper: Any) -> None:
    if not hasattr(owner, name):
        return
    try:
        safe_patch(FLAVOR_NAME, owner, name, wrapper)
    except InvalidParameterValue:  # a property (FeatureAgglomeration.fit_predict): not patched
        return


def _install_patches() -> None:
    import sklearn.metrics
    import sklearn.model_selection

    for cls in _estimator_classes():
        for name in _TRAINING_METHODS:
            _patch_if_possible(cls, name, _patched_fit)
        for name in _INFERENCE_METHODS:
            _patch_if_possible(cls, name, _patched_predict)
        _patch_if_possible(cls, "score", _patched_score)
    for name in _metric_names():
        _patch_if_possible(sklearn.metrics, name, _patched_metric)
    for name in _PAUSING_APIS:
        _patch_if_possible(sklearn.model_selection, name, _paused)


# -- training ------------------------------------------------------------------------------------
def _patched_fit(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    config = get_config(FLAVOR_NAME)
    if config is None or _sessions:
        return original(self, *args, **kwargs)
    with _session(), autolog_run(FLAVOR_NAME, config) as run:
        result = _fit_and_log(config, run.info.run_id, original, self, args, kwargs)
    if config.extra("log_post_training_metrics", True):
        _post.register_model(self, run.info.run_id)
    return result


def _fit_and_log(
    config: AutologConfig,
    run_id: str,
    original: Any,
    estimator: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    inputs = fit_inputs(original, args, kwargs)
    example = None
    with capture_warnings(config.silent):
        _log_pretraining(config, run_id, estimator, inputs)
        if config.log_models and (config.log_input_examples or config.log_model_signatures):
            try:
                example = input_example(inputs.X)
            except Exception as exc:
                warn(config, "Failed to gather input example: %s", exc)
    result = original(estimator, *args, **kwargs)
    with capture_warnings(config.silent):
        _log_posttraining(config, run_id, estimator, inputs, example)
    return result


def _log_pretraining(config: AutologConfig, run_id: str, estimator: Any, inputs: FitInputs) -> None:
    try:
        log_params(run_id, estimator.get_params(deep=not is_search_estimator(estimator)))
        fluent.set_tags(estimator_tags(estimator))
    except Exception as exc:
        warn(config, "Failed to log parameters of %s: %s", type(estimator).__name__, exc)
    if not config.log_datasets:
        return
    try:
        dataset = make_dataset(inputs.X, inputs.y)
        if dataset is None:
            warn(config, "Unrecognized dataset type %s. Dataset logging skipped.", type(inputs.X))
        else:
            fluent.log_input(dataset, context="train")
    except Exception as exc:
        warn(config, "Failed to log training dataset information. Reason: %s", exc)


def _infer_signature(estimator: Any, example: Any) -> Any:
    from runyard.models import infer_signature

    if hasattr(estimator, "predict"):
        output = estimator.predict(copy.deepcopy(example))
    elif hasattr(estimator, "transform"):
        output = estimator.transform(copy.deepcopy(example))
    else:
        raise InvalidParameterValue(
            "the trained model does not have a `predict` or `transform` function, which is "
            "required in order to infer the signature"
        )
    return infer_signature(example, output)


def _log_model(
    config: AutologConfig,
    estimator: Any,
    name: str,
    example: Any,
    params: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
) -> Any:
    import runyard.sklearn

    signature: Any = False
    if config.log_model_signatures and example is not None:
        try:
            signature = _infer_signature(estimator, example)
        except Exception as exc:
            warn(config, "Failed to infer model signature: %s", exc)
            signature = False
    return runyard.sklearn.log_model(
        estimator,
        name=name,
        signature=signature,
        input_example=example if config.log_input_examples else None,
        serialization_format=config.extra("serialization_format"),
        registered_model_name=registered_model_name,
        params={str(k): str(v) for k, v in (params or {}).items()},
    )


def _log_posttraining(
    config: AutologConfig, run_id: str, estimator: Any, inputs: FitInputs, example: Any
) -> None:
    search = is_search_estimator(estimator)
    if config.log_models:
        params = estimator.get_params(deep=not search)
        params.update({f"best_{k}": v for k, v in getattr(estimator, "best_params_", {}).items()})
        try:
            _log_model(config, estimator, "model", example, params, config.registered_model_name)
        except Exception as exc:
            warn(config, "Failed to log the %s model: %s", type(estimator).__name__, exc)
    log_estimator_content(config, run_id, estimator, inputs, TRAINING_PREFIX)
    if search:
        log_search_results(
            config,
            run_id,
            estimator,
            FLAVOR_NAME,
            lambda best: _log_model(
                config, best, "best_estimator", example, best.get_params(deep=True)
            ),
        )


# -- post-training metrics -----------------------------------------------------------------------
def _post_run(config: AutologConfig | None, model: Any) -> str | None:
    if config is None or not config.extra("log_post_training_metrics", True) or _sessions:
        return None
    return _post.run_for_model(model)


def _first_arg(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    names = [n for n in inspect.signature(original).parameters if n != "self"]
    return kwargs.get(names[0]) if names else None


def _patched_predict(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    result = original(self, *args, **kwargs)
    config = get_config(FLAVOR_NAME)
    run_id = _post_run(config, self)
    if config is None or run_id is None:
        return result
    with capture_warnings(config.silent):
        dataset = _first_arg(original, args, kwargs)
        _post.register_prediction(run_id, _post.dataset_name(run_id, dataset), result)
        if config.log_datasets and _post.first_eval_use(run_id, dataset):
            described = make_dataset(dataset)
            if described is not None:
                Client().log_inputs(run_id, [_eval_input(described)])
    return result


def _eval_input(dataset: Any) -> Any:
    from runyard.entities import DatasetInput, InputTag

    return DatasetInput(dataset.to_entity(), [InputTag("mlflow.data.context", "eval")])


def _patched_score(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    value = original(self, *args, **kwargs)
    config = get_config(FLAVOR_NAME)
    run_id = _post_run(config, self)
    if config is None or run_id is None or not is_loggable(value):
        return value
    with capture_warnings(config.silent):
        cls = type(self).__name__
        dataset_name = _post.dataset_name(run_id, _first_arg(original, args, kwargs))
        command = call_command(f"{cls}.{original.__name__}", original, args, kwargs, skip=1)
        key = _post.metric_key(run_id, f"{cls}_score", dataset_name, command)
        _post.log(run_id, key, value)
    return value


def _patched_metric(original: Any, *args: Any, **kwargs: Any) -> Any:
    value = original(*args, **kwargs)
    config = get_config(FLAVOR_NAME)
    if (
        config is None
        or not config.extra("log_post_training_metrics", True)
        or _sessions
        or not is_loggable(value)
    ):
        return value
    found = _post.find_prediction(args, kwargs)
    if found is None:
        return value
    run_id, dataset_name = found
    with capture_warnings(config.silent):
        command = call_command(original.__name__, original, args, kwargs, skip=0)
        key = _post.metric_key(run_id, original.__name__, dataset_name, command)
        _post.log(run_id, key, value)
    return value


def _paused(original: Any, *args: Any, **kwargs: Any) -> Any:
    # Running inside a patched call is the pause: fits nested in it call their originals.
    return original(*args, **kwargs)
