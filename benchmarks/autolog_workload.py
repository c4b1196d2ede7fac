"""One autolog overhead measurement, run unchanged against runyard and MLflow.

This file is executed as a script by the interpreter that has the library installed (the
current one for runyard, the MLflow venv for MLflow)::

    python benchmarks/autolog_workload.py --lib mlflow --case lightgbm [--quick]

It trains the same model on the same synthetic data several times in one process, alternately
with the library's autologging disabled and enabled (``<lib>.<flavor>.autolog()`` with its default
options, each autologged fit creating and ending its own run), in the current directory against
``sqlite:///<cwd>/bench.db``, and prints one JSON object on the last line of stdout: the times of
the first autologged fit of the process (``first_autolog_s``, which pays for lazy imports), the
per-repetition times without and with autologging, their medians, and the median of the paired
differences (each autologged fit minus the plain fit just before it). It then
checks that the last autologged run holds every per-iteration (per-epoch) metric point, so a
library that logs nothing cannot look fast. Anything the library prints goes to stderr.

Cases: ``lightgbm`` and ``xgboost`` (``train`` for 1,000 iterations with a training and a
validation set, one thread), ``pytorch`` (Lightning ``Trainer.fit`` of a small MLP for 20 epochs
with a validation loop). It only uses the standard library at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

CASES = ("lightgbm", "xgboost", "pytorch")


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; the defaults are the full benchmark."""

    rows: int = 20000
    features: int = 20
    iterations: int = 1000
    epochs: int = 20
    torch_rows: int = 4096
    batch_size: int = 64
    reps: int = 5


FULL = Sizes()
QUICK = Sizes(rows=1000, features=10, iterations=100, epochs=3, torch_rows=512, reps=1)


