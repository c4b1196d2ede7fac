"""Fixtures for the projects tests: an isolated store, temp dirs and a report file per test."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def report(tracking_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``report.py`` writes (``$PROJECT_REPORT``), in a test whose tracking store,
    working directory and temp dirs (git clones, downloads) all live under ``tmp_path``."""
    monkeypatch.setenv("RUNYARD_ASYNC_LOGGING", "false")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    path = tmp_path / "report.json"
    monkeypatch.setenv("PROJECT_REPORT", str(path))
    return path


@pytest.fixture
def no_docker_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the docker CLI at a socket nothing listens on: no engine answers."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
