"""Environments a model is served from: ``local``, ``virtualenv``, ``uv`` and ``conda``.

:func:`prepare_environment` returns the Python executable that runs the scoring server
(``python -m runyard.serving``) for a model directory:

- ``local``: this interpreter, as it is.
- ``virtualenv``: a venv (the standard library's ``venv``, with pip) built from the model's
  ``python_env.yaml`` and ``requirements.txt``.
- ``uv``: the same environment, built with ``uv venv`` and ``uv pip install``.
- ``conda``: a conda environment from the model's ``conda.yaml``.

:func:`prepare_python_environment` and :func:`prepare_conda_environment` build the same cached
environments from a ``python_env.yaml`` or ``conda.yaml`` anywhere (an MLproject's), for
``runyard run``.

Built environments are cached under ``RUNYARD_ENV_ROOT`` (default ``~/.cache/runyard/envs``), in
a directory named by a hash of everything that goes into them: the Python version, the build
tools, the model's requirements, the env manager and how runyard is installed (from a
checkout: its path and ``pyproject.toml``, so a change of runyard's dependencies builds anew).
The model's own ``runyard==``/``mlflow==`` requirement is replaced by the running runyard: from
its source tree when it runs from a checkout (installed editable, so the environment follows the
code), else ``runyard==<version>`` from the package index.

A build holds a lock file, so two processes never build the same environment at once, and
writes a marker file last: a directory without the marker is a build that died half-way and is
removed before the next one, and a build that fails removes what it made. Environments are
built where they will live rather than renamed into place because a virtual environment is not
relocatable: its scripts and activation files embed its path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from runyard.config import ENV
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.models.env import (
    CONDA_ENV_FILE_NAME,
    PYTHON_ENV_FILE_NAME,
    REQUIREMENTS_FILE_NAME,
    parse_pip_requirements,
)
from runyard.models.model import MLMODEL_FILE_NAME, Model
from runyard.version import __version__

__all__ = [
    "ENV_MANAGERS",
    "Progress",
    "PythonEnv",
    "RunyardSource",
    "default_env_root",
    "environment_dir",
    "find_python",
    "model_requirements",
    "prepare_conda_environment",
    "prepare_environment",
    "prepare_python_environment",
    "python_env_from_conda_yaml",
    "read_python_env",
    "read_python_env_file",
    "runyard_source",
    "stderr_progress",
]

#: A callback that shows one line of progress to the user.
Progress = Callable[[str], None]

#: The accepted ``--env-manager`` values.
ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")

#: Written last into a finished environment; its absence marks a half-built one.
MARKER_FILE_NAME = ".runyard-env.json"

# Requirements that stand for runyard itself and are replaced by the running runyard.
_RUNYARD_NAMES = frozenset({"runyard", "mlflow", "mlflow-skinny"})
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_VERSION = re.compile(r"^(\d+)\.(\d+)")
_FILE_FLAGS = ("-r", "--requirement", "-c", "--constraint")


def stderr_progress(line: str) -> None:
    """The default progress sink: one line to stderr, flushed."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _requirement_name(line: str) -> str | None:
    if line.lstrip().startswith("-"):
        return None
    match = _NAME.match(line)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


# -- what the model needs -----------------------------------------------------------------------
@dataclass(frozen=True)
class PythonEnv:
    """A model's ``python_env.yaml``: its Python version, build tools and requirement lines."""

    python: str
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()

    @property
    def minor_version(self) -> str:
        """``major.minor`` of :attr:`python` (``"3.11"`` for ``"3.11.7"``)."""
        match = _VERSION.match(self.python.strip())
        if match is None:
            raise InvalidParameterValue(
                f"Invalid Python version '{self.python}' in the model's {PYTHON_ENV_FILE_NAME}: "
                "expected e.g. 3.11.7"
            )
        return f"{match.group(1)}.{match.group(2)}"


def _pyfunc_env(model_dir: Path) -> tuple[dict[str, Any], Any]:
    if not (model_dir / MLMODEL_FILE_NAME).is_file():
        raise ResourceDoesNotExist(f"'{model_dir}' is not a model directory: no MLmodel file")
    flavor = Model.load(model_dir).flavors.get("python_function") or {}
    return flavor, flavor.get("env")


