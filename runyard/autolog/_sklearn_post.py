"""Post-training metrics: ``model.score(...)`` and ``sklearn.metrics`` calls made after an
autologged fit, logged to the fit's run as MLflow names them.

A metric key reads ``{metric_name}[-{call_index}]_{dataset_name}``: ``metric_name`` is the
``sklearn.metrics`` function's name or ``{ModelClass}_score``; a second call of the same metric
gets ``-2`` and so on; ``dataset_name`` is the name of the variable that held the data given to
``predict``/``score`` in the caller's frame (``unknown_dataset`` for an expression), with
``-2``... appended when different objects share a name. Each key's call is recorded in the run's
``metric_info.json`` artifact, e.g. ``accuracy_score(y_true=y_test, y_pred=y_pred)``.

Only ids and names are kept here, never user data or models (a prediction's entry is dropped when
the prediction object is garbage collected, so its id cannot be mistaken for a newer object's).
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from types import FrameType
from typing import Any

from runyard.tracking import fluent

__all__ = ["PostTrainingMetrics", "call_command", "is_loggable", "var_name"]

_AUTOLOG_PACKAGE = "runyard.autolog"


def is_loggable(value: Any) -> bool:
    """Whether ``value`` is a number that can be logged as a metric (bools are not)."""
    import numpy as np

    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def _outside_autolog(frame: FrameType | None) -> FrameType | None:
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(
        _AUTOLOG_PACKAGE
    ):
        frame = frame.f_back
    return frame


def var_name(obj: Any, fallback: str) -> str:
    """The name of the variable holding ``obj`` where the user's code created or kept it.

    Frames that received ``obj`` as an argument are skipped outward (the metric was called from
    a helper), so the name is the one at the place the object lives as a local variable.
    """
    frame = _outside_autolog(inspect.currentframe())
    try:
        while frame is not None:
            info = inspect.getargvalues(frame)
            passed = [info.locals.get(name) for name in info.args]
            if info.varargs:
                passed.extend(info.locals.get(info.varargs) or ())
            if info.keywords:
                passed.extend((info.locals.get(info.keywords) or {}).values())
            if any(arg is obj for arg in passed):
                frame = frame.f_back
                continue
            for name, value in frame.f_locals.items():
                if value is obj:
                    return str(name)
            return fallback
        return fallback
    finally:
        del frame


def call_command(
    fn_name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], skip: int
) -> str:
    """``fn_name(arg=value_or_variable_name, ...)``; ``skip`` leading parameters (``self``)."""
    import numpy as np

    def show(value: Any) -> str:
        if value is None or np.isscalar(value):
            if isinstance(value, str) and len(value) > 32:
                return repr(value[:32] + "...")
            return repr(value)
        return var_name(value, f"<{type(value).__name__}>")

    names = list(inspect.signature(fn).parameters)[skip:]
    parts = [f"{name}={show(value)}" for name, value in zip(names, args, strict=False)]
    parts.extend(f"{name}={show(value)}" for name, value in kwargs.items())
    return f"{fn_name}({', '.join(parts)})"


class PostTrainingMetrics:
    """Which fitted models, evaluation datasets and predictions belong to which run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model_runs: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._predictions: dict[int, tuple[str, str]] = {}
        self._datasets: defaultdict[str, defaultdict[str, list[int]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._calls: defaultdict[str, defaultdict[str, list[tuple[str, str]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._eval_logged: set[tuple[str, int]] = set()

    def register_model(self, model: Any, run_id: str) -> None:
        """Metrics computed from this fitted model go to ``run_id``."""
        try:
            self._model_runs[model] = run_id
        except TypeError:  # unhashable or not weak-referenceable: no post-training metrics
            return

    def run_for_model(self, model: Any) -> str | None:
        """The run ``model`` was autologged in, or None."""
        try:
            return self._model_runs.get(model)
        except TypeError:
            return None

    def dataset_name(self, run_id: str, dataset: Any) -> str:
        """The dataset's name in metric keys (its variable's name, indexed when reused)."""
        name = var_name(dataset, "unknown_dataset")
        with self._lock:
            seen = self._datasets[run_id][name]
            if id(dataset) not in seen:
                seen.append(id(dataset))
            index = seen.index(id(dataset))
        return name if index == 0 else f"{name}-{index + 1}"

    def first_eval_use(self, run_id: str, dataset: Any) -> bool:
        """True the first time ``dataset`` is predicted on for ``run_id`` (log it as an input)."""
        key = (run_id, id(dataset))
        with self._lock:
            if key in self._eval_logged:
                return False
            self._eval_logged.add(key)
            return True

    def register_prediction(self, run_id: str, dataset_name: str, prediction: Any) -> None:
        """Remember that ``prediction`` came from ``dataset_name`` under ``run_id``."""
        key = id(prediction)
        try:
            weakref.finalize(prediction, self._forget_prediction, key)
        except TypeError:  # not weak-referenceable (a list): its id could be reused, skip it
            return
        with self._lock:
            self._predictions[key] = (run_id, dataset_name)

    def _forget_prediction(self, key: int) -> None:
        with self._lock:
            self._predictions.pop(key, None)

    def find_prediction(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, str] | None:
        """(run_id, dataset_name) of the first registered prediction among the arguments."""
        import numpy as np

        with self._lock:
            for arg in (*args, *kwargs.values()):
                if arg is not None and not np.isscalar(arg) and id(arg) in self._predictions:
                    return self._predictions[id(arg)]
        return None

    def metric_key(self, run_id: str, metric_name: str, dataset_name: str, command: str) -> str:
        """The key of the next call of ``metric_name`` on ``dataset_name``; records ``command``."""
        with self._lock:
            calls = self._calls[run_id][metric_name]
            index = len(calls)
            name = metric_name if index == 0 else f"{metric_name}-{index + 1}"
            key = f"{name}_{dataset_name}"
            calls.append((key, command))
        return key

    def log(self, run_id: str, key: str, value: float) -> None:
        """Log the metric and rewrite the run's ``metric_info.json``."""
        fluent.log_metrics({key: float(value)}, run_id=run_id)
        with self._lock:
            info = sorted(pair for calls in self._calls[run_id].values() for pair in calls)
        fluent.log_dict(dict(info), "metric_info.json", run_id=run_id)
