"""Environment variables: RUNYARD_ first, MLFLOW_ as fallback; the docs table is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.config import ENV, Settings, env_table_markdown


def test_runyard_name_wins_over_mlflow_name() -> None:
    env = {"MLFLOW_TRACKING_URI": "sqlite:///m.db", "RUNYARD_TRACKING_URI": "sqlite:///r.db"}
    assert ENV.TRACKING_URI.get(env) == "sqlite:///r.db"
    assert ENV.TRACKING_URI.get({"MLFLOW_TRACKING_URI": "sqlite:///m.db"}) == "sqlite:///m.db"
    assert ENV.TRACKING_URI.get({}) is None


def test_booleans_and_floats() -> None:
    assert ENV.ASYNC_LOGGING.get({"RUNYARD_ASYNC_LOGGING": "false"}) is False
    assert ENV.ASYNC_LOGGING.get({"RUNYARD_ASYNC_LOGGING": "1"}) is True
    # async logging is ours: MLflow's variable of the same suffix does not exist.
    assert ENV.ASYNC_LOGGING.get({"MLFLOW_ASYNC_LOGGING": "false"}) is True
    assert ENV.ASYNC_FLUSH_INTERVAL.get({"RUNYARD_ASYNC_FLUSH_INTERVAL": "0.5"}) == 0.5
    with pytest.raises(ValueError, match="RUNYARD_ASYNC_LOGGING/MLFLOW_ASYNC_LOGGING"):
        ENV.ASYNC_LOGGING.get({"RUNYARD_ASYNC_LOGGING": "maybe"})


def test_settings_from_env() -> None:
    s = Settings.from_env({"MLFLOW_TRACKING_URI": "sqlite:///x.db", "RUNYARD_ASYNC_LOGGING": "0"})
    assert (s.tracking_uri, s.async_logging) == ("sqlite:///x.db", False)
    assert Settings.from_env({}).tracking_uri == "sqlite:///runyard.db"


def test_environment_doc_is_current() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "environment.md").read_text()
    assert env_table_markdown() in doc, "regenerate: python -m runyard.config"