def _conda_yaml_path(model_dir: Path, env: Any) -> Path:
    name = env if isinstance(env, str) else (env or {}).get("conda", CONDA_ENV_FILE_NAME)
    return model_dir / str(name)


def _load_conda_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    doc = yaml.safe_load(path.read_text())
    return doc if isinstance(doc, dict) else {}


def _conda_pip_deps(doc: dict[str, Any]) -> list[str]:
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            return [str(d) for d in dep["pip"] or []]
    return []


def _conda_python(doc: dict[str, Any]) -> str | None:
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, str) and re.match(r"^python\s*[=<>]", dep):
            return re.sub(r"^python\s*[=<>]=?\s*", "", dep)
    return None


def _parse_python_env(path: Path, invalid: str, default_python: str | None) -> PythonEnv:
    doc = yaml.safe_load(path.read_text())
    python = (doc.get("python") or default_python) if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not python:
        raise InvalidParameterValue(f"{invalid}: expected a mapping with a 'python' version")
    return PythonEnv(
        str(python),
        tuple(str(d) for d in doc.get("build_dependencies") or ()),
        tuple(str(d) for d in doc.get("dependencies") or ()),
    )


def read_python_env_file(path: str | os.PathLike[str]) -> PythonEnv:
    """A ``python_env.yaml`` file on its own (an MLproject's); without a ``python`` key it
    asks for this interpreter's version, as MLflow does."""
    file = Path(path)
    return _parse_python_env(file, f"Invalid {file.name} '{file}'", platform.python_version())


def python_env_from_conda_yaml(path: str | os.PathLike[str]) -> PythonEnv:
    """The virtualenv equivalent of a ``conda.yaml``: its Python version (this interpreter's
    when it names none) and the requirements of its ``pip`` section."""
    doc = _load_conda_yaml(Path(path))
    python = _conda_python(doc) or platform.python_version()
    return PythonEnv(python, (), tuple(_conda_pip_deps(doc)))


def read_python_env(model_dir: str | os.PathLike[str]) -> PythonEnv:
    """The model's ``python_env.yaml``; for models without one, the Python version from the
    MLmodel file (or ``conda.yaml``) and the requirements from ``requirements.txt`` (or the pip
    section of ``conda.yaml``)."""
    root = Path(model_dir)
    flavor, env = _pyfunc_env(root)
    name = env.get("virtualenv") if isinstance(env, dict) else None
    path = root / str(name or PYTHON_ENV_FILE_NAME)
    if path.is_file():
        return _parse_python_env(path, f"Invalid {path.name} in '{root}'", None)
    conda = _load_conda_yaml(_conda_yaml_path(root, env))
    python = flavor.get("python_version") or _conda_python(conda) or platform.python_version()
    if (root / REQUIREMENTS_FILE_NAME).is_file():
        return PythonEnv(str(python), (), (f"-r {REQUIREMENTS_FILE_NAME}",))
    return PythonEnv(str(python), (), tuple(_conda_pip_deps(conda)))


def model_requirements(
    model_dir: str | os.PathLike[str],
    python_env: PythonEnv | None = None,
    *,
    install_runyard: bool = True,
) -> tuple[list[str], list[str]]:
    """(requirements, constraints) the model's environment installs, ``-r`` files expanded.

    With ``install_runyard`` the ``runyard``/``mlflow`` lines are left out: runyard itself is
    installed separately (see :func:`runyard_source`).
    """
    root = Path(model_dir)
    env = python_env if python_env is not None else read_python_env(root)
    return _requirements(env, root, install_runyard)


