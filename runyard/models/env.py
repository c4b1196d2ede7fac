"""The environment files of a model directory, in MLflow's layouts.

``requirements.txt``: one requirement a line, ``runyard==<version>`` first, then the flavor's
defaults pinned to the installed versions (or the user's ``pip_requirements``, or the defaults
plus ``extra_pip_requirements``). ``conda.yaml``::

    channels: [conda-forge]
    dependencies: [python=3.11.7, pip<=24.0, {pip: [runyard==0.1.0, ...]}]
    name: mlflow-env

``python_env.yaml``: ``python``, ``build_dependencies`` (pip/setuptools/wheel pinned when
installed) and ``dependencies: [-r requirements.txt]``. ``constraints.txt`` when ``-c`` lines
were given.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.models.download import download_model
from runyard.models.model import MLMODEL_FILE_NAME, Model
from runyard.version import __version__

__all__ = [
    "CONDA_ENV_FILE_NAME",
    "CONSTRAINTS_FILE_NAME",
    "PYTHON_ENV_FILE_NAME",
    "REQUIREMENTS_FILE_NAME",
    "conda_env_dict",
    "get_model_dependencies",
    "get_pinned_requirement",
    "parse_pip_requirements",
    "python_env_dict",
    "resolve_requirements",
    "validate_env_arguments",
    "write_env_files",
]

CONDA_ENV_FILE_NAME = "conda.yaml"
REQUIREMENTS_FILE_NAME = "requirements.txt"
CONSTRAINTS_FILE_NAME = "constraints.txt"
PYTHON_ENV_FILE_NAME = "python_env.yaml"
PYTHON_VERSION = platform.python_version()
_BUILD_PACKAGES = ("pip", "setuptools", "wheel")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _installed_version(package: str) -> str | None:
    # Each lookup scans sys.path (~2 ms); every logged model asks for the same few packages.
    return _version_on_path(package, tuple(sys.path))


@functools.lru_cache(maxsize=256)
def _version_on_path(package: str, path: tuple[str, ...]) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def get_pinned_requirement(package: str, version: str | None = None) -> str:
    """``package==<installed version>`` (local labels such as ``+cu121`` dropped)."""
    name, _, extras = package.partition("[")
    if version is None:
        version = _installed_version(name)
        if version is None:
            raise InvalidParameterValue(
                f"Cannot pin '{name}': the package is not installed in this environment"
            )
    version = version.split("+", 1)[0]
    return f"{name}[{extras}=={version}" if extras else f"{name}=={version}"


def runyard_requirement() -> str:
    """The requirement every runyard model carries first."""
    return f"runyard=={__version__}"


def _requirement_name(line: str) -> str | None:
    match = _NAME.match(line)
    if match is None or line.lstrip().startswith("-"):
        return None
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _logical_lines(lines: Iterable[str]) -> Iterator[str]:
    pending = ""
    for raw in lines:
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            yield line


def _parse(lines: Iterable[str], base_dir: str, constraint: bool) -> Iterator[tuple[str, bool]]:
    for line in _logical_lines(lines):
        flag, _, rest = line.partition(" ")
        if flag in ("-r", "--requirement", "-c", "--constraint"):
            path = os.path.join(base_dir, rest.strip())
            with open(path) as handle:
                nested = handle.read().splitlines()
            is_constraint = flag in ("-c", "--constraint")
            yield from _parse(nested, os.path.dirname(path), is_constraint)
        else:
            yield line, constraint


def parse_pip_requirements(
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None,
) -> tuple[list[str], list[str]]:
    """(requirements, constraints) from a list of lines or a requirements file path.

    Comments and blank lines are dropped, continued lines joined, ``-r file`` expanded and
    ``-c file`` lines collected as constraints.
    """
    if pip_requirements is None:
        return [], []
    if isinstance(pip_requirements, (str, os.PathLike)):
        path = os.fspath(pip_requirements)
        with open(path) as handle:
            lines = handle.read().splitlines()
        parsed = list(_parse(lines, os.path.dirname(path), False))
    else:
        lines = list(pip_requirements)
        if not all(isinstance(x, str) for x in lines):
            raise TypeError(
                "`pip_requirements` must be either a string path to a pip requirements file on "
                "the local filesystem or an iterable of pip requirement strings, but got "
                f"`{type(pip_requirements)}`"
            )
        parsed = list(_parse(lines, os.getcwd(), False))
    return [r for r, c in parsed if not c], [r for r, c in parsed if c]


def _deduplicate(requirements: list[str]) -> list[str]:
    """Keep one line per package: the first, unless a later one pins what the first did not."""
    result: list[str] = []
    index: dict[str, int] = {}
    for req in requirements:
        name = _requirement_name(req)
        if name is None or name not in index:
            if name is not None:
                index[name] = len(result)
            result.append(req)
        elif _requirement_name(result[index[name]]) == result[index[name]].strip().lower():
            result[index[name]] = req
    return result


def validate_env_arguments(
    conda_env: Any, pip_requirements: Any, extra_pip_requirements: Any
) -> None:
    """Refuse more than one of ``conda_env``, ``pip_requirements``, ``extra_pip_requirements``."""
    given = [x for x in (conda_env, pip_requirements, extra_pip_requirements) if x is not None]
    if len(given) > 1:
        raise ValueError(
            "Only one of `conda_env`, `pip_requirements`, and `extra_pip_requirements` can be "
            "specified"
        )


def conda_env_dict(pip_requirements: list[str]) -> dict[str, Any]:
    """MLflow's conda environment around ``pip_requirements``."""
    dependencies: list[Any] = [f"python={PYTHON_VERSION}"]
    if pip_requirements:
        pip_version = _installed_version("pip")
        dependencies.append(f"pip<={pip_version}" if pip_version else "pip")
        dependencies.append({"pip": list(pip_requirements)})
    return {"name": "mlflow-env", "channels": ["conda-forge"], "dependencies": dependencies}


