"""Browser tests of the web UI: a seeded runyard server and headless Chromium (Playwright).

* ``ui_server`` (session): a ``runyard server`` process whose store holds :class:`Seed`'s data —
  experiments (one deleted), nested runs, a failed and a running run, artifacts of every preview
  kind, a 20,000-point metric series and a registered model with versions and an alias.
* ``browser`` (session): the Debian ``chromium`` driven by Playwright (``RUNYARD_CHROMIUM``
  overrides the executable).
* ``ui`` (per test): a fresh page wrapped in :class:`UI`; the test fails on any console error or
  uncaught page exception it did not announce with ``ui.allow_console_error``. ``ui.shot(name)``
  keeps a screenshot in ``tests/ui/screenshots/`` (git-ignored, kept by CI).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.live_server import TrackingServer, start_server, stop_server

SCREENSHOTS = Path(__file__).parent / "screenshots"
LONG_SERIES_POINTS = 20_000


@dataclass
class Seed:
    """What the seeded store holds (ids the tests navigate to)."""

    url: str
    experiment_id: str
    experiment_name: str
    second_experiment_id: str
    deleted_experiment_id: str
    parent_run_id: str
    child_run_ids: list[str]
    long_run_id: str
    artifact_run_id: str
    failed_run_id: str
    running_run_id: str
    model_name: str
    run_names: dict[str, str] = field(default_factory=dict)


def _seed(url: str) -> Seed:
    import runyard
    from runyard.entities import Metric, Param, RunTag
    from runyard.models import infer_signature

    client = runyard.Client(tracking_uri=url, registry_uri=url)
    exp = client.create_experiment("ui-demo", tags={"team": "vision"})
    client.set_experiment_tag(exp, "mlflow.note.content", "Image classifiers for the **demo**.")
    second = client.create_experiment("ui-second")
    deleted = client.create_experiment("ui-deleted")
    client.delete_experiment(deleted)
    names: dict[str, str] = {}

    def run(name: str, **tags: str) -> str:
        created = client.create_run(exp, run_name=name, tags=tags or None)
        names[created.info.run_id] = name
        return created.info.run_id

    parent = run("sweep")
    client.log_param(parent, "search", "grid")
    children = []
    for i, (lr, opt) in enumerate([(0.1, "sgd"), (0.01, "adam"), (0.001, "adam")]):
        child = run(f"trial-{i}", **{"mlflow.parentRunId": parent})
        metrics = [
            Metric("loss", 1.0 / (step + 1) + lr, 1_700_000_000_000 + step * 1000, step)
            for step in range(50)
        ]
        metrics.append(Metric("accuracy", 0.7 + 0.1 * i, 1_700_000_100_000, 49))
        client.log_batch(
            child,
            metrics=metrics,
            params=[Param("lr", str(lr)), Param("optimizer", opt), Param("batch_size", "32")],
            tags=[RunTag("stage", "sweep")],
        )
        client.set_terminated(child)
        children.append(child)
    client.set_terminated(parent)

    long_run = run("long-history")
    steps = np.arange(LONG_SERIES_POINTS)
    values = np.exp(-steps / 5000) + 0.05 * np.sin(steps / 7)
    for start in range(0, LONG_SERIES_POINTS, 1000):
        client.log_batch(
            long_run,
            metrics=[
                Metric("loss", float(values[s]), 1_700_000_000_000 + int(s) * 100, int(s))
                for s in range(start, start + 1000)
            ],
        )
    client.set_terminated(long_run)

    art = run("with-artifacts")
    client.log_param(art, "lr", "0.05")
    client.log_metric(art, "accuracy", 0.93)
    client.set_tag(art, "mlflow.note.content", "# Notes\n\nTrained on *iris*.")
    client.log_text(art, "epoch 1 done\nepoch 2 done\n", "logs/train.log")
    client.log_text(art, "hello from runyard\n", "notes.txt")
    client.log_dict(art, {"layers": [64, 32], "dropout": 0.1}, "config.json")
    client.log_dict(art, {"optimizer": "adam", "epochs": 3}, "params.yaml")
    client.log_text(art, "a,b,label\n1,2,x\n3,4,y\n", "data/table.csv")
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    image[:, :24] = (200, 40, 40)
    client.log_image(art, image, "images/sample.png")
    with tempfile.TemporaryDirectory() as tmp:
        from sklearn.linear_model import LogisticRegression

        import runyard.sklearn

        X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.9, 0.8]])
        y = np.array([0, 1, 0, 1])
        model = LogisticRegression().fit(X, y)
        runyard.sklearn.save_model(
            model,
            os.path.join(tmp, "model"),
            signature=infer_signature(X, model.predict(X)),
        )
        client.log_artifacts(art, os.path.join(tmp, "model"), "model")
    client.set_terminated(art)

    failed = run("crashed")
    client.log_metric(failed, "loss", 3.0)
    client.set_terminated(failed, "FAILED")
    running = run("still-running")
    client.log_metric(running, "loss", 2.0, step=0)

    model_name = "ui-model"
    client.create_registered_model(model_name, description="A demo classifier.")
    source = client.get_run(art).info.artifact_uri + "/model"
    client.create_model_version(model_name, source, run_id=art)
    client.create_model_version(model_name, source, run_id=art, description="retrained")
    client.set_registered_model_alias(model_name, "champion", "1")
    client.create_registered_model("other-model")

    second_run = client.create_run(second, run_name="second-exp-run")
    client.log_metric(second_run.info.run_id, "loss", 0.5)
    client.set_terminated(second_run.info.run_id)
    runyard.flush()
    return Seed(
        url=url,
        experiment_id=exp,
        experiment_name="ui-demo",
        second_experiment_id=second,
        deleted_experiment_id=deleted,
        parent_run_id=parent,
        child_run_ids=children,
        long_run_id=long_run,
        artifact_run_id=art,
        failed_run_id=failed,
        running_run_id=running,
        model_name=model_name,
        run_names=names,
    )


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """A runyard server for the browser tests (empty; ``seed`` fills it)."""
    server = start_server(tmp_path_factory.mktemp("ui-server"), kind="runyard")
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def seed(ui_server: TrackingServer) -> Seed:
    """The seeded data (once per session). Tests may add to the store but must not change or
    delete what is seeded here; a test that needs to mutate creates its own objects."""
    return _seed(ui_server.url)


def _chromium() -> str:
    path = (
        os.environ.get("RUNYARD_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not path:
        raise RuntimeError(
            "UI tests need Chromium: apt-get install chromium (or set RUNYARD_CHROMIUM)"
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=_chromium(), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


class UI:
    """One browser page on the seeded server, collecting console errors."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text}")

    def goto(self, path: str) -> Any:
        """Open ``path`` (``/experiments/1``) and wait until the network is idle."""
        response = self.page.goto(self.base_url + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def allow_console_error(self, pattern: str) -> None:
        """Announce an expected console error (``"404"`` for a page that is meant to be 404)."""
        self._allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        """Console errors no ``allow_console_error`` pattern covers."""
        return [e for e in self.errors if not any(p.search(e) for p in self._allowed)]

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as ``tests/ui/screenshots/<name>.png``."""
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def ui(browser: Any, seed: Seed) -> Iterator[UI]:
    """A fresh 1280x800 page on the seeded server; fails the test on unexpected console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    helper = UI(page, seed.url)
    yield helper
    errors = helper.unexpected_errors()
    context.close()
    assert not errors, "\n".join(errors)
