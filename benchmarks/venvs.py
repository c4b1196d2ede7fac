"""Interpreters for the libraries under comparison.

runyard is benchmarked in the current interpreter (where it is installed in
editable mode). MLflow, trackio and FastTrackML each get their own virtual
environment under ``$RUNYARD_BENCH_VENVS`` (default ``~/.cache/runyard-bench/venvs``),
created and populated from PyPI on first use unless installing is disabled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENVS_ENV = "RUNYARD_BENCH_VENVS"
DEFAULT_VENVS = "~/.cache/runyard-bench/venvs"


class EnvironmentUnavailable(RuntimeError):
    """An interpreter with the library under test could not be provided."""


@dataclass(frozen=True)
class VenvSpec:
    """A virtual environment holding one library.

    ``requirement`` is what ``pip install`` gets; ``version`` (when set) is the
    exact version the environment must have, otherwise any version will do.
    """

    name: str
    distribution: str
    requirement: str
    version: str | None = None


MLFLOW = VenvSpec("mlflow", "mlflow", "mlflow==3.17.2", version="3.17.2")
TRACKIO = VenvSpec("trackio", "trackio", "trackio")
FASTTRACKML = VenvSpec("fasttrackml", "fasttrackml", "fasttrackml==0.6.0", version="0.6.0")


def venvs_root() -> Path:
    """Directory that holds the benchmark virtual environments."""
    return Path(os.environ.get(VENVS_ENV) or DEFAULT_VENVS).expanduser()


def venv_python(venv_dir: Path) -> Path:
    """The interpreter of a virtual environment."""
    scripts = "Scripts" if os.name == "nt" else "bin"
    return venv_dir / scripts / ("python.exe" if os.name == "nt" else "python")


def installed_version(python: Path | str, distribution: str) -> str | None:
    """Version of ``distribution`` installed for ``python``, or None if absent."""
    code = (
        "import importlib.metadata as m, sys\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: pass\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code, distribution],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None


def _log(message: str) -> None:
    print(f"[venvs] {message}", file=sys.stderr, flush=True)


def _run(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise EnvironmentUnavailable(f"`{' '.join(command)}` failed:\n{tail}")


def ensure_venv(spec: VenvSpec, *, install: bool = True) -> Path:
    """Return the interpreter of ``spec``'s venv, creating or fixing it if allowed."""
    venv_dir = venvs_root() / spec.name
    python = venv_python(venv_dir)
    version = installed_version(python, spec.distribution) if python.exists() else None
    if version is not None and spec.version in (None, version):
        return python
    found = f"{spec.distribution} {version}" if version else f"no {spec.distribution}"
    if not install:
        raise EnvironmentUnavailable(
            f"{venv_dir}: {found}, needs {spec.requirement}; run without --no-install"
        )
    if not python.exists():
        _log(f"creating {venv_dir}")
        _run([sys.executable, "-m", "venv", str(venv_dir)])
    _log(f"{venv_dir} has {found}: pip install {spec.requirement} (this can take minutes)")
    _run([str(python), "-m", "pip", "install", "--quiet", spec.requirement])
    if installed_version(python, spec.distribution) is None:
        raise EnvironmentUnavailable(f"{spec.distribution} still missing in {venv_dir}")
    return python


def ensure_extra(
    spec: VenvSpec, extra: str, distributions: tuple[str, ...], *, install: bool = True
) -> Path:
    """``spec``'s venv with the optional dependencies of ``spec.distribution[extra]``.

    ``distributions`` are the packages that extra pulls in (checked by name); when one
    is missing, ``pip install "<distribution>[<extra>]==<version>"`` adds them without
    changing the pinned library, e.g. ``mlflow[auth]`` (Flask-WTF) for MLflow's
    ``--app-name basic-auth``.
    """
    requirement = f"{spec.distribution}[{extra}]" + (f"=={spec.version}" if spec.version else "")
    return ensure_packages(spec, requirement, distributions, install=install)


def ensure_packages(
    spec: VenvSpec, requirement: str, distributions: tuple[str, ...], *, install: bool = True
) -> Path:
    """``spec``'s venv with ``distributions`` installed (``pip install requirement`` when one
    is missing), e.g. psycopg for ``mlflow server`` on PostgreSQL."""
    python = ensure_venv(spec, install=install)
    missing = [dist for dist in distributions if installed_version(python, dist) is None]
    if not missing:
        return python
    if not install:
        raise EnvironmentUnavailable(
            f"{python.parent.parent}: no {', '.join(missing)}, needs {requirement}; "
            "run without --no-install"
        )
    _log(f"{python.parent.parent} lacks {', '.join(missing)}: pip install {requirement}")
    _run([str(python), "-m", "pip", "install", "--quiet", requirement])
    still = [dist for dist in distributions if installed_version(python, dist) is None]
    if still:
        raise EnvironmentUnavailable(f"{', '.join(still)} still missing after {requirement}")
    return python


#: ``mlflow server`` on a ``postgresql://`` store imports psycopg (SQLAlchemy's default
#: driver for that scheme in MLflow 3), which MLflow does not depend on.
MLFLOW_POSTGRES_DRIVER = ("psycopg[binary]", ("psycopg", "psycopg-binary"))

#: MLflow's basic-auth app (``mlflow server --app-name basic-auth``) needs ``mlflow[auth]``.
MLFLOW_AUTH_EXTRA = ("auth", ("Flask-WTF",))


def mlflow_auth_python(*, install: bool = True) -> Path:
    """The MLflow venv's interpreter, with ``mlflow[auth]``'s dependencies installed."""
    extra, distributions = MLFLOW_AUTH_EXTRA
    return ensure_extra(MLFLOW, extra, distributions, install=install)


def current_python_with(module: str) -> Path:
    """The current interpreter, provided it can import ``module`` outside the repo."""
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        last_line = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise EnvironmentUnavailable(
            f"`import {module}` fails in {sys.executable} ({last_line}); "
            "install it with `pip install -e .` from the repository root"
        )
    return Path(sys.executable)