def python_env_dict() -> dict[str, Any]:
    """MLflow's ``python_env.yaml`` content for the running interpreter."""
    build = []
    for package in _BUILD_PACKAGES:
        version = _installed_version(package)
        build.append(f"{package}=={version}" if version else package)
    return {
        "python": PYTHON_VERSION,
        "build_dependencies": build,
        "dependencies": [f"-r {REQUIREMENTS_FILE_NAME}"],
    }


def _pip_deps_of(conda_env: dict[str, Any]) -> list[str]:
    for dep in conda_env.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            return list(dep["pip"])
    return []


def _with_pip_deps(conda_env: dict[str, Any], pip_deps: list[str]) -> dict[str, Any]:
    deps = list(conda_env.get("dependencies") or [])
    for i, dep in enumerate(deps):
        if isinstance(dep, dict) and "pip" in dep:
            deps[i] = {"pip": pip_deps}
            break
    else:
        deps.append({"pip": pip_deps})
    return {**conda_env, "dependencies": deps}


def resolve_requirements(
    default_pip_requirements: list[str],
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    conda_env: dict[str, Any] | str | None = None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(conda env dict, requirements.txt lines, constraints) for a model being saved."""
    validate_env_arguments(conda_env, pip_requirements, extra_pip_requirements)
    if conda_env is not None:
        if isinstance(conda_env, (str, os.PathLike)):
            with open(conda_env) as handle:
                conda_env = yaml.safe_load(handle)
        if not isinstance(conda_env, dict):
            raise TypeError(
                "Expected a string path to a conda env yaml file or a `dict` representing a "
                f"conda env, but got `{type(conda_env).__name__}`"
            )
        reqs, constraints = parse_pip_requirements(_pip_deps_of(conda_env))
    elif pip_requirements is not None:
        reqs, constraints = parse_pip_requirements(pip_requirements)
    else:
        extra, constraints = parse_pip_requirements(extra_pip_requirements)
        reqs = list(default_pip_requirements) + extra
    if not any(_requirement_name(r) == "runyard" for r in reqs):
        reqs.insert(0, runyard_requirement())
    reqs = _deduplicate(reqs)
    if constraints:
        reqs.append(f"-c {CONSTRAINTS_FILE_NAME}")
    env = _with_pip_deps(conda_env, reqs) if conda_env is not None else conda_env_dict(reqs)
    return env, reqs, constraints


def write_env_files(
    path: str | os.PathLike[str],
    default_pip_requirements: list[str],
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    conda_env: dict[str, Any] | str | None = None,
) -> None:
    """Write conda.yaml, requirements.txt, python_env.yaml (and constraints.txt) into ``path``."""
    env, reqs, constraints = resolve_requirements(
        default_pip_requirements, pip_requirements, extra_pip_requirements, conda_env
    )
    root = Path(path)
    with open(root / CONDA_ENV_FILE_NAME, "w") as out:
        yaml.safe_dump(env, out, default_flow_style=False)
    if constraints:
        (root / CONSTRAINTS_FILE_NAME).write_text("\n".join(constraints))
    (root / REQUIREMENTS_FILE_NAME).write_text("\n".join(reqs))
    with open(root / PYTHON_ENV_FILE_NAME, "w") as out:
        yaml.safe_dump(python_env_dict(), out, sort_keys=False, default_flow_style=False)


def _conda_yaml_path(model_dir: str) -> str:
    model = Model.load(os.path.join(model_dir, MLMODEL_FILE_NAME))
    env = (model.flavors.get("python_function") or {}).get("env")
    name = env if isinstance(env, str) else (env or {}).get("conda", CONDA_ENV_FILE_NAME)
    return os.path.join(model_dir, name)


def get_model_dependencies(model_uri: str, format: str = "pip") -> str:
    """The local path of the model's ``requirements.txt`` (``format="pip"``) or ``conda.yaml``.

    Without a requirements.txt, the pip section of conda.yaml is written to a temporary file.
    """
    if format not in ("pip", "conda"):
        raise InvalidParameterValue(f"Illegal format argument '{format}'.")
    model_dir = download_model(model_uri)
    if format == "conda":
        return _conda_yaml_path(model_dir)
    requirements = os.path.join(model_dir, REQUIREMENTS_FILE_NAME)
    if os.path.exists(requirements):
        return requirements
    with open(_conda_yaml_path(model_dir)) as handle:
        conda_env = yaml.safe_load(handle) or {}
    if not any(isinstance(d, dict) and "pip" in d for d in conda_env.get("dependencies") or []):
        raise ResourceDoesNotExist(
            "No pip section found in conda.yaml file in the model directory."
        )
    out = os.path.join(tempfile.mkdtemp(), REQUIREMENTS_FILE_NAME)
    Path(out).write_text("\n".join(_pip_deps_of(conda_env)) + "\n")
    return out
