"""Autologging options per integration: what ``<flavor>.autolog(...)`` was last called with.

An integration is *enabled* while a config is stored for it. ``autolog(disable=True)`` removes the
config, so the patched functions pass straight through to the library's originals (the patches
stay installed; :func:`runyard.autolog.patching.revert_patches` removes them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from runyard.autolog import versions

__all__ = ["AutologConfig", "enable_integration", "get_config", "set_config"]


@dataclass(frozen=True)
class AutologConfig:
    """The options common to every integration, plus integration-specific ``extras``.

    The names and defaults are MLflow's, so ``mlflow.<flavor>.autolog(...)`` calls keep working.
    """

    log_models: bool = True
    log_input_examples: bool = False
    log_model_signatures: bool = True
    log_datasets: bool = True
    disable: bool = False
    exclusive: bool = False
    disable_for_unsupported_versions: bool = False
    silent: bool = False
    registered_model_name: str | None = None
    extra_tags: dict[str, Any] | None = None
    #: Integration-specific options (``max_tuning_runs``, ``log_every_n_step``, ...).
    extras: dict[str, Any] = field(default_factory=dict)

    def extra(self, name: str, default: Any = None) -> Any:
        """The integration-specific option ``name``, or ``default`` when it was not given."""
        return self.extras.get(name, default)


_lock = threading.Lock()
_configs: dict[str, AutologConfig] = {}


def set_config(integration: str, config: AutologConfig) -> None:
    """Store ``config`` as the integration's options; a config with ``disable=True`` disables it."""
    with _lock:
        if config.disable:
            _configs.pop(integration, None)
        else:
            _configs[integration] = config


def get_config(integration: str) -> AutologConfig | None:
    """The integration's options, or None when it was never enabled or has been disabled."""
    return _configs.get(integration)


def enable_integration(integration: str, config: AutologConfig) -> bool:
    """Store ``config`` after the version check; True when the integration should patch now.

    False when ``config.disable`` is set, or when the installed library version is outside the
    supported range and ``disable_for_unsupported_versions`` is set; the integration is then
    disabled. An unsupported version otherwise logs one warning and autologging goes ahead.
    """
    if config.disable:
        set_config(integration, config)
        return False
    supported = versions.check_version(integration, silent=config.silent)
    if not supported and config.disable_for_unsupported_versions:
        set_config(integration, AutologConfig(disable=True))
        return False
    set_config(integration, config)
    return True
