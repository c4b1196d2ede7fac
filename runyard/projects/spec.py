"""The ``MLproject`` file: entry points, typed parameters, command templates and environments.

The format is MLflow's (``mlflow/projects/_project_spec.py``)::

    name: tutorial
    python_env: python_env.yaml        # or conda_env: conda.yaml, or docker_env: {image: ...}
    entry_points:
      main:
        parameters:
          alpha: {type: float, default: 0.5}
          data: path                     # shorthand: a type and no default (required)
        command: "python train.py --alpha {alpha} --data {data}"

Parameter types are ``string``, ``float``, ``int``, ``path`` and ``uri`` (any other label is
taken as a string). Unlike MLflow 3, which passes numbers through unchecked, ``float`` and ``int``
values are checked before anything starts, and a bad one is refused with the parameter's name.
A directory without an ``MLproject`` file is a project too: its ``.py`` and ``.sh`` files are
entry points, run as ``python <file>`` and ``$SHELL <file>``.
"""

from __future__ import annotations

import os
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from runyard.errors import InvalidParameterValue, RunyardError

__all__ = [
    "CONDA_ENV",
    "DEFAULT_CONDA_FILE_NAME",
    "DEFAULT_PYTHON_ENV_FILE_NAME",
    "DOCKER_ENV",
    "PYTHON_ENV",
    "EntryPoint",
    "ExecutionException",
    "InvalidProjectParameter",
    "Parameter",
    "Project",
    "ResolvedParameters",
    "find_mlproject",
    "load_project",
    "local_path_or_none",
]

MLPROJECT_FILE_NAME = "mlproject"  # matched case-insensitively, as MLflow does
DEFAULT_PYTHON_ENV_FILE_NAME = "python_env.yaml"
DEFAULT_CONDA_FILE_NAME = "conda.yaml"

#: The environment kinds (MLflow's ``env_type``), which are also the MLproject keys.
PYTHON_ENV = "python_env"
CONDA_ENV = "conda_env"
DOCKER_ENV = "docker_env"
_ENV_KEYS = (PYTHON_ENV, CONDA_ENV, DOCKER_ENV)

_NUMERIC = {"float": "a float", "int": "an integer"}


class ExecutionException(RunyardError):
    """A project could not be loaded or run (MLflow's ``ExecutionException``)."""


class InvalidProjectParameter(ExecutionException, InvalidParameterValue):
    """A project parameter is missing or its value does not fit its type.

    Both an :class:`ExecutionException` (what MLflow raises) and an
    :class:`~runyard.errors.InvalidParameterValue` (what it is).
    """

    default_code = "INVALID_PARAMETER_VALUE"


def _invalid(message: str) -> ExecutionException:
    return ExecutionException(f"Project configuration (MLproject file) was invalid: {message}")


def local_path_or_none(value: str) -> str | None:
    """The local path ``value`` names (a plain path or a ``file:`` URI), else None."""
    parsed = urlparse(value)
    # A one-letter scheme is a Windows drive letter.
    if parsed.scheme == "" or len(parsed.scheme) == 1:
        return value
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return unquote(parsed.path)
    return None


