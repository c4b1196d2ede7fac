"""What scikit-learn autologging records about one fit: params, tags, training metrics, plots,
the training dataset. Names are MLflow's (``training_accuracy_score``, ``estimator_name``,
``training_confusion_matrix.png``, ...) so dashboards built on MLflow keep working.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Number
from typing import Any

from runyard.autolog.config import AutologConfig
from runyard.tracking import fluent
from runyard.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_PER_BATCH

__all__ = [
    "INPUT_EXAMPLE_SAMPLE_ROWS",
    "TRAINING_PREFIX",
    "FitInputs",
    "estimator_tags",
    "fit_inputs",
    "input_example",
    "is_search_estimator",
    "log_estimator_content",
    "log_params",
    "make_dataset",
    "training_metrics",
    "warn",
]

log = logging.getLogger("runyard.autolog")

#: The prefix of metrics computed on the training data.
TRAINING_PREFIX = "training_"
#: Rows of the training data kept as the model's input example.
INPUT_EXAMPLE_SAMPLE_ROWS = 5
_SAMPLE_WEIGHT = "sample_weight"


def warn(config: AutologConfig, message: str, *args: Any) -> None:
    """Log an autologging warning unless the integration is silent."""
    if not config.silent:
        log.warning(message, *args)


@dataclass
class FitInputs:
    """The training data a fit call received."""

    X: Any
    y: Any
    sample_weight: Any


def fit_inputs(fit: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> FitInputs:
    """X, y and sample_weight from the arguments of ``fit(self, X, y, ..., sample_weight=...)``.

    The first two parameter names of ``fit`` are those of X and y (``MultiOutputClassifier.fit``
    calls them ``X`` and ``Y``); ``args`` exclude ``self``.
    """
    names = [n for n in inspect.signature(fit).parameters if n != "self"]
    x_name, y_name = (names + ["X", "y"])[:2]
    if len(args) >= 2:
        X, y = args[0], args[1]
    elif len(args) == 1:
        X, y = args[0], kwargs.get(y_name)
    else:
        X, y = kwargs.get(x_name), kwargs.get(y_name)
    weight = None
    if _SAMPLE_WEIGHT in names:
        index = names.index(_SAMPLE_WEIGHT)
        weight = args[index] if len(args) > index else kwargs.get(_SAMPLE_WEIGHT)
    return FitInputs(X, y, weight)


def input_example(X: Any) -> Any:
    """A copy of the first rows of X (taken before training can mutate X)."""
    rows = (
        X.iloc[:INPUT_EXAMPLE_SAMPLE_ROWS] if hasattr(X, "iloc") else X[:INPUT_EXAMPLE_SAMPLE_ROWS]
    )
    return copy.deepcopy(rows)


def estimator_tags(estimator: Any) -> dict[str, str]:
    """MLflow's ``estimator_name`` and ``estimator_class`` tags."""
    cls = type(estimator)
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}


def is_search_estimator(estimator: Any) -> bool:
    """Whether the estimator is a parameter search (GridSearchCV, RandomizedSearchCV)."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    return isinstance(estimator, (GridSearchCV, RandomizedSearchCV))


def _param_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_PARAM_VAL_LENGTH else text[:MAX_PARAM_VAL_LENGTH]


def log_params(run_id: str, params: dict[str, Any]) -> None:
    """Queue ``params`` (as truncated strings) in batches of MLflow's per-request limit."""
    items = [(str(k), _param_text(v)) for k, v in params.items()]
    for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
        fluent.log_params(dict(items[start : start + MAX_PARAMS_PER_BATCH]), run_id=run_id)


def make_dataset(X: Any, y: Any = None) -> Any:
    """A runyard dataset describing X (and y), or None for types MLflow does not describe."""
    import numpy as np
    import pandas as pd

    from runyard.data import from_numpy, from_pandas

    if isinstance(X, pd.DataFrame):
        return from_pandas(X)
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # scipy sparse
        targets = y.toarray() if hasattr(y, "toarray") else y
        return from_numpy(X.toarray(), targets=None if targets is None else np.asarray(targets))
    if isinstance(X, np.ndarray):
        return from_numpy(X, targets=None if y is None else np.asarray(y))
    return None


def _metric_specs(
    estimator: Any, X: Any, y: Any, weight: Any, pos_label: Any
) -> Iterable[tuple[str, Callable[..., Any], dict[str, Any]]]:
    import sklearn.metrics as m
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        average = "weighted" if pos_label is None else "binary"
        y_pred = estimator.predict(X)
        for name, fn in (
            ("precision_score", m.precision_score),
            ("recall_score", m.recall_score),
            ("f1_score", m.f1_score),
        ):
            args = {"y_true": y, "y_pred": y_pred, "average": average, "sample_weight": weight}
            if pos_label is not None:
                args["pos_label"] = pos_label
            yield name, fn, args
        yield (
            "accuracy_score",
            m.accuracy_score,
            {"y_true": y, "y_pred": y_pred, "normalize": True, "sample_weight": weight},
        )
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            # scikit-learn 1.9 renamed log_loss's y_pred to y_proba (the old name warns).
            proba_arg = (
                "y_proba" if "y_proba" in inspect.signature(m.log_loss).parameters else "y_pred"
            )
            yield "log_loss", m.log_loss, {"y_true": y, proba_arg: proba, "sample_weight": weight}
            # Binary: the score of the greater label. Multiclass: one-vs-one, weighted (MLflow).
            score = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba
            yield (
                "roc_auc",
                m.roc_auc_score,
                {
                    "y_true": y,
                    "y_score": score,
                    "average": "weighted",
                    "sample_weight": weight,
                    "multi_class": "ovo",
                },
            )
    elif is_regressor(estimator):
        y_pred = estimator.predict(X)
        for name, fn in (
            ("mean_squared_error", m.mean_squared_error),
            ("mean_absolute_error", m.mean_absolute_error),
            ("r2_score", m.r2_score),
        ):
            args = {"y_true": y, "y_pred": y_pred, "sample_weight": weight}
            yield name, fn, {**args, "multioutput": "uniform_average"}


