"""A real tracking server process for tests that talk HTTP: ``tracking_server`` (one per
session) and ``server_uri`` (the isolated ``tracking_env`` pointed at it).

Import the fixtures into a conftest or test module to use them. ``RUNYARD_TEST_SERVER=mlflow``
runs the same tests against the official ``mlflow server`` instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runyard.tracking.registry import release
from tests.conftest import FOREIGN_ENV, reset_fluent_state


@dataclass
class TrackingServer:
    """A tracking server process on a free loopback port."""

    kind: str
    url: str
    root: Path
    process: subprocess.Popen[bytes]


def _server_kind() -> str:
    chosen = os.environ.get("RUNYARD_TEST_SERVER", "").strip().lower()
    if chosen in ("runyard", "mlflow"):
        return chosen
    if chosen:
        raise ValueError(f"RUNYARD_TEST_SERVER must be 'runyard' or 'mlflow', not {chosen!r}")
    runyard_cli = Path(sys.executable).parent / "runyard"
    try:
        probe = subprocess.run(
            [str(runyard_cli), "server", "--help"], capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return "mlflow"
    return "runyard" if probe.returncode == 0 else "mlflow"


def _mlflow_venv() -> Path:
    """The venv with the official mlflow, shared with the compatibility suite."""
    default = Path.home() / ".cache" / "runyard-compat" / "mlflow-3.17.2"
    return Path(os.environ.get("RUNYARD_COMPAT_VENV", default))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(root: Path, kind: str | None = None) -> TrackingServer:
    """Start a server process on a free port with its store under ``root`` (``kind``:
    ``runyard`` or ``mlflow``; default: the ``RUNYARD_TEST_SERVER`` choice)."""
    kind = kind or _server_kind()
    port = _free_port()
    program = (
        [str(Path(sys.executable).parent / "runyard")]
        if kind == "runyard"
        else [str(_mlflow_venv() / "bin" / "mlflow")]
    )
    command = [
        *program,
        "server",
        *("--backend-store-uri", f"sqlite:///{root / 'db'}"),
        *("--artifacts-destination", str(root / "art")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with open(root / "server.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = TrackingServer(kind, f"http://127.0.0.1:{port}", root, process)
    if wait_healthy(server.url, process):
        return server
    stop_server(server)
    tail = (root / "server.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{kind} server did not start ({' '.join(command)}):\n{tail}")


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> bool:
    """Poll ``<url>/health`` until it answers 200 (True), the process exits or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def stop_server(server: TrackingServer) -> None:
    """Stop a server started by :func:`start_server`."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """One tracking server process for the session (test_rest.py and artifact/test_http.py)."""
    server = start_server(tmp_path_factory.mktemp("tracking-server"))
    yield server
    stop_server(server)


@pytest.fixture
def server_uri(
    tracking_server: TrackingServer, tracking_env: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The isolated tracking environment of ``tracking_env``, pointed at the server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    # A server error should fail the test in a second, not after minutes of backoff.
    monkeypatch.setenv("RUNYARD_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("RUNYARD_HTTP_REQUEST_BACKOFF_FACTOR", "0.1")
    reset_fluent_state()
    yield tracking_server.url
    reset_fluent_state()
    release(tracking_server.url, flush=False)
