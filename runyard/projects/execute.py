"""Running an entry point's command: its environment, the child process, and its run's status.

The command runs under ``bash -c`` in the project directory, as the leader of a new session, so
that cancelling a run (Ctrl-C or SIGTERM to ``runyard run``, or :meth:`SubmittedRun.cancel`)
can stop the whole process tree it started: SIGTERM to its process group, SIGKILL after a grace
period. The run is handed over through ``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI`` and
``MLFLOW_EXPERIMENT_ID`` (and their ``RUNYARD_`` twins), so the command's
``runyard.start_run()`` — or any ``runyard.log_*`` call — writes into it.

Environments (``--env-manager``): ``local`` runs with this interpreter's environment,
``virtualenv``/``uv`` with a cached virtual environment built from the project's
``python_env.yaml`` (or the pip section of its ``conda.yaml``) with runyard installed into it,
``conda`` with a cached conda environment; the environment's ``bin`` directory goes first on the
command's ``PATH``, as activating it would do.
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

from runyard.config import ENV
from runyard.entities import RunStatus
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.projects.spec import CONDA_ENV, DOCKER_ENV, PYTHON_ENV, ExecutionException, Project
from runyard.serving import envs
from runyard.tracking.client import Client

__all__ = [
    "CANCEL_GRACE_SECONDS",
    "ENV_MANAGERS",
    "CommandEnvironment",
    "LocalSubmittedRun",
    "SubmittedRun",
    "Terminated",
    "choose_env_manager",
    "handover_env",
    "interrupts_raise",
    "portable_tracking_uri",
    "prepare_environment",
    "redeliver_sigterm",
    "start_command",
]

log = logging.getLogger("runyard.projects")

#: The accepted ``env_manager`` values.
ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")

#: Seconds a cancelled command has between SIGTERM and SIGKILL.
CANCEL_GRACE_SECONDS = 10.0


# -- environments ---------------------------------------------------------------------------
def choose_env_manager(project: Project, env_manager: str | None) -> str:
    """The environment a project runs in: ``docker`` for a ``docker_env``, else the one asked
    for, else the project's own (python_env → virtualenv, conda_env → conda, none → local)."""
    if env_manager is not None and env_manager not in ENV_MANAGERS:
        raise InvalidParameterValue(
            f"Invalid value for `env_manager`: '{env_manager}'. Must be one of "
            f"{', '.join(ENV_MANAGERS)}."
        )
    if project.env_type == DOCKER_ENV:
        return "docker"
    if env_manager is None:
        if project.env_type == CONDA_ENV and not envs.conda_available():
            # The cheat sheet's "mlflow run . (conda env, or virtualenv)": without conda, the
            # pip part of conda.yaml builds a virtualenv instead of failing.
            print(
                "=== conda is not installed: building a virtualenv from the pip section of "
                f"{os.path.basename(project.env_config_path or 'conda.yaml')} "
                "(--env-manager conda to insist) ===",
                file=sys.stderr,
            )
            return "virtualenv"
        return {PYTHON_ENV: "virtualenv", CONDA_ENV: "conda"}.get(project.env_type or "", "local")
    if project.env_type == PYTHON_ENV and env_manager == "conda":
        raise InvalidParameterValue(
            "python_env project cannot be executed using conda. Set `--env-manager` to "
            "'virtualenv' or 'local' to execute this project."
        )
    return env_manager


@dataclass(frozen=True)
class CommandEnvironment:
    """What a command runs with: ``bin_dir`` first on ``PATH`` and ``variables`` set."""

    name: str
    bin_dir: Path | None = None
    variables: tuple[tuple[str, str], ...] = ()

    def apply(self, environ: Mapping[str, str]) -> dict[str, str]:
        """``environ`` with this environment activated."""
        out = dict(environ)
        if self.bin_dir is not None:
            out["PATH"] = os.pathsep.join([str(self.bin_dir), environ.get("PATH", "")])
            out.pop("PYTHONHOME", None)
        out.update(self.variables)
        return out