def training_metrics(
    config: AutologConfig, estimator: Any, X: Any, y: Any, weight: Any, prefix: str
) -> dict[str, float]:
    """MLflow's training metrics of a fitted classifier or regressor, plus ``<prefix>score``."""
    metrics: dict[str, float] = {}
    if y is None:
        return metrics
    pos_label = config.extra("pos_label")
    try:
        for name, fn, args in _metric_specs(estimator, X, y, weight, pos_label):
            try:
                metrics[prefix + name] = float(fn(**args))
            except Exception as exc:
                warn(
                    config,
                    "%s failed. The metric %s will not be recorded. Metric error: %s",
                    fn.__qualname__,
                    prefix + name,
                    exc,
                )
    except Exception as exc:
        warn(config, "Failed to autolog metrics for %s. Logging error: %s", type(estimator), exc)
    if prefix + "mean_squared_error" in metrics:
        metrics[prefix + "root_mean_squared_error"] = math.sqrt(
            metrics[prefix + "mean_squared_error"]
        )
    if hasattr(estimator, "score"):
        try:
            takes_weight = _SAMPLE_WEIGHT in inspect.signature(estimator.score).parameters
            score_args = (X, y, weight) if takes_weight else (X, y)
            metrics[prefix + "score"] = float(estimator.score(*score_args))
        except Exception as exc:
            warn(
                config,
                "%s.score failed. The '%sscore' metric will not be recorded. Scoring error: %s",
                type(estimator).__name__,
                prefix,
                exc,
            )
    return {k: v for k, v in metrics.items() if isinstance(v, Number) and not math.isnan(v)}


def _classifier_plots(estimator: Any, X: Any, y: Any, weight: Any, prefix: str, out: str) -> None:
    """MLflow's training plots: a normalized confusion matrix; ROC and PR curves when binary."""
    import matplotlib

    # Figures made from matplotlib.figure.Figure stay out of pyplot's global figure list.
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    labels = getattr(estimator, "classes_", None)
    n_labels = len(labels) if labels is not None else len(set(y))
    plots: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
        (
            "confusion_matrix",
            "Normalized confusion matrix",
            ConfusionMatrixDisplay.from_estimator,
            {"normalize": "true", "cmap": "Blues"},
        )
    ]
    if n_labels == 2:
        plots.append(("roc_curve", "ROC curve", RocCurveDisplay.from_estimator, {}))
        plots.append(
            (
                "precision_recall_curve",
                "Precision recall curve",
                PrecisionRecallDisplay.from_estimator,
                {},
            )
        )
    with matplotlib.rc_context({"savefig.dpi": 175, "figure.autolayout": True, "font.size": 8}):
        for name, title, plot, kwargs in plots:
            figure = Figure(figsize=(6.0, 4.0))
            ax = figure.subplots()
            display = plot(estimator, X, y, sample_weight=weight, ax=ax, **kwargs)
            display.ax_.set_title(title)
            figure.savefig(os.path.join(out, f"{prefix}{name}.png"), format="png")


def _estimator_html(estimator: Any) -> str:
    from sklearn.utils import estimator_html_repr

    return (
        '<!DOCTYPE html>\n<html lang="en">\n  <head>\n    <meta charset="UTF-8"/>\n  </head>\n'
        f"  <body>\n    {estimator_html_repr(estimator)}\n  </body>\n</html>\n"
    )


def log_estimator_content(
    config: AutologConfig, run_id: str, estimator: Any, inputs: FitInputs, prefix: str
) -> dict[str, float]:
    """Log the training metrics, the classifier plots and ``estimator.html``; returns the
    metrics logged."""
    from sklearn.base import is_classifier

    metrics = training_metrics(config, estimator, inputs.X, inputs.y, inputs.sample_weight, prefix)
    if metrics:
        fluent.log_metrics(metrics, run_id=run_id)
    elif inputs.y is None:
        warn(
            config,
            "Training metrics will not be recorded because training labels were not specified. "
            "To automatically record training metrics, provide training labels as inputs to the "
            "model training function.",
        )
    with tempfile.TemporaryDirectory(prefix="runyard-autolog-") as tmp:
        if is_classifier(estimator) and inputs.y is not None:
            try:
                _classifier_plots(estimator, inputs.X, inputs.y, inputs.sample_weight, prefix, tmp)
            except Exception as exc:
                warn(config, "Failed to autolog artifacts for %s: %s", type(estimator), exc)
        try:
            with open(os.path.join(tmp, "estimator.html"), "w", encoding="utf-8") as fh:
                fh.write(_estimator_html(estimator))
        except Exception as exc:
            warn(config, "Failed to log estimator.html for %s: %s", type(estimator), exc)
        if os.listdir(tmp):
            fluent.log_artifacts(tmp, run_id=run_id)
    return metrics