def _is_uri(value: str) -> bool:
    return len(urlparse(value).scheme) > 0


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of an entry point: its name, type and default (None: required)."""

    name: str
    type: str = "string"
    default: Any = None

    @classmethod
    def from_yaml(cls, name: str, doc: Any) -> Parameter:
        """From ``name: <type>`` or ``name: {type: <type>, default: <value>}``."""
        if isinstance(doc, str):
            return cls(name, doc)
        if doc is None:
            return cls(name)
        if not isinstance(doc, Mapping):
            raise _invalid(
                f"parameter '{name}' must be a type name or a mapping with 'type' and 'default'"
            )
        return cls(name, str(doc.get("type", "string")), doc.get("default"))

    def check(self, value: Any, entry_point: str, base: Path | None = None) -> str:
        """``value`` as text, refused when it does not fit the type.

        ``path`` values must exist when local (remote ones are downloaded later) and are made
        absolute, relative to ``base`` when given (else the working directory); ``uri`` values
        must be URIs.
        """
        text = str(value)
        if self.type in _NUMERIC:
            if not _parses(text, float if self.type == "float" else int):
                raise InvalidProjectParameter(
                    f"Invalid value '{text}' for parameter '{self.name}' of entry point "
                    f"'{entry_point}': expected {_NUMERIC[self.type]}."
                )
        elif self.type == "uri" and not _is_uri(text):
            raise InvalidProjectParameter(f"Expected URI for parameter {self.name} but got {text}")
        elif self.type == "path":
            local = local_path_or_none(text)
            if local is not None:
                if base is not None:
                    local = os.path.join(base, local)
                if not os.path.exists(local):
                    raise InvalidProjectParameter(
                        f"Got value {text} for parameter {self.name}, but no such file or "
                        "directory was found."
                    )
                return os.path.abspath(local)
        return text


def _parses(text: str, kind: type[float] | type[int]) -> bool:
    try:
        kind(text.strip())
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ResolvedParameters:
    """An entry point's parameters after checking.

    ``declared`` holds the values the command gets (local ``path`` values made absolute),
    ``given`` the same parameters as the user gave them (or their defaults), and ``extra`` the
    parameters the entry point does not declare.
    """

    declared: dict[str, str]
    given: dict[str, str]
    extra: dict[str, str]

    def logged(self) -> dict[str, str]:
        """The values logged as the run's params: as given (as MLflow does), then extras."""
        return {**self.given, **self.extra}

    def replace(self, **declared: str) -> ResolvedParameters:
        """A copy with some command values replaced (e.g. by downloaded paths)."""
        return ResolvedParameters({**self.declared, **declared}, self.given, self.extra)


@dataclass(frozen=True)
class EntryPoint:
    """A named command with its declared parameters."""

    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def resolve(
        self, user_parameters: Mapping[str, Any] | None, project_dir: Path | None = None
    ) -> ResolvedParameters:
        """Check every parameter (missing ones first, then types) and return their values.

        Values given by the user win over defaults; parameters the entry point does not
        declare are kept as extra ones, passed on as ``--name value``. Relative ``path``
        values given by the user are taken from the working directory (as MLflow does), and
        relative defaults from ``project_dir``, where the MLproject that names them lives.
        """
        given = {str(k): v for k, v in (user_parameters or {}).items()}
        missing = [n for n, p in self.parameters.items() if n not in given and p.default is None]
        if missing:
            names = ", ".join(f"'{name}'" for name in missing)
            raise InvalidProjectParameter(f"No value given for missing parameters: {names}")
        values = {name: given.get(name, p.default) for name, p in self.parameters.items()}
        declared = {
            name: p.check(values[name], self.name, None if name in given else project_dir)
            for name, p in self.parameters.items()
        }
        extra = {k: str(v) for k, v in given.items() if k not in self.parameters}
        return ResolvedParameters(declared, {k: str(v) for k, v in values.items()}, extra)

    def command_for(self, params: ResolvedParameters) -> str:
        """The shell command: the template filled in with shell-quoted values, then every
        extra parameter appended as ``--name value``."""
        quoted = {k: shlex.quote(v) for k, v in params.declared.items()}
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(self.command) if f is not None]
            unknown = [n for n in names if n.split(".")[0].split("[")[0] not in quoted]
            if unknown:
                raise ExecutionException(
                    f"The command of entry point '{self.name}' refers to {{{unknown[0]}}}, "
                    f"which is not one of its parameters ({', '.join(self.parameters) or 'none'})"
                )
            command = self.command.format(**quoted)
        except (ValueError, IndexError) as exc:
            raise _invalid(
                f"the command of entry point '{self.name}' is malformed: {exc}"
            ) from None
        parts = [command]
        parts += [f"--{shlex.quote(k)} {shlex.quote(v)}" for k, v in params.extra.items()]
        return " ".join(parts)


def _script_entry_point(name: str, known: list[str]) -> EntryPoint:
    extension = os.path.splitext(name)[1]
    runners = {".py": "python", ".sh": os.environ.get("SHELL") or "bash"}
    if extension in runners:
        return EntryPoint(name, f"{runners[extension]} {shlex.quote(name)}")
    raise ExecutionException(
        f"Could not find {name} among entry points {known} or interpret {name} as a runnable "
        f"script. Supported script file extensions: {list(runners)}"
    )


@dataclass(frozen=True)
class Project:
    """A loaded project: where it lives, its entry points and its environment."""

    directory: Path
    name: str | None = None
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)
    env_type: str | None = None
    env_config_path: Path | None = None
    docker_env: dict[str, Any] | None = None

    def get_entry_point(self, name: str) -> EntryPoint:
        """The declared entry point ``name``, else ``name`` run as a ``.py``/``.sh`` script."""
        if name in self.entry_points:
            return self.entry_points[name]
        return _script_entry_point(name, list(self.entry_points))


