"""Fixtures for the CLI tests: a fresh SQLite store per test, driven through click's CliRunner."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from runyard.cli import main
from runyard.tracking.client import Client

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]


@pytest.fixture
def tracking_uri_env(tracking_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The isolated store of the root conftest, with synchronous logging and fixed-width tables."""
    uri = tracking_env
    monkeypatch.setenv("RUNYARD_ASYNC_LOGGING", "false")
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: a fixed, roomy width
    monkeypatch.setenv("NO_COLOR", "1")
    return uri


@pytest.fixture
def client(tracking_uri_env: str) -> Client:
    """A client on the same store the CLI uses, to set up data and check results."""
    return Client(tracking_uri_env)


@pytest.fixture
def cli(tracking_uri_env: str) -> Invoke:
    """Run ``runyard ARGS...`` in-process; unexpected exceptions propagate (no hidden bugs)."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def user_error() -> ErrorCheck:
    """Check that a result is exactly one ``Error: ...`` line on stderr with exit status 1."""

    def check(result: Result, fragment: str) -> None:
        # CliRunner(catch_exceptions=True) keeps an escaped exception here instead of raising.
        assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: "), lines[0]
        assert fragment in lines[0], lines[0]

    return check


@pytest.fixture
def usage_error() -> ErrorCheck:
    """Check that a result is click's usage error (exit status 2) mentioning ``fragment``."""

    def check(result: Result, fragment: str) -> None:
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "Usage:" in result.stderr
        assert fragment in result.stderr

    return check
