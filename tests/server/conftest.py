"""An in-process server per test (real SQLite, real artifact folder) behind Starlette's client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from runyard.server.app import create_app
from runyard.server.settings import ServerSettings


def make_client(tmp_path: Path, **overrides: Any) -> TestClient:
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
        **overrides,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as client:
        yield client


@pytest.fixture
def run_id(api: TestClient) -> str:
    exp = api.post("/api/2.0/mlflow/experiments/create", json={"name": "e"}).json()
    body = {"experiment_id": exp["experiment_id"], "start_time": 1000, "run_name": "r"}
    return str(api.post("/api/2.0/mlflow/runs/create", json=body).json()["run"]["info"]["run_id"])