def _requirements(env: PythonEnv, root: Path, install_runyard: bool) -> tuple[list[str], list[str]]:
    requirements: list[str] = []
    constraints: list[str] = []
    for line in env.dependencies:
        flag, _, rest = line.strip().partition(" ")
        if flag in _FILE_FLAGS:
            reqs, cons = parse_pip_requirements(str(root / rest.strip()))
            if flag in ("-c", "--constraint"):
                constraints.extend(reqs + cons)
            else:
                requirements.extend(reqs)
                constraints.extend(cons)
        elif line.strip():
            requirements.append(line.strip())
    if install_runyard:
        requirements = [r for r in requirements if _requirement_name(r) not in _RUNYARD_NAMES]
    return requirements, constraints


# -- where runyard comes from -------------------------------------------------------------------
@dataclass(frozen=True)
class RunyardSource:
    """Where the running runyard comes from: a source tree (editable or not), or the index."""

    path: Path | None = None
    editable: bool = False

    def pip_args(self) -> list[str]:
        """pip arguments that install this runyard: ``-e DIR``, ``DIR`` or ``runyard==<ver>``."""
        if self.path is None:
            return [f"runyard=={__version__}"]
        return ["-e", str(self.path)] if self.editable else [str(self.path)]

    def fingerprint(self) -> str:
        """A hash of the source tree's ``pyproject.toml`` (empty for the index): a cached
        environment is rebuilt when runyard's own dependencies change."""
        if self.path is None:
            return ""
        return hashlib.sha256((self.path / "pyproject.toml").read_bytes()).hexdigest()


def _is_runyard_tree(path: Path) -> bool:
    pyproject = path / "pyproject.toml"
    if not (pyproject.is_file() and (path / "runyard" / "__init__.py").is_file()):
        return False
    return re.search(r'^name\s*=\s*"runyard"', pyproject.read_text(), re.MULTILINE) is not None


def runyard_source() -> RunyardSource:
    """The running runyard's source tree when it runs from a checkout (editable install or
    ``PYTHONPATH``), the directory it was pip-installed from when that still exists, else
    nothing: install ``runyard==<version>`` from the index."""
    here = Path(__file__).resolve().parents[2]
    if _is_runyard_tree(here):
        return RunyardSource(here, editable=True)
    try:
        text = importlib.metadata.distribution("runyard").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        text = None
    if text:
        info = json.loads(text)
        url = urlparse(str(info.get("url", "")))
        path = Path(unquote(url.path))
        if url.scheme == "file" and "dir_info" in info and _is_runyard_tree(path):
            return RunyardSource(path, editable=bool(info["dir_info"].get("editable")))
    return RunyardSource(None)


# -- interpreters -------------------------------------------------------------------------------
def _interpreter_version(executable: str) -> str | None:
    try:
        proc = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_python(version: str, *, subject: str = "model") -> str:
    """An interpreter of ``version``'s major.minor: this one, else ``python3.X`` on PATH.

    Raises a one-line :class:`RunyardError` naming the version (and ``subject``, the model or
    the project that needs it) when none is found.
    """
    want = PythonEnv(version).minor_version
    have = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if want == have:
        return sys.executable
    candidate = shutil.which(f"python{want}")
    if candidate is not None and _interpreter_version(candidate) == want:
        return candidate
    verb = "serve" if subject == "model" else "run"
    raise RunyardError(
        f"The {subject} needs Python {want} (its {PYTHON_ENV_FILE_NAME} says python {version}), "
        f"but this is Python {have} and no python{want} was found on PATH. Install Python "
        f"{want}, or {verb} with --env-manager local to use this interpreter."
    )


def _env_python(env_dir: Path) -> Path:
    if sys.platform == "win32":
        return env_dir / "Scripts" / "python.exe"
    return env_dir / "bin" / "python"


# -- building -----------------------------------------------------------------------------------
def _tail(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "×", "fatal"))]
    text = " ".join(errors or lines[-1:]) or "no output"
    return text if len(text) <= 600 else text[:600] + " ..."


