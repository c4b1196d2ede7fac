"""Fixtures shared by the whole suite: an isolated tracking environment per test.

Tracking state is process-wide (the current URI, the fluent run stack, cached clients, the
per-URI stores and writers), so a test that tracks anything gets its own tmp dir as CWD, its own
SQLite file, an environment without the developer's RUNYARD_*/MLFLOW_* settings, and a clean
slate before and after.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import runyard.tracking.fluent as fluent
import runyard.tracking.uri as tracking_uri
from runyard.exceptions import MlflowException
from runyard.models.logging import forget_last_logged_model
from runyard.tracking.registry import release

#: Variables that would point a test at another store, experiment or run, or change logging.
FOREIGN_ENV = [
    f"{prefix}_{name}"
    for prefix in ("RUNYARD", "MLFLOW")
    for name in (
        "TRACKING_URI",
        "REGISTRY_URI",
        "EXPERIMENT_ID",
        "EXPERIMENT_NAME",
        "DEFAULT_ARTIFACT_ROOT",
        "RUN_ID",
        "RUN_CONTEXT",
        "ASYNC_LOGGING",
        "ASYNC_FLUSH_INTERVAL",
        "TRUNCATE_LONG_VALUES",
        "SPOOL_DIR",
        "OFFLINE",
        "OFFLINE_DIR",
    )
]


def reset_fluent_state() -> None:
    """End every active run of this thread, then forget runs, experiment, clients and URI."""
    while fluent._state.runs:
        try:
            fluent.end_run()
        except MlflowException:
            # A run the test deleted (or a refused queued value) cannot be ended cleanly.
            if fluent._state.runs:
                fluent._state.runs.pop()
    fluent._state.experiment_id = None
    fluent._last_active_run_id = None
    fluent._clients.clear()
    tracking_uri._tracking_uri = None
    forget_last_logged_model()


@pytest.fixture
def clean_env() -> dict[str, str]:
    """``os.environ`` without the variables in FOREIGN_ENV, for child processes."""
    return {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}


@pytest.fixture
def tracking_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new ``sqlite:///<tmp>/t.db`` in ``MLFLOW_TRACKING_URI``, with ``tmp_path`` as CWD."""
    for name in FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/t.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    reset_fluent_state()
    yield uri
    reset_fluent_state()
    release(uri, flush=False)
