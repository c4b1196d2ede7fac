"""Fixtures for the tracking tests: a fresh SQLite store and clean fluent state per test.

Tracking state is process-wide (the current URI, the fluent run stack, the cached clients, the
per-URI stores and writers), so every test gets its own tmp dir as CWD and its own database, and
everything the previous test left behind is reset before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import runyard.tracking.fluent as fluent
import runyard.tracking.registry as registry
import runyard.tracking.uri as tracking_uri
import runyard.tracking.writer as writer_mod
from runyard.exceptions import MlflowException
from runyard.tracking.client import Client

#: Variables that would point a test at another store, experiment or run, or change logging.
_FOREIGN_ENV = [
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


def release_uri(uri: str) -> None:
    """Drop the cached store and writer of ``uri`` so no later test can reach them."""
    writer = registry._writers.pop(uri, None)
    if writer is not None:
        writer._queue = []
        writer._errors = []
        if writer in writer_mod._all_writers:
            writer_mod._all_writers.remove(writer)
    store = registry._stores.pop(uri, None)
    if store is not None:
        store.close()


@pytest.fixture(autouse=True)
def tracking_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new ``sqlite:///<tmp>/t.db`` in ``MLFLOW_TRACKING_URI``, with ``tmp_path`` as CWD."""
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/t.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    reset_fluent_state()
    yield uri
    reset_fluent_state()
    release_uri(uri)


@pytest.fixture(params=["async", "sync"])
def logging_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with background logging on (the default) and off."""
    if request.param == "sync":
        monkeypatch.setenv("RUNYARD_ASYNC_LOGGING", "false")
    else:
        monkeypatch.delenv("RUNYARD_ASYNC_LOGGING", raising=False)
    return str(request.param)


@pytest.fixture
def client(tracking_env: str, logging_mode: str) -> Client:
    """A client on the test's store, in both logging modes."""
    return Client()


@pytest.fixture
def run_id(client: Client) -> str:
    """A RUNNING run in the Default experiment."""
    return client.create_run("0").info.run_id


@pytest.fixture
def other_uri(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``other_uri("x.db")``: another SQLite URI in tmp_path, released after the test."""
    made: list[str] = []

    def make(name: str) -> str:
        uri = f"sqlite:///{tmp_path}/{name}"
        made.append(uri)
        return uri

    yield make
    for uri in made:
        release_uri(uri)
