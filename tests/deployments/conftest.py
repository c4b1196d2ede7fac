"""Fixtures for the deployment tests: the CLI in-process and an isolated state directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runyard.cli import main

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]


@pytest.fixture
def deployments_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``RUNYARD_DEPLOYMENTS_DIR`` pointed at a fresh directory."""
    root = tmp_path / "deployments"
    monkeypatch.setenv("RUNYARD_DEPLOYMENTS_DIR", str(root))
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: a fixed, roomy width
    monkeypatch.setenv("NO_COLOR", "1")
    return root


@pytest.fixture
def cli() -> Invoke:
    """Run ``runyard ARGS...`` in-process; unexpected exceptions propagate."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def user_error() -> ErrorCheck:
    """Check that a result is exactly one ``Error: ...`` line on stderr with exit status 1."""

    def check(result: Result, fragment: str) -> None:
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: "), lines[0]
        assert fragment in lines[0], lines[0]

    return check