def _progress(line: str) -> None:
    log.info("=== %s ===", line)


def prepare_environment(
    project: Project, env_manager: str, *, install_runyard: bool = True
) -> CommandEnvironment:
    """Build (once; cached) or find the environment ``env_manager`` names for ``project``."""
    if env_manager == "local":
        # A virtual environment that runs runyard without being activated is put first on PATH,
        # so "python" in a command is this interpreter's.
        if sys.prefix != sys.base_prefix:
            return CommandEnvironment("local", Path(sys.executable).parent)
        return CommandEnvironment("local")
    if env_manager == "conda":
        if project.env_type != CONDA_ENV or project.env_config_path is None:
            raise ExecutionException(
                "--env-manager conda needs a conda environment file (conda_env in MLproject, "
                "or conda.yaml); this project has none."
            )
        python = envs.prepare_conda_environment(
            project.env_config_path, install_runyard, progress=_progress
        )
        prefix = Path(python).parents[1]
        return CommandEnvironment("conda", prefix / "bin", (("CONDA_PREFIX", str(prefix)),))
    if project.env_type == CONDA_ENV and project.env_config_path is not None:
        python_env = envs.python_env_from_conda_yaml(project.env_config_path)
    elif project.env_type == PYTHON_ENV and project.env_config_path is not None:
        python_env = envs.read_python_env_file(project.env_config_path)
    else:
        python_env = envs.PythonEnv(".".join(map(str, sys.version_info[:3])))
    python = envs.prepare_python_environment(
        python_env, project.directory, env_manager, install_runyard, progress=_progress
    )
    venv = Path(python).parents[1]
    return CommandEnvironment(env_manager, Path(python).parent, (("VIRTUAL_ENV", str(venv)),))


# -- handing the run over -------------------------------------------------------------------
def portable_tracking_uri(uri: str) -> str:
    """``uri`` usable from another working directory: relative SQLite paths made absolute."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path, sep, query = uri[len(prefix) :].partition("?")
    if not path or path.startswith(":") or os.path.isabs(path):
        return uri
    return f"{prefix}{os.path.abspath(path)}{sep}{query}"


def _default_artifact_root(tracking_uri: str) -> str | None:
    # New experiments a command creates get the artifact root runyard would give them here
    # (./runyard-artifacts beside the caller), not one inside the project or its temp clone.
    scheme = urlparse(tracking_uri).scheme.split("+")[0]
    if ENV.ARTIFACT_ROOT.is_set() or scheme not in ("sqlite", "postgresql", "postgres"):
        return None
    return os.path.abspath("runyard-artifacts")


def handover_env(
    tracking_uri: str,
    run_id: str | None = None,
    experiment_id: str | None = None,
    registry_uri: str | None = None,
) -> dict[str, str]:
    """The variables that point a child process at the run: each under both spellings."""
    values = {"TRACKING_URI": portable_tracking_uri(tracking_uri)}
    if run_id is not None:
        values["RUN_ID"] = run_id
    if experiment_id is not None:
        values["EXPERIMENT_ID"] = str(experiment_id)
    if registry_uri is not None:
        values["REGISTRY_URI"] = portable_tracking_uri(registry_uri)
    artifact_root = _default_artifact_root(tracking_uri)
    if artifact_root is not None:
        values["DEFAULT_ARTIFACT_ROOT"] = artifact_root
    return {f"{p}_{k}": v for k, v in values.items() for p in ("MLFLOW", "RUNYARD")}


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def start_command(
    argv_or_command: str | list[str], work_dir: Path, environ: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start a shell command (or an argv) in ``work_dir`` as the leader of a new session."""
    argv = (
        [_shell(), "-c", argv_or_command] if isinstance(argv_or_command, str) else argv_or_command
    )
    try:
        return subprocess.Popen(
            argv, cwd=work_dir, env=dict(environ), start_new_session=True, close_fds=True
        )
    except OSError as exc:
        raise ExecutionException(f"Could not start the command {argv[0]}: {exc}") from None


