"""Fixtures for the wire-compatibility suite: the official ``mlflow`` client against a live server.

One tracking server subprocess serves the whole session (``compat_server``); which one is chosen by
``RUNYARD_COMPAT_SERVER``: ``runyard`` (the default, ``runyard server``) or ``mlflow`` (the real
``mlflow server`` from the compat venv, to validate the suite itself). The official client lives in
its own venv (``compat_venv``, from ``RUNYARD_COMPAT_VENV``), so it never shares an interpreter
with runyard; ``run_client`` runs one script in it and returns the JSON object the script printed.

Tests share the server, so every test module names its experiments with a unique prefix and never
relies on ids or counts it did not create itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

#: The client release the suite pins; the server must work with it unchanged.
MLFLOW_VERSION = "3.17.2"
DEFAULT_VENV = Path.home() / ".cache" / "runyard-compat" / f"mlflow-{MLFLOW_VERSION}"
SERVER_KINDS = ("runyard", "mlflow")
STARTUP_TIMEOUT_S = 120.0
CLIENT_TIMEOUT_S = 600.0


def _env_without_tracking_settings() -> dict[str, str]:
    """``os.environ`` minus every MLFLOW_*/RUNYARD_* variable, so nothing leaks into children."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RUNYARD_"))} | {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }


def _venv_mlflow_version(python: Path) -> str | None:
    """The ``mlflow`` distribution version installed for ``python``, or None."""
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def _has_module(python: Path, module: str) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", f"import {module}"], capture_output=True, timeout=120
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def compat_venv() -> Path:
    """A venv holding ``mlflow[auth]==3.17.2`` (the auth extra: ``get_app_client("basic-auth")``
    imports Flask-WTF), created (from PyPI) on first use."""
    venv = Path(os.environ.get("RUNYARD_COMPAT_VENV") or DEFAULT_VENV).expanduser()
    python = venv / "bin" / "python"
    if _venv_mlflow_version(python) != MLFLOW_VERSION or not _has_module(python, "flask_wtf"):
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"mlflow[auth]=={MLFLOW_VERSION}"],
            check=True,
            timeout=1800,
        )
    assert _venv_mlflow_version(python) == MLFLOW_VERSION, f"no mlflow {MLFLOW_VERSION} in {venv}"
    return venv


