"""Auth-enabled servers for tests: a live process (``auth_server``, one per session) and an
in-process app behind Starlette's client (``auth_api``, one per module), with admin credentials
and helpers that create users through the API.

Other test packages (the CLI and compat suites) import :func:`start_auth_server` and the
fixtures from here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from runyard.server.app import create_app
from runyard.server.settings import ServerSettings
from tests.conftest import FOREIGN_ENV
from tests.live_server import wait_healthy

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-1"
ADMIN = (ADMIN_USERNAME, ADMIN_PASSWORD)
#: The password every user made by the helpers gets.
PASSWORD = "user-password-1"

Credentials = tuple[str, str]
MakeUser = Callable[..., Credentials]


@dataclass
class AuthServer:
    """A ``runyard server --app-name basic-auth`` process on a free loopback port."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]
    admin: Credentials = field(default=ADMIN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def auth_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for an auth server: no foreign tracking settings, the admin password."""
    env = {k: v for k, v in (base or dict(os.environ)).items() if k not in FOREIGN_ENV}
    env = {k: v for k, v in env.items() if not k.startswith(("RUNYARD_AUTH_", "MLFLOW_AUTH_"))}
    env["RUNYARD_AUTH_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def start_auth_server(root: Path) -> AuthServer:
    """Start an auth-enabled server with its SQLite store and artifacts under ``root``."""
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "runyard"),
        "server",
        *("--app-name", "basic-auth"),
        *("--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}"),
        *("--artifacts-destination", str(root / "artifacts")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    with open(root / "server.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            command, cwd=root, env=auth_env(), stdout=log, stderr=subprocess.STDOUT
        )
    server = AuthServer(f"http://127.0.0.1:{port}", root, process)
    if wait_healthy(server.url, process):
        return server
    stop_auth_server(server)
    tail = (root / "server.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"auth server did not start ({' '.join(command)}):\n{tail}")


def stop_auth_server(server: AuthServer) -> None:
    """Stop a server started by :func:`start_auth_server`."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def unique_name(prefix: str = "user") -> str:
    """A user name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_user(
    client: httpx.Client | TestClient,
    username: str | None = None,
    password: str = PASSWORD,
    admin: bool = False,
) -> Credentials:
    """Create a user through the API as the admin; returns its credentials."""
    name = username or unique_name()
    response = client.post(
        "/api/2.0/mlflow/users/create", json={"username": name, "password": password}, auth=ADMIN
    )
    assert response.status_code == 200, response.text
    if admin:
        response = client.patch(
            "/api/2.0/mlflow/users/update-admin",
            json={"username": name, "is_admin": True},
            auth=ADMIN,
        )
        assert response.status_code == 200, response.text
    return name, password


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """One auth-enabled server process for the session (admin: :data:`ADMIN`)."""
    server = start_auth_server(tmp_path_factory.mktemp("auth-server"))
    yield server
    stop_auth_server(server)


@pytest.fixture
def auth_http(auth_server: AuthServer) -> Iterator[httpx.Client]:
    """A plain HTTP client on the live auth server (no credentials unless a call passes some)."""
    with httpx.Client(base_url=auth_server.url, timeout=60) as client:
        yield client


@pytest.fixture
def server_user(auth_http: httpx.Client) -> MakeUser:
    """Create users on the live auth server: ``server_user(admin=False) -> (name, password)``."""

    def make(
        username: str | None = None, password: str = PASSWORD, admin: bool = False
    ) -> Credentials:
        return create_user(auth_http, username, password, admin)

    return make


@pytest.fixture(scope="module")
def auth_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An auth-enabled app in this process (real SQLite) for one test module."""
    root = tmp_path_factory.mktemp("auth-app")
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{root / 'server.db'}",
        artifacts_destination=str(root / "artifacts"),
        app_name="basic-auth",
    )
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith(("RUNYARD_AUTH_", "MLFLOW_AUTH_"))]:
            patch.delenv(name)
        patch.setenv("RUNYARD_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        with TestClient(create_app(settings)) as client:
            yield client


@pytest.fixture
def new_user(auth_api: TestClient) -> MakeUser:
    """Create users on the in-process app: ``new_user(admin=False) -> (name, password)``."""

    def make(
        username: str | None = None, password: str = PASSWORD, admin: bool = False
    ) -> Credentials:
        return create_user(auth_api, username, password, admin)

    return make
