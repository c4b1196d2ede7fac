"""Autolog options, the version check and the top-level ``runyard.autolog()``."""

from __future__ import annotations

import dataclasses
import importlib
import logging

import pytest
import sklearn

import runyard
from runyard.autolog import INTEGRATIONS, versions
from runyard.autolog.config import AutologConfig, enable_integration, get_config, set_config
from runyard.autolog.patching import revert_patches


def test_defaults_are_mlflows() -> None:
    config = AutologConfig()
    assert (
        config.log_models,
        config.log_input_examples,
        config.log_model_signatures,
        config.log_datasets,
        config.disable,
        config.exclusive,
        config.disable_for_unsupported_versions,
        config.silent,
        config.registered_model_name,
        config.extra_tags,
        config.extras,
    ) == (True, False, True, True, False, False, False, False, None, None, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.silent = True  # type: ignore[misc]
    tuned = AutologConfig(extras={"max_tuning_runs": 2})
    assert tuned.extra("max_tuning_runs") == 2
    assert tuned.extra("missing", "fallback") == "fallback"


def test_set_get_and_disable() -> None:
    assert get_config("config-test") is None
    config = AutologConfig(log_models=False)
    set_config("config-test", config)
    assert get_config("config-test") is config
    set_config("config-test", AutologConfig(disable=True))
    assert get_config("config-test") is None


def test_version_ranges() -> None:
    assert versions.is_supported("pytorch", "2.13.0+cpu")
    assert versions.is_supported("sklearn", "1.9.4")
    assert versions.is_supported("sklearn", "1.4rc1")
    assert not versions.is_supported("sklearn", "1.10.0")
    assert not versions.is_supported("sklearn", "0.24.2")
    assert versions.is_supported("unknown-integration", "0.0.1")
    assert versions.installed_version("sklearn") == sklearn.__version__


@pytest.fixture
def sklearn_range_excludes_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        versions.SUPPORTED_VERSIONS,
        "config-sk",
        versions.VersionRange("scikit-learn", "sklearn", "0.1", "0.2"),
    )


def test_unsupported_version_warns_once_and_goes_ahead(
    sklearn_range_excludes_installed: None, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
            assert enable_integration("config-sk", AutologConfig())
            assert enable_integration("config-sk", AutologConfig())
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1
        assert "unsupported version of scikit-learn" in messages[0]
        assert sklearn.__version__ in messages[0]
        assert get_config("config-sk") is not None
    finally:
        set_config("config-sk", AutologConfig(disable=True))


def test_unsupported_version_can_disable(sklearn_range_excludes_installed: None) -> None:
    set_config("config-sk", AutologConfig())
    assert not enable_integration("config-sk", AutologConfig(disable_for_unsupported_versions=True))
    assert get_config("config-sk") is None


def test_disable_flag_disables(caplog: pytest.LogCaptureFixture) -> None:
    set_config("config-off", AutologConfig())
    assert not enable_integration("config-off", AutologConfig(disable=True))
    assert get_config("config-off") is None


def test_top_level_autolog_is_the_function() -> None:
    importlib.import_module("runyard.autolog.sklearn")
    assert callable(runyard.autolog)
    assert runyard.autolog.__module__ == "runyard.autolog"
    assert "autolog" in runyard.__all__
    assert INTEGRATIONS == {
        "sklearn": "runyard.autolog.sklearn",
        "xgboost": "runyard.autolog.xgboost",
        "lightgbm": "runyard.autolog.lightgbm",
        "pytorch": "runyard.autolog.pytorch",
    }


def test_top_level_autolog_enables_and_disables_sklearn(tracking_env: str) -> None:
    try:
        runyard.autolog(log_models=False, extra_tags={"k": "v"}, silent=True)
        config = get_config("sklearn")
        assert config is not None
        assert config.log_models is False
        assert config.extra_tags == {"k": "v"}
        # sklearn's own option keeps its default when set through runyard.autolog().
        assert config.extra("max_tuning_runs") == 5
    finally:
        runyard.autolog(disable=True, silent=True)
        for integration in INTEGRATIONS:
            revert_patches(integration)
    assert get_config("sklearn") is None