# -- submitted runs -------------------------------------------------------------------------
class SubmittedRun(abc.ABC):
    """A launched project run (MLflow's ``SubmittedRun``): wait for it, ask it, cancel it.

    Not thread-safe: call ``wait`` and ``cancel`` from one thread.
    """

    @property
    @abc.abstractmethod
    def run_id(self) -> str:
        """The id of the tracking run the project logs into."""

    @abc.abstractmethod
    def wait(self) -> bool:
        """Block until the run ends; True when it succeeded."""

    @abc.abstractmethod
    def get_status(self) -> str:
        """``RUNNING``, ``FINISHED``, ``FAILED`` or ``KILLED``."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop the run and wait for it to end; it is marked KILLED."""


def _signal_group(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class LocalSubmittedRun(SubmittedRun):
    """A run whose command is a local process (the entry point, or a ``runyard run`` child).

    When the process ends, the run is marked by its exit status: FAILED on a non-zero one
    (unless already FAILED or KILLED), FINISHED on zero unless the command ended the run
    itself; :meth:`cancel` marks it KILLED.
    """

    def __init__(
        self,
        run_id: str,
        process: subprocess.Popen[bytes],
        client: Client,
        grace_period: float = CANCEL_GRACE_SECONDS,
    ) -> None:
        self._run_id = run_id
        self.command_proc = process
        self._client = client
        self._grace_period = grace_period
        self._cancelled = False
        self._marked = False

    @property
    def run_id(self) -> str:
        """The id of the tracking run the project logs into."""
        return self._run_id

    def wait(self) -> bool:
        """Block until the command exits, mark the run, and return True on exit status 0."""
        code = self.command_proc.wait()
        if not self._cancelled:
            self._mark(code)
        return code == 0 and not self._cancelled

    def get_status(self) -> str:
        """The run's status as this process sees it (by exit status)."""
        if self._cancelled:
            return "KILLED"
        code = self.command_proc.poll()
        if code is None:
            return "RUNNING"
        return "FINISHED" if code == 0 else "FAILED"

    def cancel(self, grace_period: float | None = None) -> None:
        """SIGTERM the command's process group, SIGKILL it after ``grace_period`` seconds
        (default: the one given when the run started), wait for it, and mark the run KILLED."""
        grace_period = self._grace_period if grace_period is None else grace_period
        proc = self.command_proc
        self._cancelled = True
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace_period)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # What the command left behind in its process group goes too.
        _signal_group(proc.pid, signal.SIGKILL)
        self._set_status("KILLED")

    def _mark(self, code: int) -> None:
        if self._marked:
            return
        try:
            current = self._client.get_run(self._run_id).info.status
        except RunyardError as exc:
            log.warning("runyard: could not read run %s to end it: %s", self._run_id, exc)
            return
        if code == 0:
            if not RunStatus.is_terminated(current):
                self._set_status("FINISHED")
        elif current not in ("FAILED", "KILLED"):
            self._set_status("FAILED")
        self._marked = True

    def _set_status(self, status: str) -> None:
        try:
            self._client.set_terminated(self._run_id, status)
        except RunyardError as exc:  # e.g. the run was deleted meanwhile
            log.warning("runyard: could not mark run %s %s: %s", self._run_id, status, exc)
        self._marked = True


# -- interrupts -----------------------------------------------------------------------------
class Terminated(BaseException):  # like KeyboardInterrupt: not an error to catch broadly
    """SIGTERM arrived while a project was running (raised in the main thread)."""


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (SIGINT raises KeyboardInterrupt
    as usual), so the caller can stop its command and mark the run; on the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def redeliver_sigterm() -> None:
    """Act on a SIGTERM caught by :func:`interrupts_raise` as this process would have."""
    os.kill(os.getpid(), signal.SIGTERM)
    raise SystemExit(128 + signal.SIGTERM)
