"""Autologging: one call before training logs what would otherwise be logged by hand.

``runyard.autolog()`` enables every integration whose library is installed;
``runyard.sklearn.autolog()``, ``runyard.xgboost.autolog()``, ``runyard.lightgbm.autolog()`` and
``runyard.pytorch.autolog()`` enable one. The machinery they share lives in
:mod:`runyard.autolog.config` (options), :mod:`runyard.autolog.patching` (safe, reversible patches
with an outermost-call guard), :mod:`runyard.autolog.runs` (the run logged into) and
:mod:`runyard.autolog.versions` (supported library versions).

``runyard.autolog`` is the function below (``runyard/__init__.py`` imports it eagerly so that
loading this package's submodules never rebinds the name); import submodules by their full name.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from typing import Any

from runyard.autolog.config import AutologConfig, get_config, set_config
from runyard.autolog.versions import SUPPORTED_VERSIONS

__all__ = ["INTEGRATIONS", "AutologConfig", "autolog", "get_config", "set_config"]

log = logging.getLogger("runyard.autolog")

#: Integration name → the module holding its ``autolog(**options)`` function.
INTEGRATIONS: dict[str, str] = {
    "sklearn": "runyard.autolog.sklearn",
    "xgboost": "runyard.autolog.xgboost",
    "lightgbm": "runyard.autolog.lightgbm",
    "pytorch": "runyard.autolog.pytorch",
}


def _installed(integration: str) -> bool:
    rng = SUPPORTED_VERSIONS.get(integration)
    module = rng.module if rng is not None else integration
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
) -> None:
    """Enable (or, with ``disable=True``, disable) autologging for every installed library.

    Args:
        log_models: Log the trained model.
        log_input_examples: Save a few training rows as the model's input example.
        log_model_signatures: Infer and save the model's signature.
        log_datasets: Record the training (and evaluation) data as run inputs.
        disable: Turn autologging off; training functions run untouched.
        exclusive: Log only into runs autologging creates, never into the user's runs.
        disable_for_unsupported_versions: Skip libraries whose version is not supported.
        silent: No warnings or event logs from autologging.
        extra_tags: Tags added to the runs autologging creates.
        registered_model_name: Register each logged model as a new version of this model.
    """
    options: dict[str, Any] = {
        "log_models": log_models,
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_datasets": log_datasets,
        "disable": disable,
        "exclusive": exclusive,
        "disable_for_unsupported_versions": disable_for_unsupported_versions,
        "silent": silent,
        "extra_tags": extra_tags,
        "registered_model_name": registered_model_name,
    }
    for integration, module_name in INTEGRATIONS.items():
        if not _installed(integration):
            continue
        try:
            integration_autolog = importlib.import_module(module_name).autolog
            accepted = inspect.signature(integration_autolog).parameters
            takes_all = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
            integration_autolog(**{k: v for k, v in options.items() if takes_all or k in accepted})
        except Exception as exc:  # one broken integration must not stop the others
            if not silent:
                log.warning("Exception while attempting to autolog %s: %s", integration, exc)