def _data(sizes: Sizes, rows: int) -> tuple[Any, Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    weights = rng.normal(size=sizes.features)

    def make(n: int) -> tuple[Any, Any]:
        X = rng.normal(size=(n, sizes.features))
        y = X @ weights + np.sin(3 * X[:, 0]) + rng.normal(scale=0.5, size=n)
        return X.astype("float64"), y.astype("float64")

    X, y = make(rows)
    Xv, yv = make(rows // 4)
    return X, y, Xv, yv


# -- the training calls ------------------------------------------------------------------------
def lightgbm_fit(sizes: Sizes) -> tuple[Callable[[], None], str, int]:
    """A ``lightgbm.train`` call; the metric key to check and its expected point count."""
    import lightgbm as lgb

    X, y, Xv, yv = _data(sizes, sizes.rows)
    params = {
        "objective": "regression",
        "num_leaves": 15,
        "learning_rate": 0.05,
        "num_threads": 1,
        "verbose": -1,
        "seed": 0,
    }

    def fit() -> None:
        train = lgb.Dataset(X, label=y)
        valid = lgb.Dataset(Xv, label=yv, reference=train)
        lgb.train(
            params,
            train,
            sizes.iterations,
            valid_sets=[train, valid],
            valid_names=["train", "valid"],
        )

    return fit, "valid-l2", sizes.iterations


def xgboost_fit(sizes: Sizes) -> tuple[Callable[[], None], str, int]:
    """An ``xgboost.train`` call; the metric key to check and its expected point count."""
    import xgboost as xgb

    X, y, Xv, yv = _data(sizes, sizes.rows)
    params = {"max_depth": 4, "eta": 0.05, "nthread": 1, "seed": 0}

    def fit() -> None:
        dtrain = xgb.DMatrix(X, label=y)
        dvalid = xgb.DMatrix(Xv, label=yv)
        xgb.train(
            params,
            dtrain,
            sizes.iterations,
            evals=[(dtrain, "train"), (dvalid, "valid")],
            verbose_eval=False,
        )

    return fit, "valid-rmse", sizes.iterations


def pytorch_fit(sizes: Sizes) -> tuple[Callable[[], None], str, int]:
    """A Lightning ``Trainer.fit``; the metric key to check and its expected point count."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)
    X, y, Xv, yv = _data(sizes, sizes.torch_rows)

    def loader(features: Any, target: Any, shuffle: bool) -> DataLoader[Any]:
        data = TensorDataset(
            torch.tensor(features, dtype=torch.float32),
            torch.tensor(target, dtype=torch.float32).unsqueeze(1),
        )
        return DataLoader(data, batch_size=sizes.batch_size, shuffle=shuffle)

    class MLP(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(sizes.features, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
            )

        def forward(self, x: Any) -> Any:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, target = batch
            loss = torch.nn.functional.mse_loss(self(x), target)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, target = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), target))

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    train_loader = loader(X, y, shuffle=True)
    valid_loader = loader(Xv, yv, shuffle=False)

    def fit() -> None:
        torch.manual_seed(0)
        trainer = L.Trainer(
            max_epochs=sizes.epochs,
            accelerator="cpu",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            num_sanity_val_steps=0,
            default_root_dir=os.path.join(os.getcwd(), "lightning"),
        )
        trainer.fit(MLP(), train_loader, valid_loader)

    return fit, "val_loss", sizes.epochs


FITS: dict[str, Callable[[Sizes], tuple[Callable[[], None], str, int]]] = {
    "lightgbm": lightgbm_fit,
    "xgboost": xgboost_fit,
    "pytorch": pytorch_fit,
}


# -- measurement -------------------------------------------------------------------------------
def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(lib: ModuleType, case: str, sizes: Sizes) -> dict[str, Any]:
    """Time the fit without and with autologging; check what the last autologged run holds."""
    flavor = importlib.import_module(f"{lib.__name__}.{case}")
    fit, metric_key, expected_points = FITS[case](sizes)
    fit()  # warm-up without autologging: library imports, thread pools, allocator
    flavor.autolog(silent=True)
    first = _timed(fit)
    baseline: list[float] = []
    autologged: list[float] = []
    for _ in range(sizes.reps):
        flavor.autolog(disable=True)
        baseline.append(_timed(fit))
        flavor.autolog(silent=True)
        autologged.append(_timed(fit))
    flavor.autolog(disable=True)

    run = lib.last_active_run()
    client = lib.MlflowClient()
    points = len(client.get_metric_history(run.info.run_id, metric_key))
    runs = len(lib.search_runs(output_format="list"))
    result: dict[str, Any] = {
        "first_autolog_s": first,
        "baseline_s": baseline,
        "autolog_s": autologged,
        "baseline_median_s": statistics.median(baseline),
        "autolog_median_s": statistics.median(autologged),
        # Each autologged fit against the plain fit just before it: drift on a busy machine
        # cancels out of the pair.
        "overhead_median_s": statistics.median(
            with_ - without for with_, without in zip(autologged, baseline, strict=True)
        ),
        "metric_key": metric_key,
        "metric_points": points,
        "runs": runs,
        "artifacts": sorted(f.path for f in client.list_artifacts(run.info.run_id)),
        "status": run.info.status,
    }
    problems = []
    if points != expected_points:
        problems.append(f"{metric_key}: {points} points logged, expected {expected_points}")
    if runs != sizes.reps + 1:
        problems.append(f"{runs} runs created, expected {sizes.reps + 1}")
    if problems:
        result["error"] = "; ".join(problems)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run one case for one library; print the JSON result last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", choices=("runyard", "mlflow"), required=True)
    parser.add_argument("--case", choices=CASES, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    real_stdout = sys.stdout
    payload: dict[str, Any] = {"lib": args.lib, "case": args.case, "sizes": asdict(sizes)}
    with contextlib.redirect_stdout(sys.stderr):
        try:
            lib = importlib.import_module(args.lib)
            payload["version"] = lib.__version__
            lib.set_tracking_uri(f"sqlite:///{os.path.join(os.getcwd(), 'bench.db')}")
            lib.set_experiment("autolog-bench")
            payload.update(measure(lib, args.case, sizes))
        except Exception as exc:
            traceback.print_exc()
            payload["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(payload), file=real_stdout, flush=True)
    return 1 if "error" in payload else 0


if __name__ == "__main__":
    sys.exit(main())
