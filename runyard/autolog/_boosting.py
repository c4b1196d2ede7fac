"""What the XGBoost and LightGBM integrations share.

Both libraries train through a module-level ``train`` function that their scikit-learn API also
calls, both report evaluation results to callbacks once per iteration, and both have feature
importances. MLflow logs the same things for both, under the same names; this module holds that
common logic so the two integration modules only adapt it to each library's objects:

* :func:`train_params`: the booster params plus ``train``'s other arguments, as MLflow logs them;
* :class:`MetricSink`: per-iteration eval metrics, one ``log_batch`` per iteration into the
  background writer (a list append for the training thread, never a database round trip);
* :func:`log_early_stopping`: ``stopped_iteration``, ``best_iteration`` and the best iteration's
  metrics one step past the last;
* :func:`log_feature_importance`: ``feature_importance_<type>.json`` and ``.png``;
* :class:`FitSession`: a scikit-learn-API ``fit`` in progress, which the nested ``train`` call
  logs into (params, metrics, importances) while ``fit`` logs the estimator itself.

Every step that runs after training is guarded on its own by :func:`attempt`: a failing plot
still leaves the model logged, and nothing here can fail the user's training.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from runyard.autolog._importance_plot import plot_importance
from runyard.autolog.config import AutologConfig, get_config
from runyard.autolog.patching import capture_warnings, is_outermost
from runyard.autolog.runs import autolog_run
from runyard.entities import DatasetInput, InputTag, Metric, Param
from runyard.tracking import fluent
from runyard.utils.time import now_ms

__all__ = [
    "INPUT_EXAMPLE_ROWS",
    "BoostingAutolog",
    "DatasetEntry",
    "FitSession",
    "MetricSink",
    "attempt",
    "current_session",
    "fail_logged_model",
    "fit_session",
    "input_example_of",
    "log_datasets",
    "log_early_stopping",
    "log_feature_importance",
    "log_params",
    "resolve_example_and_signature",
    "sanitize_metric_names",
    "start_logged_model",
    "train_params",
]

log = logging.getLogger("runyard.autolog")

#: Rows of the training data kept as the model's input example (MLflow's count).
INPUT_EXAMPLE_ROWS = 5
#: MLflow's log_batch limit on params.
_PARAMS_PER_BATCH = 100
_DATASET_CONTEXT_TAG = "mlflow.data.context"


def attempt(config: AutologConfig, what: str, step: Callable[[], Any]) -> Any:
    """Run one autolog step; a failure is logged as a warning (unless silent), never raised.

    Warnings the step raises become log records, so ``-W error`` cannot turn them into failures.
    Returns the step's result, or None when it failed.
    """
    try:
        with capture_warnings(config.silent):
            return step()
    except Exception as exc:  # autologging must never break training
        if not config.silent:
            log.warning("Failed to %s during autologging: %s", what, exc)
        log.debug("autolog step %r failed", what, exc_info=exc)
        return None


# -- params ------------------------------------------------------------------------------------
def train_params(
    train_fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    unlogged: frozenset[str],
) -> dict[str, Any]:
    """The booster params plus every other argument of ``train_fn`` (given or default), less
    ``unlogged``: MLflow's ``params`` + ``get_mlflow_run_params_for_fn_args``.

    A booster param wins over a ``train`` argument of the same name.
    """
    bound = inspect.signature(train_fn).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    booster = dict(arguments.get("params") or {})
    fn_args = {k: v for k, v in arguments.items() if k not in unlogged}
    return {**fn_args, **booster}


def log_params(run_id: str, params: Mapping[str, Any]) -> None:
    """Log ``params`` (as strings, in batches of 100) synchronously.

    Synchronous so that a conflict with a value the run already has is reported here, as an
    autologging warning, instead of failing the user's ``end_run`` later.
    """
    client = fluent._client()
    items = [Param(str(k), str(v)) for k, v in params.items()]
    for start in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + _PARAMS_PER_BATCH], synchronous=True)


# -- logged model ------------------------------------------------------------------------------
def start_logged_model(params: Mapping[str, Any]) -> str:
    """Create the PENDING logged model ``model`` of the active run, so that the per-iteration
    metrics link to it (as MLflow 3's autologging does); returns its id."""
    from runyard.tracking.fluent_models import initialize_logged_model

    stringified = {str(k): str(v) for k, v in params.items()}
    return initialize_logged_model("model", params=stringified).model_id


def fail_logged_model(model_id: str | None) -> None:
    """Mark a logged model whose training failed as such (best effort)."""
    if model_id is None:
        return
    from runyard.tracking.fluent_models import finalize_logged_model

    try:
        finalize_logged_model(model_id, "LOGGED_MODEL_UPLOAD_FAILED")
    except Exception:  # the training error is the one the user must see
        log.debug("could not mark logged model %s as failed", model_id, exc_info=True)


# -- metrics -----------------------------------------------------------------------------------
_renamed_reported: set[str] = set()


def sanitize_metric_names(metrics: dict[str, float]) -> dict[str, float]:
    """Replace ``@`` (``ndcg@3``), which metric names may not contain, by ``_at_`` as MLflow."""
    if not any("@" in key for key in metrics):
        return metrics
    renamed = {key.replace("@", "_at_"): value for key, value in metrics.items()}
    new = sorted(set(renamed) - set(metrics) - _renamed_reported)
    if new:
        _renamed_reported.update(new)
        log.info(
            "Identified one or more metrics with names containing the invalid character `@`. "
            "These metric names have been sanitized by replacing `@` with `_at_`, as follows: %s",
            ", ".join(new),
        )
    return renamed


class MetricSink:
    """Receives each iteration's eval metrics from a training callback.

    Points keep their own iteration's timestamp and step; they are handed to the background
    writer (one validated ``log_batch``) every half second of training, so a 1,000-iteration fit
    pays a few list appends per iteration, and live charts lag by at most that much. The values
    are also kept per step for the early-stopping summary. :meth:`flush` hands over the rest when
    training ends. A failure to log is reported once and never reaches the training loop.
    """

    #: Seconds between hand-overs to the writer, and the most points held (log_batch's limit).
    interval = 0.5
    max_pending = 1000

    def __init__(self, run_id: str, model_id: str | None, silent: bool) -> None:
        self.run_id = run_id
        self.model_id = model_id
        self.silent = silent
        self.by_step: dict[int, dict[str, float]] = {}
        self._client = fluent._client()
        self._pending: list[Metric] = []
        self._last_flush = time.monotonic()
        self._failed = False

    def record(self, metrics: dict[str, float], step: int) -> None:
        """Log ``metrics`` (name → value) at ``step``; never raises."""
        if not metrics:
            return
        try:
            metrics = sanitize_metric_names(metrics)
            self.by_step[step] = metrics
            ts = now_ms()
            model_id = self.model_id
            self._pending.extend(
                Metric(k, float(v), ts, step, None, model_id) for k, v in metrics.items()
            )
            if (
                len(self._pending) + len(metrics) > self.max_pending
                or time.monotonic() - self._last_flush >= self.interval
            ):
                self.flush()
        except Exception as exc:  # a callback that raises would stop the user's training
            self._report(exc)

    def flush(self) -> None:
        """Hand every recorded point to the background writer; never raises."""
        self._last_flush = time.monotonic()
        pending, self._pending = self._pending, []
        try:
            for start in range(0, len(pending), self.max_pending):
                chunk = pending[start : start + self.max_pending]
                self._client.log_batch(self.run_id, metrics=chunk)
        except Exception as exc:
            self._report(exc)

    def _report(self, exc: Exception) -> None:
        if not self._failed and not self.silent:
            log.warning("Failed to log metrics during autologging: %s", exc)
        self._failed = True

    @property
    def iterations(self) -> int:
        """How many iterations reported metrics."""
        return len(self.by_step)


def log_early_stopping(
    sink: MetricSink,
    stopped_iteration: int,
    best_iteration: int,
    best_step: int,
    dataset: Any = None,
) -> None:
    """MLflow's early-stopping metrics: ``stopped_iteration`` and ``best_iteration``, and the
    metrics of iteration ``best_step`` again at the step after the last logged one."""
    extra_step = sink.iterations
    ts = now_ms()
    name = getattr(dataset, "name", None)
    digest = getattr(dataset, "digest", None)
    summary = {"stopped_iteration": stopped_iteration, "best_iteration": best_iteration}
    points = [
        Metric(k, float(v), ts, 0, None, sink.model_id, name, digest) for k, v in summary.items()
    ]
    best = sink.by_step.get(best_step, {})
    points += [
        Metric(k, float(v), ts, extra_step, None, sink.model_id, name, digest)
        for k, v in best.items()
    ]
    fluent._client().log_batch(sink.run_id, metrics=points)


# -- datasets ----------------------------------------------------------------------------------
def _describe(data: Any, targets: Any, name: str | None) -> Any:
    import numpy as np

    from runyard.data import from_numpy, from_pandas

    if type(data).__module__.startswith("pandas") and hasattr(data, "columns"):
        return from_pandas(data, name=name)
    if hasattr(data, "toarray"):  # scipy sparse
        data = data.toarray()
    if isinstance(data, np.ndarray):
        if targets is not None and not isinstance(targets, np.ndarray):
            targets = np.asarray(targets)
        return from_numpy(data, targets=targets, name=name)
    log.warning("Unrecognized dataset type %s. Dataset logging skipped.", type(data))
    return None


def log_datasets(run_id: str, entries: list[tuple[Any, Any, str, str | None]]) -> Any:
    """Record ``(data, targets, context, name)`` entries as run inputs, in one store call;
    returns the description of the first one (the training set) or None."""
    described = []
    for data, targets, context, name in entries:
        dataset = _describe(data, targets, name)
        if dataset is not None:
            described.append((dataset, context))
    if described:
        inputs = [
            DatasetInput(ds.to_entity(), [InputTag(_DATASET_CONTEXT_TAG, context)])
            for ds, context in described
        ]
        fluent._client().log_inputs(run_id, inputs)
    return described[0][0] if described else None


# -- input example and signature ---------------------------------------------------------------
def input_example_of(data: Any) -> Any:
    """A copy of the first rows of ``data``; raises when they cannot be taken."""
    if isinstance(data, (str, os.PathLike)):
        raise ValueError("cannot gather example input when dataset is loaded from a file.")
    return deepcopy(data[:INPUT_EXAMPLE_ROWS])


def resolve_example_and_signature(
    config: AutologConfig,
    get_example: Callable[[], Any],
    predict: Callable[[Any], Any],
) -> tuple[Any, Any]:
    """The ``(input_example, signature)`` to log the model with, per the config.

    The signature is inferred from ``predict`` on the example; either failure is a warning and
    leaves that part out. ``signature`` is ``False`` (none saved) when signatures are off.
    """
    from runyard.models import infer_signature

    example = None
    if config.log_input_examples or config.log_model_signatures:
        try:
            example = get_example()
        except Exception as exc:
            if not config.silent:
                log.warning("Failed to gather input example: %s", exc)
    signature: Any = False
    if config.log_model_signatures and example is not None:
        try:
            signature = infer_signature(example, predict(deepcopy(example)))
        except Exception as exc:
            signature = False
            if not config.silent:
                log.warning("Failed to infer model signature: %s", exc)
    return (example if config.log_input_examples else None), signature


# -- feature importance ------------------------------------------------------------------------
class ImportancePlots:
    """``feature_importance_<type>.png`` drawn on a worker thread into a temporary folder.

    The plots are the costliest thing autolog does after training (~50 ms each); drawing them
    while the calling thread logs the model (whose save spends its time in the library's C code,
    outside the GIL) takes most of that off the training call. :func:`log_feature_importance`
    waits for the thread, so every file is uploaded before ``train`` returns, as before.
    """

    def __init__(self, importances: Mapping[str, Mapping[str, Any]]) -> None:
        self.folder = tempfile.mkdtemp(prefix="runyard-importance-")
        self.failures: dict[str, Exception] = {}
        self._thread = threading.Thread(
            target=self._draw, args=(importances,), name="runyard-importance-plots", daemon=True
        )
        self._thread.start()

    def _draw(self, importances: Mapping[str, Mapping[str, Any]]) -> None:
        for imp_type, importance in importances.items():
            path = os.path.join(self.folder, f"feature_importance_{imp_type}.png")
            try:
                plot_importance(list(importance), list(importance.values()), imp_type, path)
            except Exception as exc:  # reported by the caller's thread
                self.failures[imp_type] = exc

    def wait(self) -> None:
        """Block until every plot is drawn (or failed)."""
        self._thread.join()

    def discard(self) -> None:
        """Wait, then remove the folder and what is in it."""
        self.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def log_feature_importance(
    config: AutologConfig,
    run_id: str,
    importances: Mapping[str, Mapping[str, Any]],
    json_indent: int | None,
    plots: ImportancePlots | None = None,
) -> None:
    """``feature_importance_<type>.json`` (feature → importance) and ``.png`` (a bar plot) for
    each importance type, uploaded together. A plot that fails is a warning; its JSON still lands.
    ``plots``: the PNGs already being drawn (else they are drawn here)."""
    plots = plots or ImportancePlots(importances)
    try:
        plots.wait()
        for imp_type, exc in plots.failures.items():
            if not config.silent:
                log.warning("Failed to log feature importance plot (%s): %s", imp_type, exc)
        for imp_type, importance in importances.items():
            path = os.path.join(plots.folder, f"feature_importance_{imp_type}.json")
            with open(path, "w") as f:
                json.dump(dict(importance), f, indent=json_indent)
        fluent._client().log_artifacts(run_id, plots.folder)
    finally:
        plots.discard()


# -- scikit-learn API sessions -----------------------------------------------------------------
@dataclass
class FitSession:
    """A scikit-learn-API ``fit`` being autologged: what the nested ``train`` call needs.

    ``train`` logs params, datasets, metrics and importances into the run and creates the logged
    model (``model_id``) that ``fit`` then logs the estimator as.
    """

    integration: str
    X: Any
    y: Any
    log_models: bool
    model_id: str | None = None
    trained: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


class _Sessions(threading.local):
    def __init__(self) -> None:
        self.stack: list[FitSession] = []


_sessions = _Sessions()


@contextmanager
def fit_session(integration: str, X: Any, y: Any, log_models: bool) -> Iterator[FitSession]:
    """Mark a scikit-learn-API ``fit`` of ``integration`` as in progress in this thread."""
    session = FitSession(integration, X, y, log_models)
    _sessions.stack.append(session)
    try:
        yield session
    finally:
        _sessions.stack.pop()


def current_session(integration: str) -> FitSession | None:
    """The innermost ``fit`` of ``integration`` in progress in this thread, or None."""
    if _sessions.stack and _sessions.stack[-1].integration == integration:
        return _sessions.stack[-1]
    return None


# -- the train / fit flow ----------------------------------------------------------------------
#: ``(data, targets, context, name)`` of one dataset to record as a run input.
DatasetEntry = tuple[Any, Any, str, "str | None"]

_EXAMPLE_ATTR = "_runyard_input_example"
_NO_EXAMPLE = "please ensure that autologging is enabled before constructing the dataset."


@dataclass(frozen=True)
class _Example:
    value: Any = None
    error: str | None = None


class BoostingAutolog:
    """The patched ``train``, estimator ``fit`` and dataset constructor of one library.

    The order of work is the same for XGBoost and LightGBM; subclasses only say how their
    library names things. ``train`` (called directly, or nested in a scikit-learn-API ``fit``):

    1. params: the booster params and ``train``'s other arguments (less ``unlogged_train_args``);
    2. datasets: the training set (``context=train``) and the validation sets (``eval``);
    3. a PENDING logged model (when a model will be logged) that the metrics link to;
    4. a callback in ``callbacks`` that logs each iteration's eval metrics at its step;
    5. after training: early-stopping metrics, feature importances, and the Booster as the
       model, unless a scikit-learn-API ``fit`` is in progress: that logs the estimator itself.
    """

    integration = ""
    unlogged_train_args: frozenset[str] = frozenset()
    importance_json_indent: int | None = None
    #: Whether the early-stopping metrics name the training dataset (MLflow: XGBoost only).
    early_stopping_with_dataset = False

    # -- library specifics ---------------------------------------------------------------------
    def train_function(self) -> Callable[..., Any]:
        """The library's unpatched ``train`` (its signature maps the call's arguments)."""
        raise NotImplementedError

    def make_callback(self, sink: MetricSink) -> Any:
        """A training callback feeding each iteration's eval results to ``sink``."""
        raise NotImplementedError

    def train_set(self, arguments: dict[str, Any]) -> Any:
        """The training dataset argument of ``train``."""
        raise NotImplementedError

    def dataset_entries(
        self, arguments: dict[str, Any], session: FitSession | None
    ) -> list[DatasetEntry]:
        """The datasets of this ``train`` call to record as run inputs."""
        raise NotImplementedError

    def early_stopping(
        self, arguments: dict[str, Any], callbacks: list[Any], model: Any, sink: MetricSink
    ) -> tuple[int, int, int] | None:
        """``(stopped_iteration, best_iteration, step of the best metrics)``, or None when
        early stopping was not used."""
        raise NotImplementedError

    def importances(self, config: AutologConfig, model: Any) -> dict[str, dict[str, Any]]:
        """Importance type → {feature: importance} of the trained Booster."""
        raise NotImplementedError

    def predict(self, model: Any, example: Any) -> Any:
        """The Booster's predictions for an input example (to infer the signature)."""
        raise NotImplementedError

    def log_model(
        self, config: AutologConfig, model: Any, example: Any, signature: Any, model_id: str | None
    ) -> None:
        """Log ``model`` (Booster or estimator) with the flavor's ``log_model`` as ``model``."""
        raise NotImplementedError

    # -- patched functions ---------------------------------------------------------------------
    def dataset_init(
        self, original: Callable[..., Any], dataset: Any, *args: Any, **kwargs: Any
    ) -> None:
        """``DMatrix.__init__`` / ``Dataset.__init__``: keep the first rows of the data as the
        input example (the data cannot be read back from the built dataset)."""
        config = get_config(self.integration)
        data = args[0] if args else kwargs.get("data")
        example = None
        wanted = config is not None and config.log_models
        if (
            wanted
            and config is not None
            and (config.log_input_examples or config.log_model_signatures)
        ):
            try:
                example = _Example(value=input_example_of(data)) if data is not None else None
            except Exception as exc:
                example = _Example(error=str(exc))
        original(dataset, *args, **kwargs)
        if example is not None:
            setattr(dataset, _EXAMPLE_ATTR, example)

    def train(self, original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The library's ``train``: log it at the outermost level, or nested in a ``fit``."""
        session = current_session(self.integration)
        config = get_config(self.integration)
        if config is None or (session is None and not is_outermost()):
            return original(*args, **kwargs)
        if session is not None and session.trained:
            return original(*args, **kwargs)
        try:
            bound = inspect.signature(self.train_function()).bind(*args, **kwargs)
        except TypeError:
            return original(*args, **kwargs)  # a bad call: the library says what is wrong
        with autolog_run(self.integration, config) as run:
            return self._train(config, session, run.info.run_id, original, bound)

    def fit(self, original: Callable[..., Any], estimator: Any, *args: Any, **kwargs: Any) -> Any:
        """A scikit-learn-API ``fit``: the nested ``train`` logs the training; this logs the
        fitted estimator as the model (its own class, not the Booster)."""
        config = get_config(self.integration)
        if config is None:
            return original(estimator, *args, **kwargs)
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        example: Any = None
        example_error: Exception | None = None
        if config.log_models and (config.log_input_examples or config.log_model_signatures):
            try:
                example = input_example_of(X)
            except Exception as exc:
                example_error = exc
        with autolog_run(self.integration, config):
            with fit_session(self.integration, X, y, config.log_models) as session:
                try:
                    result = original(estimator, *args, **kwargs)
                except BaseException:
                    fail_logged_model(session.model_id)
                    raise
            if config.log_models:

                def get_example() -> Any:
                    if example_error is not None:
                        raise example_error
                    return example

                def log_estimator() -> None:
                    ex, signature = resolve_example_and_signature(
                        config, get_example, estimator.predict
                    )
                    self.log_model(config, estimator, ex, signature, session.model_id)

                attempt(config, "log the model", log_estimator)
        return result

    # -- the steps -----------------------------------------------------------------------------
    def _train(
        self,
        config: AutologConfig,
        session: FitSession | None,
        run_id: str,
        original: Callable[..., Any],
        bound: inspect.BoundArguments,
    ) -> Any:
        arguments = bound.arguments
        fn = self.train_function()
        params: dict[str, Any] = (
            attempt(
                config,
                "collect params",
                lambda: train_params(fn, bound.args, bound.kwargs, self.unlogged_train_args),
            )
            or {}
        )
        if params:
            attempt(config, "log params", lambda: log_params(run_id, params))
        dataset = None
        if config.log_datasets:
            dataset = attempt(
                config,
                "log dataset information",
                lambda: log_datasets(run_id, self.dataset_entries(arguments, session)),
            )
        logs_model = session.log_models if session is not None else config.log_models
        model_id = None
        if logs_model:
            model_id = attempt(
                config, "create the logged model", lambda: start_logged_model(params)
            )
        if session is not None:
            session.model_id, session.trained = model_id, True
        sink = MetricSink(run_id, model_id, config.silent)
        user_callbacks = list(arguments.get("callbacks") or ())
        callback = attempt(config, "set up metrics logging", lambda: self.make_callback(sink))
        if callback is not None:
            arguments["callbacks"] = [*user_callbacks, callback]
        try:
            model = original(*bound.args, **bound.kwargs)
        except BaseException:
            sink.flush()
            fail_logged_model(model_id)
            raise
        sink.flush()
        self._after_training(
            config, session, run_id, arguments, user_callbacks, model, sink, dataset
        )
        return model

    def _after_training(
        self,
        config: AutologConfig,
        session: FitSession | None,
        run_id: str,
        arguments: dict[str, Any],
        user_callbacks: list[Any],
        model: Any,
        sink: MetricSink,
        dataset: Any,
    ) -> None:
        stop = attempt(
            config,
            "read early stopping results",
            lambda: self.early_stopping(arguments, user_callbacks, model, sink),
        )
        if stop is not None:
            stopped, best, best_step = stop
            named = dataset if self.early_stopping_with_dataset else None
            attempt(
                config,
                "log early stopping metrics",
                lambda: log_early_stopping(sink, stopped, best, best_step, dataset=named),
            )
        importances = self.importances(config, model)
        plots = (
            attempt(config, "draw feature importance", lambda: ImportancePlots(importances))
            if importances
            else None
        )
        try:
            if config.log_models and session is None:
                attempt(
                    config,
                    "log the model",
                    lambda: self._log_booster(config, arguments, model, sink.model_id),
                )
            if importances:
                attempt(
                    config,
                    "log feature importance",
                    lambda: log_feature_importance(
                        config, run_id, importances, self.importance_json_indent, plots
                    ),
                )
        finally:
            if plots is not None:
                plots.discard()

    def _log_booster(
        self, config: AutologConfig, arguments: dict[str, Any], model: Any, model_id: str | None
    ) -> None:
        train_set = self.train_set(arguments)

        def get_example() -> Any:
            example: _Example | None = getattr(train_set, _EXAMPLE_ATTR, None)
            if example is None:
                raise ValueError(_NO_EXAMPLE)
            if example.error is not None:
                raise ValueError(example.error)
            return example.value

        example, signature = resolve_example_and_signature(
            config, get_example, lambda ex: self.predict(model, ex)
        )
        self.log_model(config, model, example, signature, model_id)
