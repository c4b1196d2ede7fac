"""Plumbing shared by the framework flavors (``runyard.sklearn``, ``pytorch``, ``xgboost``,
``lightgbm``): optional imports with an install hint, flavor configuration lookup, ``code/`` on
``sys.path``, class lookup by name, and the thin ``log_model`` call into
:mod:`runyard.models.logging`.

Nothing here imports a machine-learning framework at module import time.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError

__all__ = [
    "MODEL_CODE_SUBDIR",
    "add_code_to_sys_path",
    "class_path",
    "code_subdir",
    "flavor_configuration",
    "import_class",
    "local_model_dir",
    "log_flavor_model",
    "new_flavor_model_dir",
    "require",
]

#: Where ``code_paths`` are copied inside a model directory (MLflow's ``code`` key points here).
MODEL_CODE_SUBDIR = "code"


def require(module: str, *, package: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an error that names the package and the runyard extra to install.

    Args:
        module: Importable name, e.g. ``"sklearn"``.
        package: Distribution a user installs, e.g. ``"scikit-learn"``.
        extra: The runyard extra that pulls it in, e.g. ``"sklearn"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RunyardError(
            f"The '{module}' module of the '{package}' package is required here but could not be "
            f"imported ({exc}). Install it with: pip install 'runyard[{extra}]'"
        ) from exc


def local_model_dir(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Path:
    """A local directory holding the model that ``model_uri`` names (downloaded when remote)."""
    from runyard.models.download import download_model

    return Path(download_model(os.fspath(model_uri), dst_path))


def flavor_configuration(model_dir: str | os.PathLike[str], flavor_name: str) -> dict[str, Any]:
    """The ``flavors.<flavor_name>`` section of the model's MLmodel file.

    Raises:
        ResourceDoesNotExist: the model has no such flavor (MLflow's message).
    """
    from runyard.models import Model

    flavors: dict[str, Any] = Model.load(os.fspath(model_dir)).flavors
    conf = flavors.get(flavor_name)
    if not isinstance(conf, dict):
        raise ResourceDoesNotExist(f'Model does not have the "{flavor_name}" flavor')
    return conf


@contextlib.contextmanager
def new_flavor_model_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The new model directory (see ``runyard.models.save.new_model_dir``), emptied again when
    saving into it fails, so a failed save leaves no half-written model behind."""
    from runyard.models.save import new_model_dir

    existed = os.path.isdir(path)
    model_dir = new_model_dir(path)
    try:
        yield model_dir
    except BaseException:
        shutil.rmtree(model_dir, ignore_errors=True)
        if existed:
            model_dir.mkdir(parents=True, exist_ok=True)
        raise


def code_subdir(code_paths: list[str] | None) -> str | None:
    """The ``code`` value a flavor records: ``"code"`` when code paths are saved, else None."""
    if code_paths is None:
        return None
    if not isinstance(code_paths, list):
        raise TypeError(f"Argument code_paths should be a list, not {type(code_paths)}")
    return MODEL_CODE_SUBDIR if code_paths else None


def add_code_to_sys_path(model_dir: str | os.PathLike[str], conf: dict[str, Any]) -> None:
    """Put the model's saved ``code/`` directory first on ``sys.path`` (MLflow does the same)."""
    code = conf.get("code")
    if code:
        code_path = os.path.join(os.fspath(model_dir), str(code))
        if code_path in sys.path:
            sys.path.remove(code_path)
        sys.path.insert(0, code_path)


def class_path(obj: object) -> str:
    """``module.ClassName`` of ``obj``'s class, as MLflow records ``model_class``."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__name__}"


def import_class(qualified_name: str, *, allowed_package: str) -> type[Any]:
    """The class named ``package.module.Class``, refusing anything outside ``allowed_package``.

    The class name comes from the MLmodel file, so it is checked before anything is imported.
    """
    module_name, _, class_name = qualified_name.rpartition(".")
    root = module_name.split(".", 1)[0]
    if not module_name or root != allowed_package:
        raise InvalidParameterValue(
            f"Unsupported model_class '{qualified_name}': expected a class of the "
            f"'{allowed_package}' package."
        )
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not isinstance(cls, type):
        raise InvalidParameterValue(f"Unsupported model_class '{qualified_name}': no such class.")
    return cls


def log_flavor_model(flavor_module: str, name: str | None, **kwargs: Any) -> Any:
    """``<flavor>.log_model``: hand the call to :func:`runyard.models.logging.log_model`."""
    from runyard.models.logging import log_model

    return log_model(sys.modules[flavor_module], name, **kwargs)
