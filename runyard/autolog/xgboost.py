"""XGBoost autologging: ``runyard.xgboost.autolog()`` (also enabled by ``runyard.autolog()``).

What is logged, under MLflow's names, for ``xgboost.train`` and for the scikit-learn API
(``XGBClassifier.fit`` & co., whose nested ``train`` call does the logging of the training):

* params: the booster params and ``train``'s other arguments (``num_boost_round``,
  ``early_stopping_rounds``, ``maximize``, ``verbose_eval``, ``custom_metric``);
* per-iteration metrics ``<eval name>-<metric>`` at step = iteration (``train-rmse``,
  ``validation_0-logloss``; ``@`` in a metric name becomes ``_at_``);
* with early stopping: ``stopped_iteration``, ``best_iteration``, and the best iteration's
  metrics again at the step after the last;
* ``feature_importance_<type>.json`` and ``.png`` for each of ``importance_types``;
* the model (``model``): the Booster, or the estimator for the scikit-learn API, with its
  signature and input example per the options, registered when ``registered_model_name`` is set;
* the training and validation datasets as run inputs (``train`` / ``eval`` contexts).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from runyard.autolog._boosting import (
    BoostingAutolog,
    DatasetEntry,
    FitSession,
    MetricSink,
    attempt,
)
from runyard.autolog.config import AutologConfig, enable_integration
from runyard.autolog.patching import safe_patch
from runyard.autolog.runs import check_extra_tags

__all__ = ["FLAVOR_NAME", "autolog"]

FLAVOR_NAME = "xgboost"

_DEFAULT_IMPORTANCE_TYPES = ("weight",)


class _XGBoostAutolog(BoostingAutolog):
    integration = FLAVOR_NAME
    unlogged_train_args = frozenset(
        {
            "params",
            "dtrain",
            "evals",
            "obj",
            "feval",
            "evals_result",
            "xgb_model",
            "callbacks",
            "learning_rates",
        }
    )
    importance_json_indent = None
    early_stopping_with_dataset = True

    def train_function(self) -> Callable[..., Any]:
        import xgboost.training

        train: Callable[..., Any] = xgboost.training.train
        return train

    def make_callback(self, sink: MetricSink) -> Any:
        return _callback_class()(sink)

    def train_set(self, arguments: dict[str, Any]) -> Any:
        return arguments.get("dtrain")

    def dataset_entries(
        self, arguments: dict[str, Any], session: FitSession | None
    ) -> list[DatasetEntry]:
        entries: list[DatasetEntry] = []
        dtrain = arguments.get("dtrain")
        if session is not None:
            entries.append((session.X, session.y, "train", None))
        elif dtrain is not None:
            entries.append((dtrain.get_data(), _labels(dtrain), "train", None))
        for dmatrix, name in arguments.get("evals") or ():
            entries.append((dmatrix.get_data(), _labels(dmatrix), "eval", name))
        return entries

    def early_stopping(
        self, arguments: dict[str, Any], callbacks: list[Any], model: Any, sink: MetricSink
    ) -> tuple[int, int, int] | None:
        import xgboost

        requested = bool(arguments.get("early_stopping_rounds")) or any(
            isinstance(cb, xgboost.callback.EarlyStopping) for cb in callbacks
        )
        if not requested:
            return None
        best = int(model.best_iteration)
        return sink.iterations - 1, best, best

    def importances(self, config: AutologConfig, model: Any) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for imp_type in config.extra("importance_types", _DEFAULT_IMPORTANCE_TYPES):
            score = attempt(
                config,
                f"compute the '{imp_type}' feature importance",
                functools.partial(model.get_score, importance_type=imp_type),
            )
            if score is not None:
                found[imp_type] = score
        return found

    def predict(self, model: Any, example: Any) -> Any:
        import xgboost

        return model.predict(xgboost.DMatrix(example))

    def log_model(
        self, config: AutologConfig, model: Any, example: Any, signature: Any, model_id: str | None
    ) -> None:
        from runyard import xgboost as flavor

        flavor.log_model(
            model,
            "model",
            signature=signature,
            input_example=example,
            registered_model_name=config.registered_model_name,
            model_format=config.extra("model_format", "ubj"),
            model_id=model_id,
        )


def _labels(dmatrix: Any) -> Any:
    labels = dmatrix.get_label()
    return labels if labels.size else None


_callback_classes: list[type] = []


def _callback_class() -> type:
    """The ``TrainingCallback`` subclass (defined once xgboost is imported)."""
    if not _callback_classes:
        import xgboost

        class AutologCallback(xgboost.callback.TrainingCallback):
            """Logs the last value of each eval metric after every iteration."""

            def __init__(self, sink: MetricSink) -> None:
                super().__init__()
                self.sink = sink

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                try:
                    metrics = {
                        f"{data}-{metric}": values[-1]
                        for data, per_metric in evals_log.items()
                        for metric, values in per_metric.items()
                    }
                except Exception:  # an odd log shape must not stop training
                    return False
                self.sink.record(metrics, epoch)
                return False

        _callback_classes.append(AutologCallback)
    return _callback_classes[0]


def _estimator_classes() -> list[type]:
    """The scikit-learn-API classes that define their own ``fit``."""
    import xgboost.sklearn

    base = xgboost.sklearn.XGBModel
    return [
        cls
        for _, cls in inspect.getmembers(xgboost.sklearn, inspect.isclass)
        if issubclass(cls, base) and "fit" in vars(cls)
    ]


def autolog(
    importance_types: list[str] | None = None,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Enable (or, with ``disable=True``, disable) autologging of XGBoost training.

    Args:
        importance_types: Feature importance types to log (default ``["weight"]``).
        log_input_examples: Log the first rows of the training data as the input example.
        log_model_signatures: Log the model signature inferred from those rows.
        log_models: Log the trained model (``model``).
        log_datasets: Log the training and validation datasets as run inputs.
        disable: Turn XGBoost autologging off.
        exclusive: Do not log into runs the user started; only into runs autologging creates.
        disable_for_unsupported_versions: Stay off for xgboost versions outside the tested range.
        silent: No warnings or log messages from autologging.
        registered_model_name: Register each logged model as a new version of this model.
        model_format: File format of the saved model: ``"ubj"``, ``"json"`` or ``"xgb"``.
        extra_tags: Tags set on each run autologging creates.
    """
    check_extra_tags(extra_tags)
    types = _DEFAULT_IMPORTANCE_TYPES if importance_types is None else tuple(importance_types)
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
        extras={"importance_types": types, "model_format": model_format},
    )
    if not enable_integration(FLAVOR_NAME, config):
        return
    import xgboost
    import xgboost.sklearn

    flow = _XGBoostAutolog()
    safe_patch(FLAVOR_NAME, xgboost, "train", flow.train)
    # The scikit-learn API's own reference to ``train``, logged when nested in a patched fit.
    safe_patch(FLAVOR_NAME, xgboost.sklearn, "train", flow.train, nested=True)
    safe_patch(FLAVOR_NAME, xgboost.DMatrix, "__init__", flow.dataset_init)
    for cls in _estimator_classes():
        safe_patch(FLAVOR_NAME, cls, "fit", flow.fit)
