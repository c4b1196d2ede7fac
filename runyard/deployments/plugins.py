"""Deployment targets by name: the built-in ``local`` target and plugins found through the
``runyard.deployments`` entry-point group.

A plugin distribution declares, in its packaging metadata::

    [project.entry-points."runyard.deployments"]
    redisai = "runyard_redisai.deploy"

and the module it names holds one :class:`~runyard.deployments.base.BaseDeploymentClient`
subclass, ``run_local`` and ``target_help`` (see :mod:`runyard.deployments.base`). Entry points are
read on every lookup, so a plugin installed while a process runs is found by its next call.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
from typing import Any

from runyard.deployments.base import BaseDeploymentClient
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError

__all__ = [
    "BUILTIN_TARGETS",
    "ENTRY_POINT_GROUP",
    "MLFLOW_ENTRY_POINT_GROUP",
    "get_deploy_client",
    "installed_targets",
    "load_plugin",
    "parse_target_uri",
    "run_local",
    "target_help",
]

_logger = logging.getLogger(__name__)

#: The entry-point group runyard reads deployment plugins from.
ENTRY_POINT_GROUP = "runyard.deployments"
#: MLflow's group: its plugins import ``mlflow`` and are reported, not loaded.
MLFLOW_ENTRY_POINT_GROUP = "mlflow.deployments"
#: Targets that ship with runyard: name → module.
BUILTIN_TARGETS: dict[str, str] = {"local": "runyard.deployments.local"}

_REQUIRED_FUNCTIONS = ("run_local", "target_help")


def parse_target_uri(target_uri: str) -> str:
    """The target's name: ``local`` for ``local``, ``local:/srv/deployments`` or ``local:``."""
    name = target_uri.partition(":")[0].strip()
    if name and "/" not in name:
        return name
    raise InvalidParameterValue(
        f"Not a proper deployment URI: {target_uri}. "
        "Deployment URIs must be of the form 'target' or 'target:/suffix'"
    )


def _entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=group):
        # The first one on sys.path wins, as for imports.
        found.setdefault(entry_point.name, entry_point)
    return found


def _plugin_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found = _entry_points(ENTRY_POINT_GROUP)
    for name in BUILTIN_TARGETS:
        if name in found:
            _logger.warning(
                "Ignoring the deployment plugin %r (%s): '%s' is a built-in target.",
                name,
                found[name].value,
                name,
            )
            del found[name]
    return found


def installed_targets() -> list[str]:
    """Names of every target that ``get_deploy_client`` can use: built-in, then plugins."""
    return [*BUILTIN_TARGETS, *sorted(_plugin_entry_points())]


def _unknown_target(target: str) -> ResourceDoesNotExist:
    message = (
        f'No plugin found for managing model deployments to "{target}". '
        f"Installed targets: {', '.join(installed_targets())}. "
        f'To deploy models to "{target}", install a plugin that registers it under the '
        f"entry-point group '{ENTRY_POINT_GROUP}'."
    )
    mlflow_only = _entry_points(MLFLOW_ENTRY_POINT_GROUP).get(target)
    if mlflow_only is not None:
        message += (
            f" '{target}' is installed as an MLflow plugin only ('{MLFLOW_ENTRY_POINT_GROUP}' "
            f"-> {mlflow_only.value}), which imports mlflow; it needs a '{ENTRY_POINT_GROUP}' "
            "entry point whose module subclasses runyard.deployments.BaseDeploymentClient."
        )
    return ResourceDoesNotExist(message)


def _deployment_classes(plugin: Any) -> list[type[BaseDeploymentClient]]:
    return [
        obj
        for _, obj in inspect.getmembers(plugin, inspect.isclass)
        if issubclass(obj, BaseDeploymentClient)
        and obj is not BaseDeploymentClient
        and not inspect.isabstract(obj)
    ]


def _check_plugin(target: str, plugin: Any) -> None:
    missing = [name for name in _REQUIRED_FUNCTIONS if not callable(getattr(plugin, name, None))]
    if missing:
        raise RunyardError(
            f"Plugin registered for the target {target} does not have all the required "
            f"interfaces. Raise an issue with the plugin developers. Missing interfaces: "
            f"{', '.join(missing)}"
        )
    classes = _deployment_classes(plugin)
    if len(classes) > 1:
        raise RunyardError(
            f"Plugin registered for the target {target} has more than one child class of "
            "BaseDeploymentClient. Raise an issue with the plugin developers. Classes found "
            f"are {sorted(cls.__name__ for cls in classes)}"
        )
    if not classes:
        raise RunyardError(
            f"Plugin registered for the target {target} has no child class of "
            "runyard.deployments.BaseDeploymentClient. Raise an issue with the plugin developers"
        )


def load_plugin(target_uri: str) -> Any:
    """The plugin module (or object) serving ``target_uri``, checked for the interface."""
    target = parse_target_uri(target_uri)
    if target in BUILTIN_TARGETS:
        plugin: Any = importlib.import_module(BUILTIN_TARGETS[target])
    else:
        entry_point = _plugin_entry_points().get(target)
        if entry_point is None:
            raise _unknown_target(target)
        try:
            plugin = entry_point.load()
        except (AttributeError, ImportError) as exc:
            raise RunyardError(f'Failed to load the plugin "{target}": {exc}') from exc
    _check_plugin(target, plugin)
    return plugin


def get_deploy_client(target_uri: str) -> BaseDeploymentClient:
    """A client for the deployment target ``target_uri`` (``local``, ``sagemaker:/...``).

    Example::

        client = get_deploy_client("local")
        client.create_deployment("fraud", "models:/fraud@champion")
        client.predict("fraud", df)
    """
    plugin = load_plugin(target_uri)
    return _deployment_classes(plugin)[0](target_uri)


def run_local(
    target: str,
    name: str,
    model_uri: str,
    flavor: str | None = None,
    config: dict[str, Any] | None = None,
) -> None:
    """Serve ``model_uri`` locally in the foreground as ``target`` would (for testing); the
    result is not a managed deployment."""
    plugin = load_plugin(target)
    plugin.run_local(name, model_uri, flavor, config)


def target_help(target: str) -> str:
    """The target's own documentation: its URI format and ``config`` keys."""
    return str(load_plugin(target).target_help())