def find_mlproject(directory: str | os.PathLike[str]) -> Path | None:
    """The ``MLproject`` file of ``directory`` (any letter case), or None."""
    for entry in sorted(os.listdir(directory)):
        if entry.lower() == MLPROJECT_FILE_NAME:
            return Path(directory) / entry
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ExecutionException(f"Could not parse {path}: {' '.join(str(exc).split())}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _invalid(f"{path.name} must hold a mapping (name, entry_points, ...)")
    return doc


def _entry_points(doc: dict[str, Any]) -> dict[str, EntryPoint]:
    entries = doc.get("entry_points") or {}
    if not isinstance(entries, Mapping):
        raise _invalid("'entry_points' must be a mapping of names to entry points")
    out: dict[str, EntryPoint] = {}
    for name, entry in entries.items():
        entry = entry or {}
        command = entry.get("command") if isinstance(entry, Mapping) else None
        if not command:
            raise _invalid(f"entry point '{name}' has no command")
        parameters = entry.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise _invalid(f"the parameters of entry point '{name}' must be a mapping")
        params = {str(k): Parameter.from_yaml(str(k), v) for k, v in parameters.items()}
        out[str(name)] = EntryPoint(str(name), str(command), params)
    return out


def _check_docker_env(docker_env: Any) -> dict[str, Any]:
    if not isinstance(docker_env, Mapping) or not docker_env.get("image"):
        raise _invalid("Docker environment specified but no image attribute found.")
    volumes = docker_env.get("volumes")
    if volumes and not (isinstance(volumes, list) and all(isinstance(v, str) for v in volumes)):
        raise _invalid(
            'Docker volumes must be a list of strings, e.g.: \'["/path1/:/path1", '
            '"/path2/:/path2"]\''
        )
    environment = docker_env.get("environment")
    if environment and not (
        isinstance(environment, list) and all(isinstance(e, (list, str)) for e in environment)
    ):
        raise _invalid(
            "environment must be a list containing either strings (to copy environment "
            "variables from host system) or lists of string pairs (to define new environment "
            'variables). E.g.: \'[["NEW_VAR", "new_value"], "VAR_TO_COPY_FROM_HOST"]\''
        )
    return dict(docker_env)


def _env_file(directory: Path, key: str, value: Any) -> Path:
    path = directory / str(value)
    if not path.exists():
        what = "python_env" if key == PYTHON_ENV else "conda environment"
        raise ExecutionException(
            f"Project specified {what} file {path}, but no such file was found."
        )
    return path


def load_project(directory: str | os.PathLike[str]) -> Project:
    """Load the project in ``directory`` from its ``MLproject`` file (all defaults without one).

    The environment is the one the file names (``python_env``, ``conda_env`` or
    ``docker_env``; more than one is an error); without one, a ``python_env.yaml`` or
    ``conda.yaml`` beside it; else none (the project runs in the current environment).
    """
    root = Path(directory).resolve()
    mlproject = find_mlproject(root)
    doc = _read_yaml(mlproject) if mlproject is not None else {}
    env_keys = sorted(k for k in _ENV_KEYS if k in doc)
    if len(env_keys) > 1:
        raise ExecutionException(
            f"Project cannot contain multiple environment fields: {set(env_keys)}"
        )
    name = doc.get("name")
    project = Project(root, str(name) if name is not None else None, _entry_points(doc))
    if DOCKER_ENV in doc:
        docker = _check_docker_env(doc[DOCKER_ENV])
        return _with_env(project, DOCKER_ENV, None, docker)
    for key in (PYTHON_ENV, CONDA_ENV):
        if doc.get(key):
            return _with_env(project, key, _env_file(root, key, doc[key]))
    for key, default in ((PYTHON_ENV, DEFAULT_PYTHON_ENV_FILE_NAME), (CONDA_ENV, "conda.yaml")):
        if (root / default).is_file():
            return _with_env(project, key, root / default)
    return project


def _with_env(
    project: Project, env_type: str, path: Path | None, docker: dict[str, Any] | None = None
) -> Project:
    return Project(project.directory, project.name, project.entry_points, env_type, path, docker)
