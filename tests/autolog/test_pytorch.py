"""runyard.pytorch.autolog: Lightning's Trainer.fit logs params, metrics, checkpoints and the model.

Every test trains a real (tiny) LightningModule on the CPU for a few epochs; a recording callback
added by the test captures ``trainer.callback_metrics`` so the logged values are compared exactly.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import runyard
import runyard.pytorch as rpt
from runyard.autolog.patching import revert_patches
from runyard.autolog.pytorch import LATEST_CHECKPOINT_ARTIFACT_TAG_KEY, load_checkpoint
from runyard.errors import InvalidParameterValue

pytestmark = [
    # Lightning 2.6 on torch 2.13 uses a deprecated torch pytree API, and it points out that a
    # two-batch epoch is smaller than its logging interval; neither concerns autologging.
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
]

INPUTS = 4


class TinyRegressor(L.LightningModule):
    """y = x·w through one linear layer, trained with SGD on an MSE loss."""

    def __init__(self, lr: float = 0.05, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(INPUTS, 1)
        self.lr = lr
        self.fail_at_epoch = fail_at_epoch
        self.raised: BaseException | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.fail_at_epoch is not None and self.current_epoch == self.fail_at_epoch:
            self.raised = RuntimeError("training_step exploded")
            raise self.raised
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))
        self.log("val_const", 1.0)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Recorder(L.Callback):
    """What Lightning reported: callback metrics at each epoch end and each batch end."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self.steps: list[tuple[int, dict[str, float]]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.steps.append((trainer.global_step, values))


