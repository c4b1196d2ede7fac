"""PyTorch autologging: ``Trainer.fit`` of Lightning (``lightning`` or ``pytorch_lightning``).

``runyard.pytorch.autolog()`` patches ``Trainer.fit`` of every Lightning package installed. Each
``fit`` then logs, with MLflow's names (so dashboards built on MLflow keep working):

* params ``epochs`` (``trainer.max_epochs``), ``optimizer_name`` and the first optimizer's
  ``defaults`` (``lr``, ``momentum``, ``betas``, ``weight_decay`` ...); with an ``EarlyStopping``
  callback also ``monitor``, ``mode``, ``patience``, ``min_delta`` and ``stopped_epoch``;
* every value of ``trainer.callback_metrics`` at the end of each training epoch (step = epoch,
  every ``log_every_n_epoch`` epochs), per training step (step = ``trainer.global_step``) when
  ``log_every_n_step`` is set, and at the end of ``trainer.test``;
* early-stopping results as metrics ``stopped_epoch``, ``restored_epoch``, ``best_score`` and
  ``wait_count`` when training stopped early;
* the tag ``Mode`` (``training``, then ``testing`` after ``trainer.test``);
* ``model_summary.txt`` (Lightning's ``ModelSummary``), the trained module as the logged model
  ``model`` (signature from the first training batch) and, with early stopping, the restored
  checkpoint under ``restored_model_checkpoint/``;
* checkpoints under ``checkpoints/`` (``latest_checkpoint.pth`` and its metrics JSON, or one
  directory per epoch / global step) with the tag ``mlflow.latest_checkpoint_artifact``.

Raw training loops (plain ``torch.nn.Module``) have no hook to patch: log their metrics with
``runyard.log_metrics(..., step=epoch)`` and the model with ``runyard.pytorch.log_model``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import posixpath
import tempfile
from collections.abc import Callable
from typing import Any

from runyard.autolog.config import AutologConfig, enable_integration, get_config
from runyard.autolog.patching import capture_warnings, safe_patch
from runyard.autolog.runs import autolog_run, resolve_tags
from runyard.entities import LoggedModelStatus, Metric, Param, RunTag
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.tracking import fluent
from runyard.utils.time import now_ms

__all__ = [
    "INTEGRATION",
    "LATEST_CHECKPOINT_ARTIFACT_TAG_KEY",
    "autolog",
    "load_checkpoint",
]

log = logging.getLogger("runyard.autolog")

#: The integration's name: the value of the ``mlflow.autologging`` tag on the runs it creates.
INTEGRATION = "pytorch"
#: MLflow's tag naming the run's latest checkpoint artifact.
LATEST_CHECKPOINT_ARTIFACT_TAG_KEY = "mlflow.latest_checkpoint_artifact"

#: (distribution to look for, module holding ``Trainer``, ``Callback`` and ``callbacks``).
_LIGHTNING_PACKAGES = (
    ("lightning", "lightning.pytorch"),
    ("pytorch_lightning", "pytorch_lightning"),
)
_MODEL_NAME = "model"
_SUMMARY_FILE = "model_summary.txt"
_RESTORED_CHECKPOINT_DIR = "restored_model_checkpoint"
_EARLY_STOP_PARAMS = ("monitor", "mode", "patience", "min_delta", "stopped_epoch")
# MLflow's checkpoint layout (mlflow/utils/checkpoint_utils.py).
_CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_FILE = "checkpoint"
_CHECKPOINT_SUFFIX = ".pth"
_CHECKPOINT_METRICS_FILE = "checkpoint_metrics.json"
_LATEST_PREFIX = "latest_"
_WEIGHTS_ONLY_SUFFIX = ".weights"


def autolog(
    log_every_n_epoch: int = 1,
    log_every_n_step: int | None = None,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: dict[str, Any] | None = None,
    checkpoint: bool = True,
    checkpoint_monitor: str | None = "val_loss",
    checkpoint_mode: str = "min",
    checkpoint_save_best_only: bool = True,
    checkpoint_save_weights_only: bool = False,
    checkpoint_save_freq: str | int = "epoch",
    log_model_signatures: bool = True,
) -> None:
    """Enable (or disable) autologging of PyTorch Lightning's ``Trainer.fit``.

    The options and their defaults are ``mlflow.pytorch.autolog``'s.

    Args:
        log_every_n_epoch: Log epoch metrics every ``n`` epochs (every epoch by default).
        log_every_n_step: Also log step metrics every ``n`` training steps, at
            ``trainer.global_step`` (off by default: per-step logging costs more).
        log_models: Log the trained module as the logged model ``model``.
        log_datasets: Accepted for MLflow compatibility; Lightning fits log no dataset.
        disable: Turn PyTorch autologging off; ``Trainer.fit`` runs untouched.
        exclusive: Log only into runs autologging creates, never into the user's runs.
        disable_for_unsupported_versions: Do nothing with unsupported torch versions.
        silent: No warnings or event logs from autologging.
        registered_model_name: Register each logged model as a new version of this model.
        extra_tags: Tags added to the runs autologging creates.
        checkpoint: Log checkpoints of the module while it trains.
        checkpoint_monitor: The metric deciding which checkpoint is best.
        checkpoint_mode: ``"min"`` or ``"max"``: whether a lower or higher monitored value is
            better.
        checkpoint_save_best_only: Keep only the best checkpoint (``checkpoints/latest_*``);
            otherwise one per epoch (``checkpoints/epoch_<n>/``) or per ``checkpoint_save_freq``
            steps (``checkpoints/global_step_<n>/``).
        checkpoint_save_weights_only: Save only the weights, without optimizer and scheduler
            states.
        checkpoint_save_freq: ``"epoch"``, or save every this many training steps.
        log_model_signatures: Infer the model signature from the first training batch.

    Raises:
        InvalidParameterValue: An option has an invalid value.
    """
    config = AutologConfig(
        log_models=log_models,
        log_model_signatures=log_model_signatures,
        log_datasets=log_datasets,
        disable=disable,
        exclusive=exclusive,
        disable_for_unsupported_versions=disable_for_unsupported_versions,
        silent=silent,
        registered_model_name=registered_model_name,
        extra_tags=extra_tags,
        extras={
            "log_every_n_epoch": log_every_n_epoch,
            "log_every_n_step": log_every_n_step,
            "checkpoint": checkpoint,
            "checkpoint_monitor": checkpoint_monitor,
            "checkpoint_mode": checkpoint_mode,
            "checkpoint_save_best_only": checkpoint_save_best_only,
            "checkpoint_save_weights_only": checkpoint_save_weights_only,
            "checkpoint_save_freq": checkpoint_save_freq,
        },
    )
    if not disable:
        _validate(config)
    if not enable_integration(INTEGRATION, config):
        return
    patched = False
    for distribution, module_name in _LIGHTNING_PACKAGES:
        if importlib.util.find_spec(distribution) is None:
            continue
        safe_patch(INTEGRATION, importlib.import_module(module_name).Trainer, "fit", _patched_fit)
        patched = True
    if not patched and not silent:
        log.info(
            "PyTorch autologging hooks PyTorch Lightning's Trainer.fit, and neither `lightning` "
            "nor `pytorch_lightning` is installed: log raw training loops with "
            "runyard.log_metrics and runyard.pytorch.log_model."
        )


def _validate(config: AutologConfig) -> None:
    resolve_tags(INTEGRATION, config.extra_tags)
    for name in ("log_every_n_epoch", "log_every_n_step"):
        value = config.extra(name)
        if (value is not None or name == "log_every_n_epoch") and not _positive_int(value):
            raise InvalidParameterValue(f"`{name}` must be a positive integer, got {value!r}.")
    if not config.extra("checkpoint"):
        return
    freq = config.extra("checkpoint_save_freq")
    if freq != "epoch" and not _positive_int(freq):
        raise InvalidParameterValue(
            f"`checkpoint_save_freq` must be 'epoch' or a positive integer, got {freq!r}."
        )
    if config.extra("checkpoint_save_best_only"):
        if config.extra("checkpoint_monitor") is None:
            raise InvalidParameterValue(
                "If checkpoint 'save_best_only' config is set to True, you need to set "
                "'monitor' config as well."
            )
        mode = config.extra("checkpoint_mode")
        if mode not in ("min", "max"):
            raise InvalidParameterValue(
                "If checkpoint 'save_best_only' config is set to True, you need to set "
                "'mode' config and available modes includes 'min' and 'max', but you set "
                f"'mode' to '{mode}'."
            )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# -- the patched Trainer.fit ----------------------------------------------------------------------
def _patched_fit(original: Callable[..., Any], trainer: Any, *args: Any, **kwargs: Any) -> Any:
    config = get_config(INTEGRATION)
    if config is None:  # disabled between the patch's check and now
        return original(trainer, *args, **kwargs)
    package = _package_of(trainer)
    with autolog_run(INTEGRATION, config) as run:
        with capture_warnings(config.silent):
            fit = _Fit(package, trainer, run.info.run_id, config)
        try:
            result = original(trainer, *args, **kwargs)
        except BaseException:
            fit.callback.fitting = False
            fit.callback.restore_forward()
            fit.mark_model_failed()
            raise
        fit.callback.fitting = False
        fit.callback.restore_forward()
        with capture_warnings(config.silent):
            fit.finish()
        return result


def _package_of(trainer: Any) -> Any:
    """The Lightning package (``lightning.pytorch`` or ``pytorch_lightning``) of the trainer."""
    for _, module_name in _LIGHTNING_PACKAGES:
        if type(trainer).__module__.startswith(module_name + "."):
            return importlib.import_module(module_name)
    return importlib.import_module(_LIGHTNING_PACKAGES[0][1])


class _Fit:
    """One autologged ``fit``: sets up before training (params, logged model, callback) and
    logs the results after it."""

    def __init__(self, package: Any, trainer: Any, run_id: str, config: AutologConfig) -> None:
        from runyard.tracking.fluent_models import initialize_logged_model

        self.package = package
        self.trainer = trainer
        self.run_id = run_id
        self.config = config
        self.early_stopping = next(
            (c for c in trainer.callbacks if isinstance(c, package.callbacks.EarlyStopping)), None
        )
        if self.early_stopping is not None:
            params = {
                name: getattr(self.early_stopping, name)
                for name in _EARLY_STOP_PARAMS
                if hasattr(self.early_stopping, name)
            }
            _log_params(run_id, params)
        self.model_id = (
            initialize_logged_model(name=_MODEL_NAME, source_run_id=run_id).model_id
            if config.log_models
            else None
        )
        # A callback left by an earlier fit of this trainer would log into that fit's run.
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, _AutologHooks)]
        self.callback = _callback_class(package)(run_id, self.model_id, config)
        trainer.callbacks.append(self.callback)

    def mark_model_failed(self) -> None:
        """Training raised: the pending logged model will never be uploaded."""
        if self.model_id is not None:
            fluent._client().finalize_logged_model(self.model_id, LoggedModelStatus.FAILED)

    def finish(self) -> None:
        """Log early-stopping results, the model summary and the model."""
        if self.early_stopping is not None:
            self._log_early_stop_metrics()
        summary = self.package.utilities.model_summary.ModelSummary(
            self.trainer.lightning_module, max_depth=-1
        )
        fluent.log_text(str(summary), _SUMMARY_FILE, run_id=self.run_id)
        if self.model_id is None:
            return
        import runyard.pytorch

        runyard.pytorch.log_model(
            self.trainer.lightning_module,
            name=_MODEL_NAME,
            registered_model_name=self.config.registered_model_name,
            signature=self.callback.signature(),
            model_id=self.model_id,
        )
        best_path = getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        if self.early_stopping is not None and best_path:
            fluent.log_artifact(best_path, _RESTORED_CHECKPOINT_DIR, run_id=self.run_id)

    def _log_early_stop_metrics(self) -> None:
        stopper = self.early_stopping
        if stopper is None or stopper.stopped_epoch == 0:
            return
        metrics: dict[str, float] = {
            "stopped_epoch": stopper.stopped_epoch,
            "restored_epoch": stopper.stopped_epoch - max(1, stopper.patience),
        }
        if hasattr(stopper, "best_score"):
            metrics["best_score"] = float(stopper.best_score)
        if hasattr(stopper, "wait_count"):
            metrics["wait_count"] = stopper.wait_count
        _log_metrics(self.run_id, metrics, 0, self.model_id)


def _log_params(run_id: str, params: dict[str, Any]) -> None:
    # Synchronous, so that a clash with a value the run already holds is reported here (and
    # turned into a warning) rather than at the user's end_run.
    batch = [Param(k, v) for k, v in params.items()]
    fluent._client().log_batch(run_id, params=batch, synchronous=True)


def _log_metrics(run_id: str, metrics: dict[str, float], step: int, model_id: str | None) -> None:
    if not metrics:
        return
    ts = now_ms()
    points = [Metric(k, float(v), ts, step, model_id=model_id) for k, v in metrics.items()]
    fluent._client().log_batch(run_id, metrics=points)


# -- the callback added to the trainer -----------------------------------------------------------
def _hook(method: Callable[..., None]) -> Callable[..., None]:
    """A Lightning hook that runs on the global-zero process only and never raises: a failure
    of autolog code is a warning, and training goes on."""

    @functools.wraps(method)
    def hook(self: _AutologHooks, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if not trainer.is_global_zero:
            return
        try:
            with capture_warnings(self.config.silent):
                method(self, trainer, *args, **kwargs)
        except Exception as exc:  # autologging must never break training
            if not self.config.silent:
                log.warning("Encountered unexpected error during pytorch autologging: %s", exc)
            log.debug("pytorch autologging failure", exc_info=exc)

    return hook


class _AutologHooks:
    """The hooks of the callback autologging adds to a trainer (mixed into the Lightning
    package's ``Callback`` class by :func:`_callback_class`)."""

    def __init__(self, run_id: str, model_id: str | None, config: AutologConfig) -> None:
        self.run_id = run_id
        self.model_id = model_id
        self.config = config
        #: True while the autologged ``fit`` runs; a later fit without autologging logs nothing.
        self.fitting = True
        self.every_n_epoch: int = config.extra("log_every_n_epoch", 1)
        self.every_n_step: int | None = config.extra("log_every_n_step")
        self.steps_per_batch = 1
        self.step_metrics: set[str] = set()
        self.epoch_metrics: set[str] = set()
        self.example: tuple[Any, Any] | None = None
        self._module: Any = None
        self._own_forward: Any = None
        self.best_monitored: float | None = None
        self.warned_monitor = False
        self.step_checkpoints = bool(config.extra("checkpoint")) and isinstance(
            config.extra("checkpoint_save_freq"), int
        )

    # -- metrics and params --
    @_hook
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Tag the run ``Mode=training``; log the epochs and the optimizer's params."""
        if not self.fitting:
            return
        fluent._client().log_batch(self.run_id, tags=[RunTag("Mode", "training")])
        params: dict[str, Any] = {"epochs": trainer.max_epochs}
        if trainer.optimizers:
            # Lightning steps the global step once per optimizer per batch.
            self.steps_per_batch = len(trainer.optimizers)
            optimizer = trainer.optimizers[0]
            inner = getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer wrapper
            params["optimizer_name"] = type(inner).__name__
            params.update(getattr(inner, "defaults", {}))
        _log_params(self.run_id, params)
        if self.config.log_models and self.config.log_model_signatures:
            self._capture_first_forward(trainer.lightning_module)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        """Log step metrics every ``log_every_n_step`` steps; checkpoint every
        ``checkpoint_save_freq`` steps."""
        # Runs for every batch: by default nothing is logged per step, so return at once.
        if self.fitting and (self.every_n_step or self.step_checkpoints):
            self._on_batch(trainer)

    @_hook
    def _on_batch(self, trainer: Any) -> None:
        step = trainer.global_step
        if self.every_n_step and not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            # A metric logged on both steps and epochs appears as name, name_step and
            # name_epoch: the plain name is left to the epoch metrics (MLflow).
            items = {
                name: float(value)
                for name, value in metrics.items()
                if name not in self.epoch_metrics and f"{name}_step" not in metrics
            }
            self.step_metrics.update(items)
            if ((step // self.steps_per_batch) + 1) % self.every_n_step == 0:
                _log_metrics(self.run_id, items, step, self.model_id)
        freq = self.config.extra("checkpoint_save_freq")
        if self.step_checkpoints and step > 0 and step % freq == 0:
            self._checkpoint(trainer)

    @_hook
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Log the epoch's metrics at step = epoch; checkpoint when saving per epoch."""
        if not self.fitting or trainer.sanity_checking:
            return
        items = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name not in self.step_metrics
        }
        self.epoch_metrics.update(items)
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epoch == 0:
            _log_metrics(self.run_id, items, epoch, self.model_id)
        if self.config.extra("checkpoint_save_freq") == "epoch":
            self._checkpoint(trainer)

    @_hook
    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        """``trainer.test`` after an autologged fit: tag ``Mode=testing``, log its metrics."""
        if get_config(INTEGRATION) is None:
            return
        fluent._client().log_batch(self.run_id, tags=[RunTag("Mode", "testing")])
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        _log_metrics(self.run_id, metrics, 0, self.model_id)

    # -- the model signature from the first training batch --
    def _capture_first_forward(self, module: Any) -> None:
        import torch

        original = module.forward
        self._module = module
        self._own_forward = vars(module).get("forward")

        def forward(*inputs: Any, **kwargs: Any) -> Any:
            output = original(*inputs, **kwargs)
            if self._module is None:
                return output
            self.restore_forward()
            # A signature describes one tensor in and one tensor out.
            if (
                len(inputs) == 1
                and not kwargs
                and isinstance(inputs[0], torch.Tensor)
                and isinstance(output, torch.Tensor)
            ):
                self.example = (inputs[0].detach().cpu(), output.detach().cpu())
            return output

        # An instance attribute shadows the class's forward for ``module(x)`` and
        # ``module.forward(x)`` alike; restore_forward removes it before the model is saved.
        module.forward = forward

    def restore_forward(self) -> None:
        """Remove the first-batch capture from the module (idempotent)."""
        module, self._module = self._module, None
        if module is None:
            return
        if self._own_forward is not None:
            module.forward = self._own_forward
        else:
            vars(module).pop("forward", None)

    def signature(self) -> Any:
        """The signature inferred from the first training batch, or None."""
        if self.example is None:
            return None
        from runyard.models import infer_signature

        inputs, outputs = self.example
        try:
            return infer_signature(inputs.numpy(), outputs.float().numpy())
        except (RunyardError, TypeError, ValueError) as exc:
            if not self.config.silent:
                log.warning(
                    "Inferring model signature failed, skip logging signature. You need to "
                    "manually log the model with a provided signature after training. "
                    "root cause: %r.",
                    exc,
                )
            return None

    # -- checkpoints (MLflow's layout) --
    def _checkpoint(self, trainer: Any) -> None:
        if not self.config.extra("checkpoint"):
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        best_only = self.config.extra("checkpoint_save_best_only")
        if best_only and not self._improved(metrics):
            return
        weights_only = bool(self.config.extra("checkpoint_save_weights_only"))
        weights = _WEIGHTS_ONLY_SUFFIX if weights_only else ""
        if best_only:
            directory = _CHECKPOINT_DIR
            filename = f"{_LATEST_PREFIX}{_CHECKPOINT_FILE}{weights}{_CHECKPOINT_SUFFIX}"
            metrics_file = f"{_LATEST_PREFIX}{_CHECKPOINT_METRICS_FILE}"
        else:
            by_epoch = self.config.extra("checkpoint_save_freq") == "epoch"
            sub = (
                f"epoch_{trainer.current_epoch}"
                if by_epoch
                else f"global_step_{trainer.global_step}"
            )
            directory = f"{_CHECKPOINT_DIR}/{sub}"
            filename = f"{_CHECKPOINT_FILE}{weights}{_CHECKPOINT_SUFFIX}"
            metrics_file = _CHECKPOINT_METRICS_FILE
        client = fluent._client()
        client.log_batch(
            self.run_id,
            tags=[RunTag(LATEST_CHECKPOINT_ARTIFACT_TAG_KEY, f"{directory}/{filename}")],
        )
        details = {**metrics, "epoch": trainer.current_epoch, "global_step": trainer.global_step}
        fluent.log_dict(details, f"{directory}/{metrics_file}", run_id=self.run_id)
        with tempfile.TemporaryDirectory(prefix="runyard-checkpoint-") as tmp:
            path = os.path.join(tmp, filename)
            # Not trainer.save_checkpoint: its barrier would deadlock distributed training, where
            # this hook runs on the global-zero process only.
            state = trainer._checkpoint_connector.dump_checkpoint(weights_only)
            trainer.strategy.save_checkpoint(state, path)
            fluent.log_artifact(path, directory, run_id=self.run_id)

    def _improved(self, metrics: dict[str, float]) -> bool:
        monitor = self.config.extra("checkpoint_monitor")
        if monitor not in metrics:
            # Once per fit, not once per epoch: without a validation loop it never appears.
            if not self.config.silent and not self.warned_monitor:
                self.warned_monitor = True
                log.warning(
                    "Checkpoint logging is skipped, because checkpoint 'save_best_only' config is "
                    "True, it requires to compare the monitored metric value, but the provided "
                    "monitored metric value is not available."
                )
            return False
        value, best = metrics[monitor], self.best_monitored
        better = (
            best is None
            or (self.config.extra("checkpoint_mode") == "min" and value < best)
            or (self.config.extra("checkpoint_mode") == "max" and value > best)
        )
        if better:
            self.best_monitored = value
        return better


_callback_classes: dict[str, type] = {}


def _callback_class(package: Any) -> type:
    """The callback class for one Lightning package: its trainer accepts only its own
    ``Callback`` subclasses."""
    cls = _callback_classes.get(package.__name__)
    if cls is None:
        cls = type("RunyardAutologCallback", (_AutologHooks, package.Callback), {})
        cls.__module__ = __name__
        _callback_classes[package.__name__] = cls
    return cls


# -- checkpoints back -----------------------------------------------------------------------------
def load_checkpoint(
    model_class: Any,
    run_id: str | None = None,
    epoch: int | None = None,
    global_step: int | None = None,
    kwargs: dict[str, Any] | None = None,
) -> Any:
    """Load a checkpoint autologging logged, as ``model_class.load_from_checkpoint`` does.

    The run's latest checkpoint by default; with ``checkpoint_save_best_only=False``, the one of
    ``epoch`` (``checkpoint_save_freq="epoch"``) or of ``global_step`` (an integer frequency).

    Args:
        model_class: The ``LightningModule`` subclass that was trained.
        run_id: The run holding the checkpoints; the active run when None.
        epoch: The epoch whose checkpoint to load.
        global_step: The global step whose checkpoint to load.
        kwargs: Passed to ``load_from_checkpoint``.

    Raises:
        RunyardError: No run is given or active, the run has no checkpoint, or both ``epoch``
            and ``global_step`` were given.
    """
    if run_id is None:
        active = fluent.active_run()
        if active is None:
            raise RunyardError(
                "There is no active run, please provide the 'run_id' argument for "
                "'load_checkpoint' invocation."
            )
        run_id = active.info.run_id
    client = fluent._client()
    latest = client.get_run(run_id).data.tags.get(LATEST_CHECKPOINT_ARTIFACT_TAG_KEY)
    if latest is None:
        raise RunyardError("There is no logged checkpoint artifact in the current run.")
    if epoch is not None and global_step is not None:
        raise RunyardError(
            "Only one of 'epoch' and 'global_step' can be set for 'load_checkpoint'."
        )
    filename = posixpath.basename(latest)
    if global_step is not None:
        path = f"{_CHECKPOINT_DIR}/global_step_{global_step}/{filename}"
    elif epoch is not None:
        path = f"{_CHECKPOINT_DIR}/epoch_{epoch}/{filename}"
    else:
        path = latest
    with tempfile.TemporaryDirectory(prefix="runyard-checkpoint-") as tmp:
        local = client.download_artifacts(run_id, path, dst_path=tmp)
        return model_class.load_from_checkpoint(local, **(kwargs or {}))