def _run(cmd: Sequence[str], what: str) -> None:
    """Run a build step; a failure becomes one line with the tool's own error."""
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
    except OSError as exc:
        raise RunyardError(f"Could not {what}: {exc}") from None
    if proc.returncode != 0:
        shown = " ".join(cmd[:4]) + (" ..." if len(cmd) > 4 else "")
        raise RunyardError(
            f"Could not {what} (`{shown}` exited with {proc.returncode}): "
            f"{_tail(proc.stderr or proc.stdout)}"
        )


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _lock(fd: int) -> None:
        while not _try_lock(fd):
            time.sleep(0.5)

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def _exclusive(lock_path: Path, progress: Progress) -> Iterator[None]:
    """Hold ``lock_path`` exclusively (released by the OS if this process dies)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        if not _try_lock(handle.fileno()):
            progress(f"Waiting for another process that is building {lock_path.stem} ...")
            _lock(handle.fileno())
        try:
            yield
        finally:
            _unlock(handle.fileno())


def _build(env_dir: Path, steps: Callable[[], None], record: dict[str, Any]) -> None:
    """Run ``steps`` into a fresh ``env_dir`` and mark it finished; on any failure (or an
    interrupt) remove the directory, so nothing half-made is ever used."""
    if env_dir.exists():
        shutil.rmtree(env_dir)  # left over by a build that died before its marker was written
    try:
        steps()
        marker = env_dir / MARKER_FILE_NAME
        partial = marker.with_suffix(".tmp")
        partial.write_text(json.dumps({**record, "created": time.time()}, indent=2))
        os.replace(partial, marker)
    except BaseException:
        shutil.rmtree(env_dir, ignore_errors=True)
        raise


@dataclass(frozen=True)
class _Plan:
    """What goes into one environment; its hash names the cache directory."""

    env_manager: str
    python_env: PythonEnv
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    runyard_args: tuple[str, ...]
    extra: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        doc = json.dumps(
            [
                self.env_manager,
                self.python_env.python,
                self.python_env.build_dependencies,
                self.requirements,
                self.constraints,
                self.runyard_args,
                __version__,
                self.extra,
            ]
        )
        prefix = "venv" if self.env_manager == "virtualenv" else self.env_manager
        return f"runyard-{prefix}-{hashlib.sha256(doc.encode()).hexdigest()[:20]}"

    def describe(self) -> dict[str, Any]:
        return {
            "env_manager": self.env_manager,
            "python": self.python_env.python,
            "requirements": list(self.requirements),
            "constraints": list(self.constraints),
            "runyard": list(self.runyard_args),
            "runyard_version": __version__,
        }

    def install_args(self, env_dir: Path) -> list[str]:
        """pip arguments installing runyard and the requirements (written into ``env_dir``)."""
        args = list(self.runyard_args)
        if self.requirements:
            path = env_dir / "runyard-requirements.txt"
            path.write_text("\n".join(self.requirements) + "\n")
            args += ["-r", str(path)]
        if self.constraints:
            path = env_dir / "runyard-constraints.txt"
            path.write_text("\n".join(self.constraints) + "\n")
            args += ["-c", str(path)]
        return args


def _plan(model_dir: Path, env_manager: str, install_runyard: bool) -> _Plan:
    return _plan_for(read_python_env(model_dir), model_dir, env_manager, install_runyard)


def _plan_for(
    python_env: PythonEnv, base_dir: Path, env_manager: str, install_runyard: bool
) -> _Plan:
    requirements, constraints = _requirements(python_env, base_dir, install_runyard)
    source = runyard_source()
    runyard_args = tuple(source.pip_args()) if install_runyard else ()
    extra = (source.fingerprint(),) if install_runyard else ()
    return _Plan(
        env_manager, python_env, tuple(requirements), tuple(constraints), runyard_args, extra
    )


def _find_uv() -> str:
    found = shutil.which("uv")
    if found is not None:
        return found
    beside = Path(sys.executable).parent / ("uv.exe" if sys.platform == "win32" else "uv")
    if beside.is_file():  # installed into this interpreter's environment, not activated
        return str(beside)
    raise RunyardError(
        "--env-manager uv needs uv, and no uv was found on PATH. Install it with "
        "`pip install uv`, or use --env-manager virtualenv."
    )


def _build_steps(plan: _Plan, env_dir: Path, base_python: str) -> Callable[[], None]:
    python = str(_env_python(env_dir))
    if plan.env_manager == "uv":
        uv = _find_uv()
        create = [uv, "venv", "--quiet", "--python", base_python, str(env_dir)]
        install = [uv, "pip", "install", "--quiet", "--python", python]
    else:
        create = [base_python, "-m", "venv", str(env_dir)]
        install = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]

    def steps() -> None:
        _run(create, "create the environment")
        if plan.python_env.build_dependencies:
            _run([*install, *plan.python_env.build_dependencies], "install build dependencies")
        args = plan.install_args(env_dir)
        if args:
            _run([*install, *args], "install the model's requirements")

    return steps


# -- conda --------------------------------------------------------------------------------------
def conda_available() -> bool:
    """Whether a conda executable is on PATH (or named by CONDA_EXE)."""
    return bool(os.environ.get("CONDA_EXE") or shutil.which("conda"))


def _find_conda() -> str:
    found = os.environ.get("CONDA_EXE") or shutil.which("conda")
    if not found:
        raise RunyardError(
            "--env-manager conda needs conda, and none was found (no conda on PATH, CONDA_EXE "
            "unset). Install conda (e.g. Miniforge), or use --env-manager virtualenv, uv or local."
        )
    return found


def _conda_plan(model_dir: Path, install_runyard: bool) -> tuple[_Plan, dict[str, Any]]:
    _, env = _pyfunc_env(model_dir)
    path = _conda_yaml_path(model_dir, env)
    doc = _load_conda_yaml(path)
    if not doc:
        raise ResourceDoesNotExist(f"The model has no conda environment file: '{path}'")
    return _conda_plan_for(doc, install_runyard)


def _conda_plan_for(doc: dict[str, Any], install_runyard: bool) -> tuple[_Plan, dict[str, Any]]:
    deps = []
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep and install_runyard:
            pip = [d for d in dep["pip"] or [] if _requirement_name(str(d)) not in _RUNYARD_NAMES]
            dep = {"pip": pip}
        deps.append(dep)
    doc = {**doc, "dependencies": deps}
    source = runyard_source()
    runyard_args = tuple(source.pip_args()) if install_runyard else ()
    extra = (json.dumps(doc, sort_keys=True), source.fingerprint() if install_runyard else "")
    python = PythonEnv(_conda_python(doc) or platform.python_version())
    plan = _Plan("conda", python, (), (), runyard_args, extra)
    return plan, doc


def _conda_steps(plan: _Plan, env_dir: Path, doc: dict[str, Any]) -> Callable[[], None]:
    conda = _find_conda()

    def steps() -> None:
        spec = env_dir.with_name(env_dir.name + ".yaml")
        spec.write_text(yaml.safe_dump(doc, sort_keys=False))
        try:
            create = [conda, "env", "create", "--quiet", "--prefix", str(env_dir)]
            _run([*create, "--file", str(spec)], "create the conda environment")
        finally:
            spec.unlink(missing_ok=True)
        if plan.runyard_args:
            pip = [str(_env_python(env_dir)), "-m", "pip", "install", "--quiet"]
            _run([*pip, *plan.runyard_args], "install runyard into the conda environment")

    return steps


# -- the entry point ----------------------------------------------------------------------------
def default_env_root() -> Path:
    """``RUNYARD_ENV_ROOT`` (or ``MLFLOW_ENV_ROOT``), by default ``~/.cache/runyard/envs``."""
    return Path(os.path.expanduser(ENV.ENV_ROOT.get()))


def _check_manager(env_manager: str) -> None:
    if env_manager not in ENV_MANAGERS:
        raise InvalidParameterValue(
            f"Invalid env manager '{env_manager}': use one of {', '.join(ENV_MANAGERS)}."
        )


def environment_dir(
    model_dir: str | os.PathLike[str],
    env_manager: str,
    install_runyard: bool = True,
    *,
    env_root: str | os.PathLike[str] | None = None,
) -> Path:
    """The cache directory the model's environment lives in (built or not)."""
    _check_manager(env_manager)
    if env_manager == "local":
        raise InvalidParameterValue("The local env manager uses this interpreter: no directory.")
    root = Path(env_root) if env_root is not None else default_env_root()
    if env_manager == "conda":
        return root / _conda_plan(Path(model_dir), install_runyard)[0].name
    return root / _plan(Path(model_dir), env_manager, install_runyard).name