@pytest.fixture
def loader() -> DataLoader[Any]:
    """32 rows in two batches of 16: a deterministic linear target."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, INPUTS, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return DataLoader(TensorDataset(x, y), batch_size=16)


@pytest.fixture
def autolog_off(tracking_env: str) -> Iterator[str]:
    """A clean tracking store; PyTorch autologging disabled and unpatched afterwards."""
    yield tracking_env
    rpt.autolog(disable=True)
    revert_patches("pytorch")


def trainer(tmp_path: Path, epochs: int = 3, **kwargs: Any) -> L.Trainer:
    """A quiet CPU trainer writing its own checkpoints to a directory of its own."""
    torch.manual_seed(0)
    return L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tempfile.mkdtemp(dir=tmp_path),
        num_sanity_val_steps=0,
        **kwargs,
    )


def new_model(**kwargs: Any) -> TinyRegressor:
    torch.manual_seed(0)
    return TinyRegressor(**kwargs)


def only_run() -> Any:
    runs = runyard.search_runs(output_format="list")
    assert len(runs) == 1
    return runyard.get_run(runs[0].info.run_id)


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in runyard.Client().get_metric_history(run_id, key)]


def approx_series(points: Any) -> list[tuple[int, Any]]:
    """(step, value) pairs with exact steps and approximate values (pytest.approx is flat)."""
    return [(step, pytest.approx(value)) for step, value in points]


def artifact_paths(run_id: str, path: str | None = None) -> list[str]:
    return sorted(f.path for f in runyard.Client().list_artifacts(run_id, path))


def test_fit_logs_params_epoch_metrics_summary_and_model(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(checkpoint=False)
    recorder = Recorder()
    model = new_model()
    trainer(tmp_path, callbacks=[recorder]).fit(model, loader, loader)

    run = only_run()
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.autologging"] == "pytorch"
    assert run.data.tags["Mode"] == "training"
    defaults = {k: str(v) for k, v in model.optimizers().optimizer.defaults.items()}
    assert run.data.params == {"epochs": "3", "optimizer_name": "SGD", **defaults}
    assert run.data.params["lr"] == "0.05"

    assert len(recorder.epochs) == 3
    expected_keys = {"train_loss", "train_loss_step", "train_loss_epoch", "val_loss", "val_const"}
    assert set(run.data.metrics) == expected_keys
    for key in expected_keys:
        assert history(run_id, key) == approx_series(
            [(epoch, values[key]) for epoch, values in enumerate(recorder.epochs)]
        )
    assert run.data.metrics["val_loss"] == pytest.approx(recorder.epochs[-1]["val_loss"])

    assert artifact_paths(run_id) == ["model_summary.txt"]
    summary = runyard.artifacts.load_text(f"runs:/{run_id}/model_summary.txt")
    assert "layer" in summary
    assert "Linear" in summary
    assert "Trainable params" in summary

    logged = runyard.last_logged_model()
    assert logged is not None
    assert logged.name == "model"
    assert logged.source_run_id == run_id
    assert logged.status == "READY"
    # Metrics are linked to the logged model, as MLflow 3 does.
    assert {m.key for m in logged.metrics} == expected_keys
    loaded = rpt.load_model(logged.model_uri)
    x = torch.randn(5, INPUTS)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    # The signature comes from the first training batch: a (-1, 4) float32 tensor in.
    signature = runyard.pyfunc.load_model(logged.model_uri).metadata.signature
    assert signature is not None
    assert signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, INPUTS]}}
    ]
    # The first-batch capture is gone from the module.
    assert "forward" not in vars(model)


def test_step_metrics_and_epoch_interval(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(log_every_n_step=1, log_every_n_epoch=2, log_models=False, checkpoint=False)
    recorder = Recorder()
    trainer(tmp_path, callbacks=[recorder]).fit(new_model(), loader, loader)

    run_id = only_run().info.run_id
    # Step metrics at Lightning's global step (1..6 for 3 epochs of 2 batches).
    assert history(run_id, "train_loss_step") == approx_series(
        [(step, values["train_loss_step"]) for step, values in recorder.steps]
    )
    assert [step for step, _ in recorder.steps] == [1, 2, 3, 4, 5, 6]
    # The epoch metrics, every second epoch (epoch 1 only), without the step metric.
    assert history(run_id, "train_loss_epoch") == approx_series(
        [(1, recorder.epochs[1]["train_loss_epoch"])]
    )
    assert history(run_id, "val_loss") == approx_series([(1, recorder.epochs[1]["val_loss"])])
    assert runyard.last_logged_model() is None


def test_active_run_is_reused_and_left_open(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(log_models=False, checkpoint=False)
    with runyard.start_run() as run:
        trainer(tmp_path, epochs=2).fit(new_model(), loader, loader)
        active = runyard.active_run()
        assert active is not None
        assert active.info.run_id == run.info.run_id
    logged = only_run()
    assert logged.info.run_id == run.info.run_id
    assert "mlflow.autologging" not in logged.data.tags
    assert [step for step, _ in history(run.info.run_id, "val_loss")] == [0, 1]


def test_early_stopping_params_metrics_and_restored_checkpoint(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    from lightning.pytorch.callbacks import EarlyStopping

    rpt.autolog(checkpoint=False)
    # val_const never improves after epoch 0: training stops at epoch 2 with patience 2.
    stopper = EarlyStopping(monitor="val_const", patience=2)
    trainer(tmp_path, epochs=10, callbacks=[stopper]).fit(new_model(), loader, loader)

    run = only_run()
    params = run.data.params
    assert {k: params[k] for k in ("monitor", "mode", "patience", "stopped_epoch")} == {
        "monitor": "val_const",
        "mode": "min",
        "patience": "2",
        "stopped_epoch": "0",  # logged before training, as MLflow does
    }
    assert float(params["min_delta"]) == 0.0
    assert stopper.stopped_epoch == 2
    metrics = run.data.metrics
    assert metrics["stopped_epoch"] == 2
    assert metrics["restored_epoch"] == 0
    assert metrics["best_score"] == 1.0
    assert metrics["wait_count"] == 2
    assert [step for step, _ in history(run.info.run_id, "val_loss")] == [0, 1, 2]
    restored = artifact_paths(run.info.run_id, "restored_model_checkpoint")
    assert len(restored) == 1
    assert restored[0].endswith(".ckpt")


def test_best_checkpoint_is_logged_and_loads(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(log_models=False)  # checkpoint=True, monitor val_loss, mode min, best only
    recorder = Recorder()
    model = new_model()
    trainer(tmp_path, callbacks=[recorder]).fit(model, loader, loader)

    run = only_run()
    run_id = run.info.run_id
    assert run.data.tags[LATEST_CHECKPOINT_ARTIFACT_TAG_KEY] == "checkpoints/latest_checkpoint.pth"
    assert artifact_paths(run_id, "checkpoints") == [
        "checkpoints/latest_checkpoint.pth",
        "checkpoints/latest_checkpoint_metrics.json",
    ]
    losses = [values["val_loss"] for values in recorder.epochs]
    assert losses == sorted(losses, reverse=True)  # improves every epoch: the last is best
    details = runyard.artifacts.load_dict(
        f"runs:/{run_id}/checkpoints/latest_checkpoint_metrics.json"
    )
    assert details["epoch"] == 2
    assert details["global_step"] == 6
    assert details["val_loss"] == pytest.approx(losses[-1])
    restored = load_checkpoint(TinyRegressor, run_id)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[name], value)


def test_per_epoch_and_per_step_checkpoints(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(log_models=False, checkpoint_save_best_only=False)
    with runyard.start_run() as run:
        trainer(tmp_path, epochs=2).fit(new_model(), loader, loader)
    assert artifact_paths(run.info.run_id, "checkpoints") == [
        "checkpoints/epoch_0",
        "checkpoints/epoch_1",
    ]
    assert artifact_paths(run.info.run_id, "checkpoints/epoch_0") == [
        "checkpoints/epoch_0/checkpoint.pth",
        "checkpoints/epoch_0/checkpoint_metrics.json",
    ]
    first = load_checkpoint(TinyRegressor, run.info.run_id, epoch=0)
    assert isinstance(first, TinyRegressor)

    rpt.autolog(
        log_models=False,
        checkpoint_save_best_only=False,
        checkpoint_save_freq=2,
        checkpoint_save_weights_only=True,
    )
    with runyard.start_run() as run:
        trainer(tmp_path, epochs=2).fit(new_model(), loader, loader)
    assert artifact_paths(run.info.run_id, "checkpoints") == [
        "checkpoints/global_step_2",
        "checkpoints/global_step_4",
    ]
    tag = runyard.get_run(run.info.run_id).data.tags[LATEST_CHECKPOINT_ARTIFACT_TAG_KEY]
    assert tag == "checkpoints/global_step_4/checkpoint.weights.pth"
    with pytest.raises(runyard.MlflowException, match="Only one of 'epoch' and 'global_step'"):
        load_checkpoint(TinyRegressor, run.info.run_id, epoch=0, global_step=2)


def test_checkpoint_without_the_monitored_metric_warns_once(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rpt.autolog(log_models=False)  # monitors val_loss, which a fit without validation lacks
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        trainer(tmp_path).fit(new_model(), loader)
    assert caplog.text.count("Checkpoint logging is skipped") == 1
    run = only_run()
    assert artifact_paths(run.info.run_id) == ["model_summary.txt"]
    assert LATEST_CHECKPOINT_ARTIFACT_TAG_KEY not in run.data.tags


def test_failing_training_step_fails_the_run_with_the_same_exception(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(checkpoint=False)
    model = new_model(fail_at_epoch=1)
    with pytest.raises(RuntimeError, match="training_step exploded") as caught:
        trainer(tmp_path).fit(model, loader, loader)
    assert caught.value is model.raised
    run = only_run()
    assert run.info.status == "FAILED"
    assert [step for step, _ in history(run.info.run_id, "val_loss")] == [0]
    logged = runyard.last_logged_model()
    assert logged is not None
    assert logged.status == "FAILED"
    assert runyard.active_run() is None
    assert "forward" not in vars(model)


def test_disable_and_reenable(autolog_off: str, loader: DataLoader[Any], tmp_path: Path) -> None:
    rpt.autolog(log_models=False, checkpoint=False)
    rpt.autolog(disable=True)
    fitted = trainer(tmp_path, epochs=1)
    fitted.fit(new_model(), loader)
    assert runyard.search_runs(output_format="list") == []
    assert not any(type(c).__name__ == "RunyardAutologCallback" for c in fitted.callbacks)

    rpt.autolog(log_models=False, checkpoint=False)
    trainer(tmp_path, epochs=1).fit(new_model(), loader)
    assert set(only_run().data.metrics) == {"train_loss", "train_loss_step", "train_loss_epoch"}


def test_exclusive_leaves_user_runs_alone(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(exclusive=True, log_models=False, checkpoint=False)
    with runyard.start_run() as run:
        trainer(tmp_path, epochs=1).fit(new_model(), loader)
    logged = runyard.get_run(run.info.run_id)
    assert logged.data.metrics == {}
    assert logged.data.params == {}


def test_autolog_error_is_a_warning_and_training_completes(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rpt.autolog(log_models=False, checkpoint=False)
    model = new_model()
    with runyard.start_run() as run, caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        runyard.log_param("epochs", "99")  # the autologged params now clash with the run's
        trainer(tmp_path, epochs=2).fit(model, loader, loader)
    assert "Encountered unexpected error during pytorch autologging" in caplog.text
    assert model.current_epoch == 2  # training ran to the end
    logged = runyard.get_run(run.info.run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params["epochs"] == "99"
    assert [step for step, _ in history(run.info.run_id, "val_loss")] == [0, 1]


def test_trainer_test_after_fit_logs_test_metrics(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(log_models=False, checkpoint=False)
    fitted = trainer(tmp_path, epochs=1)
    model = new_model()
    with runyard.start_run() as run:
        fitted.fit(model, loader)
        results = fitted.test(model, loader, verbose=False)
    logged = runyard.get_run(run.info.run_id)
    assert logged.data.tags["Mode"] == "testing"
    assert logged.data.metrics["test_loss"] == pytest.approx(results[0]["test_loss"])


def test_registered_model_name_registers_the_model(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    rpt.autolog(registered_model_name="tiny-regressor", checkpoint=False)
    trainer(tmp_path, epochs=1).fit(new_model(), loader)
    versions = runyard.search_model_versions(filter_string="name = 'tiny-regressor'")
    assert [v.version for v in versions] == ["1"]
    logged = runyard.last_logged_model()
    assert logged is not None
    assert versions[0].source == logged.model_uri


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"log_every_n_step": 0}, "`log_every_n_step` must be a positive integer"),
        ({"log_every_n_epoch": None}, "`log_every_n_epoch` must be a positive integer"),
        ({"checkpoint_mode": "avg"}, "available modes includes 'min' and 'max'"),
        ({"checkpoint_monitor": None}, "you need to set 'monitor' config as well"),
        ({"checkpoint_save_freq": "batch"}, "`checkpoint_save_freq` must be 'epoch'"),
        ({"extra_tags": ["a"]}, "Invalid `extra_tags` type"),
    ],
)
def test_invalid_options_are_refused(
    autolog_off: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        rpt.autolog(**options)


def test_pytorch_lightning_package_is_patched_too(
    autolog_off: str, loader: DataLoader[Any], tmp_path: Path
) -> None:
    import pytorch_lightning as pl

    class PlRegressor(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(INPUTS, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=0.01)

    rpt.autolog(log_models=False, checkpoint=False)
    pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    ).fit(PlRegressor(), loader)
    run = only_run()
    assert run.data.params["optimizer_name"] == "Adam"
    assert run.data.params["lr"] == "0.01"
    assert [step for step, _ in history(run.info.run_id, "loss")] == [0, 1]


def test_raw_training_loop_logs_through_log_model(autolog_off: str) -> None:
    """Plain nn.Module loops have no hook: log metrics per epoch, then runyard.pytorch.log_model."""
    rpt.autolog()  # enabled, yet a raw loop creates no run of its own
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(INPUTS, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    x = torch.randn(32, INPUTS)
    y = x.sum(dim=1, keepdim=True)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert runyard.search_runs(output_format="list") == []

    with runyard.start_run() as run:
        for epoch, value in enumerate(losses):
            runyard.log_metrics({"train_loss": value}, step=epoch)
        info = rpt.log_model(net, name="model", input_example=x[:2].numpy())
    assert history(run.info.run_id, "train_loss") == approx_series(list(enumerate(losses)))
    loaded = rpt.load_model(info.model_uri)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), net(x).numpy(), rtol=1e-6)
    assert json.loads(json.dumps(info.signature.to_dict()))["inputs"]
