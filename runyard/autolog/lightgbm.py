"""LightGBM autologging: ``runyard.lightgbm.autolog()`` (also enabled by ``runyard.autolog()``).

What is logged, under MLflow's names, for ``lightgbm.train`` and for the scikit-learn API
(``LGBMClassifier.fit`` & co., whose nested ``train`` call does the logging of the training):

* params: the booster params and ``train``'s other arguments (``num_boost_round``,
  ``keep_training_booster``);
* per-iteration metrics ``<valid name>-<metric>`` at step = iteration (``valid_0-l2``,
  ``training-multi_logloss``; ``@`` in a metric name becomes ``_at_``);
* with early stopping: ``stopped_iteration``, ``best_iteration``, and the best iteration's
  metrics again at the step after the last;
* ``feature_importance_split`` and ``feature_importance_gain`` as ``.json`` and ``.png``;
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

FLAVOR_NAME = "lightgbm"

_IMPORTANCE_TYPES = ("split", "gain")


class _LightGBMAutolog(BoostingAutolog):
    integration = FLAVOR_NAME
    unlogged_train_args = frozenset(
        {
            "params",
            "train_set",
            "valid_sets",
            "valid_names",
            "fobj",
            "feval",
            "init_model",
            "learning_rates",
            "callbacks",
        }
    )
    importance_json_indent = 2
    early_stopping_with_dataset = False

    def train_function(self) -> Callable[..., Any]:
        import lightgbm.engine

        train: Callable[..., Any] = lightgbm.engine.train
        return train

    def make_callback(self, sink: MetricSink) -> Any:
        return _AutologCallback(sink)

    def train_set(self, arguments: dict[str, Any]) -> Any:
        return arguments.get("train_set")

    def dataset_entries(
        self, arguments: dict[str, Any], session: FitSession | None
    ) -> list[DatasetEntry]:
        entries: list[DatasetEntry] = []
        train_set = arguments.get("train_set")
        if session is not None:
            entries.append((session.X, session.y, "train", None))
        elif train_set is not None:
            entries.append((train_set.data, train_set.label, "train", None))
        names = arguments.get("valid_names") or []
        for i, valid_set in enumerate(arguments.get("valid_sets") or ()):
            name = names[i] if i < len(names) else None
            entries.append((valid_set.data, valid_set.label, "eval", name))
        return entries

    def early_stopping(
        self, arguments: dict[str, Any], callbacks: list[Any], model: Any, sink: MetricSink
    ) -> tuple[int, int, int] | None:
        # LightGBM sets best_iteration (1-based) only when early stopping ran.
        best = int(model.best_iteration)
        if best <= 0:
            return None
        return sink.iterations, best, best - 1

    def importances(self, config: AutologConfig, model: Any) -> dict[str, dict[str, Any]]:
        features = model.feature_name()
        found: dict[str, dict[str, Any]] = {}
        for imp_type in _IMPORTANCE_TYPES:
            values = attempt(
                config,
                f"compute the '{imp_type}' feature importance",
                functools.partial(model.feature_importance, importance_type=imp_type),
            )
            if values is not None:
                found[imp_type] = dict(zip(features, values.tolist(), strict=True))
        return found

    def predict(self, model: Any, example: Any) -> Any:
        return model.predict(example)

    def log_model(
        self, config: AutologConfig, model: Any, example: Any, signature: Any, model_id: str | None
    ) -> None:
        from runyard import lightgbm as flavor

        flavor.log_model(
            model,
            "model",
            signature=signature,
            input_example=example,
            registered_model_name=config.registered_model_name,
            model_id=model_id,
        )


class _AutologCallback:
    """Called by LightGBM after every iteration; logs that iteration's eval results.

    A plain object, not a function: LightGBM sets an ``order`` attribute on its callbacks.
    """

    def __init__(self, sink: MetricSink) -> None:
        self.sink = sink

    def __call__(self, env: Any) -> None:
        try:
            metrics = {
                f"{entry[0]}-{entry[1]}": entry[2] for entry in env.evaluation_result_list or ()
            }
        except Exception:  # an odd result shape must not stop training
            return
        self.sink.record(metrics, env.iteration)


def _estimator_classes() -> list[type]:
    """The scikit-learn-API classes that define their own ``fit``."""
    import lightgbm.sklearn

    base = lightgbm.sklearn.LGBMModel
    return [
        cls
        for _, cls in inspect.getmembers(lightgbm.sklearn, inspect.isclass)
        if issubclass(cls, base) and "fit" in vars(cls)
    ]


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Enable (or, with ``disable=True``, disable) autologging of LightGBM training.

    Args:
        log_input_examples: Log the first rows of the training data as the input example.
        log_model_signatures: Log the model signature inferred from those rows.
        log_models: Log the trained model (``model``).
        log_datasets: Log the training and validation datasets as run inputs.
        disable: Turn LightGBM autologging off.
        exclusive: Do not log into runs the user started; only into runs autologging creates.
        disable_for_unsupported_versions: Stay off for lightgbm versions outside the tested
            range.
        silent: No warnings or log messages from autologging.
        registered_model_name: Register each logged model as a new version of this model.
        extra_tags: Tags set on each run autologging creates.
    """
    check_extra_tags(extra_tags)
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
    )
    if not enable_integration(FLAVOR_NAME, config):
        return
    import lightgbm
    import lightgbm.sklearn

    flow = _LightGBMAutolog()
    safe_patch(FLAVOR_NAME, lightgbm, "train", flow.train)
    # The scikit-learn API's own reference to ``train``, logged when nested in a patched fit.
    safe_patch(FLAVOR_NAME, lightgbm.sklearn, "train", flow.train, nested=True)
    safe_patch(FLAVOR_NAME, lightgbm.Dataset, "__init__", flow.dataset_init)
    for cls in _estimator_classes():
        safe_patch(FLAVOR_NAME, cls, "fit", flow.fit)