def prepare_environment(
    model_dir: str | os.PathLike[str],
    env_manager: str,
    install_runyard: bool = True,
    *,
    env_root: str | os.PathLike[str] | None = None,
    progress: Progress | None = stderr_progress,
) -> str:
    """The Python executable to run the model's scoring server with, building (once) and
    caching the model's environment when ``env_manager`` is not ``local``.

    ``install_runyard=False`` installs the model's requirements as they are (runyard must then
    come from them). ``progress`` receives one line per step (default: stderr; None: silent).
    """
    _check_manager(env_manager)
    if env_manager == "local":
        return sys.executable
    model = Path(model_dir)
    doc: dict[str, Any] = {}
    if env_manager == "conda":
        plan, doc = _conda_plan(model, install_runyard)
    else:
        plan = _plan(model, env_manager, install_runyard)
    return _materialize(plan, doc, env_root, progress, "model")


def prepare_python_environment(
    python_env: PythonEnv,
    base_dir: str | os.PathLike[str],
    env_manager: str,
    install_runyard: bool = True,
    *,
    env_root: str | os.PathLike[str] | None = None,
    progress: Progress | None = stderr_progress,
    subject: str = "project",
) -> str:
    """The Python executable of a cached ``virtualenv``/``uv`` environment built from
    ``python_env`` (``-r``/``-c`` files relative to ``base_dir``), building it once.

    The cache, locking and marker rules are those of :func:`prepare_environment`.
    """
    if env_manager not in ("virtualenv", "uv"):
        raise InvalidParameterValue(
            f"Invalid env manager '{env_manager}' for a python_env.yaml: use virtualenv or uv."
        )
    plan = _plan_for(python_env, Path(base_dir), env_manager, install_runyard)
    return _materialize(plan, {}, env_root, progress, subject)