@dataclass(frozen=True)
class CompatServer:
    """A running tracking server: where it listens and where it keeps its files."""

    kind: str
    url: str
    root: Path
    artifacts: Path
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_command(kind: str, venv: Path, root: Path, port: int) -> list[str]:
    options = [
        "--backend-store-uri",
        f"sqlite:///{root}/db.sqlite",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if kind == "mlflow":
        return [str(venv / "bin" / "mlflow"), "server", *options, "--workers", "1"]
    return [str(Path(sys.executable).parent / "runyard"), "server", *options]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and every worker it spawned (they share its new session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    # The group may outlive its leader (uvicorn workers); make sure nothing keeps the port.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def server_kind() -> str:
    """Which server is under test: ``runyard`` or ``mlflow`` (env RUNYARD_COMPAT_SERVER)."""
    kind = os.environ.get("RUNYARD_COMPAT_SERVER", "runyard")
    assert kind in SERVER_KINDS, f"RUNYARD_COMPAT_SERVER must be one of {SERVER_KINDS}"
    return kind


@pytest.fixture(scope="session")
def compat_server(
    server_kind: str, compat_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CompatServer]:
    """A tracking server on a free loopback port with a fresh SQLite store and artifact root."""
    root = tmp_path_factory.mktemp("compat-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            _server_command(server_kind, compat_venv, root, port),
            cwd=root,
            env=_env_without_tracking_settings(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"{server_kind} server exited ({proc.returncode}):\n{log_path.read_text()}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{server_kind} server not healthy in time:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield CompatServer(
            kind=server_kind, url=url, root=root, artifacts=root / "artifacts", log=log_path
        )
    finally:
        _stop(proc)


class ClientResult(dict[str, Any]):
    """The JSON object a client script printed, keyed by section name.

    Reading a section that raised inside the script fails the test with the script's traceback,
    so one broken call fails the tests that depend on it and not the whole module. The failure
    message ends with the tail of the server's log, where a 500's traceback shows up.
    """

    def __init__(self, data: dict[str, Any], server_log: Path) -> None:
        super().__init__(data)
        self.server_log = server_log

    def _fail(self, message: str) -> None:
        tail = self.server_log.read_text(errors="replace")[-3000:]
        pytest.fail(f"{message}\n--- server log (tail) ---\n{tail}")

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            crash = dict.get(self, "__script_error__", "")
            self._fail(f"client script produced no section {name!r}; got {sorted(self)}\n{crash}")
        value = super().__getitem__(name)
        if isinstance(value, dict) and "__error__" in value:
            self._fail(f"section {name!r} raised in the client:\n{value['__error__']}")
        return value


#: Prepended to every client script. ``section`` records a block's outcome under a name and
#: carries on after an exception; ``error_of`` turns an MlflowException into a comparable dict.
PRELUDE = """
import contextlib
import json
import math
import os
import sys
import time
import traceback

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

PARAMS = json.loads(os.environ["COMPAT_PARAMS"])
RESULT = {"__seconds__": {}}
client = MlflowClient()


@contextlib.contextmanager
def section(name):
    data = RESULT.setdefault(name, {})
    started = time.monotonic()
    try:
        yield data
    except Exception:
        data["__error__"] = traceback.format_exc()
        while mlflow.active_run() is not None:
            try:
                mlflow.end_run("FAILED")
            except Exception:
                break
    finally:
        RESULT["__seconds__"][name] = round(time.monotonic() - started, 2)


def _report_crash(exc_type, exc, tb):
    # An error outside any section still reports what the sections before it found.
    RESULT["__script_error__"] = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.__excepthook__(exc_type, exc, tb)
    print()
    print(json.dumps(RESULT, default=repr))


sys.excepthook = _report_crash


def error_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MlflowException as exc:
        return {
            "error_code": exc.error_code,
            "message": exc.message,
            "http_status": exc.get_http_status_code(),
        }
    return None

"""

EPILOGUE = """

print()
print(json.dumps(RESULT, default=repr))
"""

RunClient = Callable[..., ClientResult]


def run_official_client(
    compat_venv: Path,
    workdir: Path,
    script: str,
    tracking_url: str,
    server_log: Path,
    params: dict[str, Any] | None = None,
    drop_env_prefixes: tuple[str, ...] = (),
) -> ClientResult:
    """Run ``script`` (dedented, wrapped in PRELUDE/EPILOGUE) with the official client in
    ``workdir`` against ``tracking_url``; its JSON result, or a test failure with its output."""
    path = workdir / "compat_script.py"
    path.write_text(PRELUDE + textwrap.dedent(script) + EPILOGUE)
    base = _env_without_tracking_settings()
    env = {k: v for k, v in base.items() if not k.startswith(drop_env_prefixes)} | {
        "MLFLOW_TRACKING_URI": tracking_url,
        "COMPAT_PARAMS": json.dumps(params or {}),
        # A 5xx must fail fast instead of the client's ~4 minutes of retries.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [str(compat_venv / "bin" / "python"), str(path)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    lines = done.stdout.strip().splitlines()
    try:
        return ClientResult(json.loads(lines[-1]), server_log)
    except (IndexError, ValueError):
        pytest.fail(
            f"client script failed ({done.returncode}):\n{done.stdout[-4000:]}\n"
            f"{done.stderr[-8000:]}"
        )


@pytest.fixture(scope="session")
def run_client(
    compat_server: CompatServer, compat_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> RunClient:
    """Run a script with the official client against the server; return its JSON result.

    The script body is dedented and wrapped in PRELUDE/EPILOGUE; it fills ``RESULT`` (usually via
    ``with section("name") as out:``) and reads its inputs from ``PARAMS``. It runs in a fresh
    working directory with the tracking URI pointing at the server.
    """

    def run(script: str, params: dict[str, Any] | None = None) -> ClientResult:
        workdir = tmp_path_factory.mktemp("client")
        return run_official_client(
            compat_venv, workdir, script, compat_server.url, compat_server.log, params
        )

    return run


@pytest.fixture(scope="session")
def http(compat_server: CompatServer) -> Iterator[httpx.Client]:
    """A raw HTTP client on the server, for the curl-style checks."""
    with httpx.Client(base_url=compat_server.url, timeout=60) as client:
        yield client


def _check_error(error: dict[str, Any] | None, code: str, status: int, *fragments: str) -> None:
    assert error is not None, "the call succeeded"
    assert error["error_code"] == code, error
    assert error["http_status"] == status, error
    for fragment in fragments:
        assert fragment in error["message"], error


@pytest.fixture(scope="session")
def assert_error() -> Callable[..., None]:
    """Check an ``error_of(...)`` result: the call raised ``code`` with ``status``.

    Each extra argument must occur in the error message.
    """
    return _check_error


@pytest.fixture(scope="module")
def prefix() -> str:
    """A name prefix unique to one test module, for experiments it creates."""
    return f"compat-{uuid.uuid4().hex[:8]}"
