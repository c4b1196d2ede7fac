"""Fixtures for the tracking tests: each runs in the root conftest's isolated environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runyard.tracking.client import Client
from runyard.tracking.registry import release


@pytest.fixture(autouse=True)
def _isolated(tracking_env: str) -> str:
    """Every tracking test runs in the isolated environment of the root conftest."""
    return tracking_env


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
        release(uri, flush=False)