def prepare_conda_environment(
    conda_yaml: str | os.PathLike[str],
    install_runyard: bool = True,
    *,
    env_root: str | os.PathLike[str] | None = None,
    progress: Progress | None = stderr_progress,
    subject: str = "project",
) -> str:
    """The Python executable of a cached conda environment built from ``conda_yaml``."""
    doc = _load_conda_yaml(Path(conda_yaml))
    if not doc:
        raise ResourceDoesNotExist(f"The {subject} has no conda environment file: '{conda_yaml}'")
    plan, doc = _conda_plan_for(doc, install_runyard)
    return _materialize(plan, doc, env_root, progress, subject)


def _materialize(
    plan: _Plan,
    doc: dict[str, Any],
    env_root: str | os.PathLike[str] | None,
    progress: Progress | None,
    subject: str,
) -> str:
    env_manager = plan.env_manager
    say: Progress = progress or (lambda _line: None)
    root = Path(env_root) if env_root is not None else default_env_root()
    env_dir = root / plan.name
    python = _env_python(env_dir)
    if (env_dir / MARKER_FILE_NAME).is_file():
        say(f"Using the cached {env_manager} environment {env_dir}")
        return str(python)
    if env_manager == "conda":
        steps = _conda_steps(plan, env_dir, doc)
    else:
        steps = _build_steps(plan, env_dir, find_python(plan.python_env.python, subject=subject))
    with _exclusive(root / f"{plan.name}.lock", say):
        if (env_dir / MARKER_FILE_NAME).is_file():  # another process built it meanwhile
            return str(python)
        started = time.monotonic()
        count = len(plan.requirements)
        what = f"{'runyard + ' if plan.runyard_args else ''}{count} requirement" + "s" * (
            count != 1
        )
        say(
            f"Creating a {env_manager} environment for the {subject} (Python "
            f"{plan.python_env.python}, {what}) in {env_dir} (cached for next time) ..."
        )
        _build(env_dir, steps, plan.describe())
        say(f"Environment ready in {time.monotonic() - started:.1f}s")
    return str(python)
