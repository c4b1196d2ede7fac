"""Who is calling: credential caching, the brute-force limiter, sessions and CSRF, 401s,
the admin bootstrap and the auth config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from runyard.errors import InvalidParameterValue
from runyard.server.app import create_app
from runyard.server.auth.config import read_auth_config
from runyard.server.auth.permissions import Permission
from runyard.server.settings import ServerSettings
from tests.conftest import FOREIGN_ENV
from tests.live_server import wait_healthy
from tests.server.auth.conftest import ADMIN, ADMIN_PASSWORD, MakeUser

API = "/api/2.0/mlflow"
SEARCH = f"{API}/experiments/search?max_results=10"
RUNYARD_BIN = str(Path(sys.executable).parent / "runyard")


def _layer(api: TestClient) -> Any:
    return api.app.state.context.auth  # type: ignore[attr-defined]


class _CountingStore:
    """Counts password checks that reach the KDF (wraps the real store's method)."""

    def __init__(self, layer: Any) -> None:
        self.calls = 0
        store = layer.store
        real = store.verify_password

        def counted(username: str, password: str) -> Any:
            self.calls += 1
            return real(username, password)

        store.verify_password = counted
        self._undo = lambda: setattr(store, "verify_password", real)

    def restore(self) -> None:
        self._undo()


def test_a_verified_password_is_not_hashed_again(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    counter = _CountingStore(_layer(auth_api))
    try:
        for _ in range(5):
            assert auth_api.get(SEARCH, auth=user).status_code == 200
        assert counter.calls <= 1
        # A wrong password is checked (and not confused with the cached right one).
        assert auth_api.get(SEARCH, auth=(user[0], "wrong-password")).status_code == 401
        assert counter.calls <= 2
    finally:
        counter.restore()


def test_an_expired_cache_entry_costs_a_read_not_a_hash(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    layer = _layer(auth_api)
    name, password = new_user()
    assert auth_api.get(SEARCH, auth=(name, password)).status_code == 200
    counter = _CountingStore(layer)
    try:
        layer.credentials._cache.clear()  # what the TTL does
        layer._by_header.clear()
        assert auth_api.get(SEARCH, auth=(name, password)).status_code == 200
        assert counter.calls == 0
        # Changed behind this process's back (another worker, SQL): the old hash no longer
        # matches, so the password is checked again, and fails.
        layer.store.update_password(name, "changed-elsewhere-1")
        layer.credentials._cache.clear()
        layer._by_header.clear()
        assert auth_api.get(SEARCH, auth=(name, password)).status_code == 401
        assert counter.calls == 1
    finally:
        counter.restore()


def test_a_changed_password_stops_working_at_once(auth_api: TestClient, new_user: MakeUser) -> None:
    name, old = new_user()
    assert auth_api.get(SEARCH, auth=(name, old)).status_code == 200
    body = {"username": name, "password": "brand-new-password"}
    assert auth_api.patch(f"{API}/users/update-password", json=body, auth=ADMIN).status_code == 200
    assert auth_api.get(SEARCH, auth=(name, old)).status_code == 401
    assert auth_api.get(SEARCH, auth=(name, "brand-new-password")).status_code == 200


def test_unauthenticated_requests(auth_api: TestClient) -> None:
    response = auth_api.get(SEARCH)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="mlflow"'
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_USERNAME" in response.json()["message"]
    bad = auth_api.get(SEARCH, headers={"Authorization": "Basic !!!notbase64"})
    assert bad.status_code == 401
    token = auth_api.get(SEARCH, headers={"Authorization": "Bearer ryt_not-a-real-token"})
    assert token.status_code == 401
    assert "token" in token.json()["message"]
    # A browser asking for a page is sent to the login page, with the way back.
    page = auth_api.get("/runs/abc?x=1", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fruns%2Fabc%3Fx%3D1"
    # Public: health, static files, server-info.
    assert auth_api.get("/health").status_code == 200
    assert auth_api.get("/api/3.0/mlflow/server-info").status_code == 200
    assert auth_api.get("/version").status_code == 401


def test_session_cookie_needs_the_csrf_token_to_change_things(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    layer = _layer(auth_api)
    name, _ = new_user()
    user = layer.store.get_user(name)
    secret, csrf = layer.start_session(user)
    cookies = {"runyard_session": secret}
    with TestClient(auth_api.app, cookies=cookies) as browser:
        assert browser.get(SEARCH).status_code == 200
        create = {"name": f"{name}-exp"}
        refused = browser.post(f"{API}/experiments/create", json=create)
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["message"]
        wrong = browser.post(
            f"{API}/experiments/create", json=create, headers={"X-CSRF-Token": "x"}
        )
        assert wrong.status_code == 403
        ok = browser.post(f"{API}/experiments/create", json=create, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text
        layer.end_session(secret)
        gone = browser.get(SEARCH)
        assert gone.status_code == 401
        assert "www-authenticate" not in gone.headers  # no browser password prompt for the UI


def test_the_audit_log_names_who_did_what(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    since = int(time.time() * 1000) - 1
    exp_id = auth_api.post(f"{API}/experiments/create", json={"name": user[0]}, auth=user).json()[
        "experiment_id"
    ]
    auth_api.post(f"{API}/experiments/delete", json={"experiment_id": "0"}, auth=user)
    auth_api.post(f"{API}/experiments/search", json={"max_results": 5}, auth=user)
    auth_api.get(SEARCH, auth=(user[0], "not-the-password"))
    entries = auth_api.get(
        "/api/2.0/runyard/audit", params={"since": since, "username": user[0]}, auth=ADMIN
    ).json()["entries"]
    got = [(e["endpoint"], e["status"], e.get("resource_id"), e["outcome"]) for e in entries]
    assert got == [
        ("login", 401, None, "failure"),
        ("mlflow/experiments/delete", 403, "0", "failure"),
        ("mlflow/experiments/create", 200, exp_id, "success"),
    ]
    assert all(e["username"] == user[0] for e in entries)


# -- a live server for the concurrent brute-force test ------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An auth server with a low failure limit and a short window."""
    root = tmp_path_factory.mktemp("strict-auth")
    ini = root / "auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\nadmin_username = admin\n"
        "max_failures = 3\nfailure_window_seconds = 3\nauth_cache_ttl_seconds = 60\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env = {k: v for k, v in env.items() if not k.startswith(("RUNYARD_AUTH_", "MLFLOW_AUTH_"))}
    env.update(RUNYARD_AUTH_CONFIG_PATH=str(ini), RUNYARD_AUTH_ADMIN_PASSWORD=ADMIN_PASSWORD)
    port = _free_port()
    command = [RUNYARD_BIN, "server", "--app-name", "basic-auth", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
               "--artifacts-destination", str(root / "artifacts")]  # fmt: skip
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(url, process), (root / "server.log").read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.slow
def test_password_guessing_is_throttled_and_does_not_lock_out_others(strict_server: str) -> None:
    with httpx.Client(base_url=strict_server, timeout=30) as http:
        body = {"username": "victim", "password": "victim-password"}
        assert http.post(f"{API}/users/create", json=body, auth=ADMIN).status_code == 200
        token = http.post(
            "/api/2.0/runyard/tokens/create", json={"name": "t"}, auth=("victim", "victim-password")
        ).json()["token"]
    statuses: list[int] = []
    legit: list[int] = []
    stop = threading.Event()

    def guess() -> None:
        with httpx.Client(base_url=strict_server, timeout=30) as attacker:
            for i in range(40):
                r = attacker.get(SEARCH, auth=("victim", f"guess-{i}"))
                statuses.append(r.status_code)

    def work() -> None:
        with httpx.Client(base_url=strict_server, timeout=30) as client:
            while not stop.is_set():
                r = client.get(SEARCH, headers={"Authorization": f"Bearer {token}"})
                legit.append(r.status_code)

    attackers = [threading.Thread(target=guess) for _ in range(3)]
    worker = threading.Thread(target=work)
    worker.start()
    started = time.monotonic()
    for t in attackers:
        t.start()
    for t in attackers:
        t.join()
    attack_seconds = time.monotonic() - started
    stop.set()
    worker.join()
    # 120 guesses: a few reach the KDF, the rest are refused at once with 429.
    assert statuses.count(429) >= 100, statuses
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) <= 3 * 5  # at most the address limit (5 x max_failures)
    # The token holder was served throughout (and the guesses did not take minutes of KDF).
    assert legit
    assert set(legit) == {200}
    assert attack_seconds < 60
    # After the window the right password works again.
    time.sleep(3.5)
    with httpx.Client(base_url=strict_server, timeout=30) as http:
        assert http.get(SEARCH, auth=("victim", "victim-password")).status_code == 200
        retry = http.get(SEARCH, auth=("victim", "wrong"))
        assert retry.status_code == 401


# -- bootstrap and config ------------------------------------------------------------------------


def test_the_server_refuses_to_start_without_an_admin_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith(("RUNYARD_AUTH_", "MLFLOW_AUTH_"))]:
        monkeypatch.delenv(name)
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", app_name="basic-auth"
    )
    with pytest.raises(InvalidParameterValue, match="RUNYARD_AUTH_ADMIN_PASSWORD"):
        create_app(settings)
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    command = [RUNYARD_BIN, "server", "--app-name", "basic-auth", "--port", str(_free_port()),
               "--backend-store-uri", f"sqlite:///{tmp_path / 'cli.sqlite'}"]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "RUNYARD_AUTH_ADMIN_PASSWORD" in done.stderr + done.stdout


def test_auth_config_file_and_environment(tmp_path: Path) -> None:
    ini = tmp_path / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = sqlite:///auth.db\n"
        "admin_username = root\nadmin_password = from-file-1\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 5\n"
    )
    config = read_auth_config({"MLFLOW_AUTH_CONFIG_PATH": str(ini)})
    assert config.default_permission is Permission.NO_PERMISSIONS
    assert config.database_uri == "sqlite:///auth.db"
    assert (config.admin_username, config.admin_password) == ("root", "from-file-1")
    assert config.cache_ttl_seconds == 5
    env = {"RUNYARD_AUTH_CONFIG_PATH": str(ini), "RUNYARD_AUTH_ADMIN_PASSWORD": "from-env-1",
           "RUNYARD_AUTH_DEFAULT_PERMISSION": "edit"}  # fmt: skip
    config = read_auth_config(env)
    assert config.admin_password == "from-env-1"
    assert config.default_permission is Permission.EDIT
    ini.write_text("[mlflow]\nauthorization_function = my.module:check\n")
    with pytest.raises(InvalidParameterValue, match="not supported"):
        read_auth_config({"RUNYARD_AUTH_CONFIG_PATH": str(ini)})
    with pytest.raises(InvalidParameterValue, match="Valid permissions are"):
        read_auth_config({"RUNYARD_AUTH_DEFAULT_PERMISSION": "WRITE"})
    with pytest.raises(InvalidParameterValue, match="Cannot read the auth config"):
        read_auth_config({"RUNYARD_AUTH_CONFIG_PATH": str(tmp_path / "missing.ini")})


def test_auth_cannot_be_asked_of_an_artifacts_only_server(tmp_path: Path) -> None:
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
        artifacts_only=True,
        app_name="basic-auth",
    )
    with pytest.raises(InvalidParameterValue, match="artifacts-only"):
        create_app(settings)


def test_an_unknown_app_name_is_refused(tmp_path: Path) -> None:
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", app_name="oidc-auth"
    )
    with pytest.raises(InvalidParameterValue, match="Unknown --app-name 'oidc-auth'"):
        create_app(settings)


def test_the_example_config_in_the_guide_is_valid(tmp_path: Path) -> None:
    guide = (Path(__file__).parents[3] / "docs" / "auth.md").read_text()
    example = guide.split("```ini\n", 1)[1].split("```", 1)[0]
    ini = tmp_path / "auth.ini"
    ini.write_text(example)
    config = read_auth_config({"RUNYARD_AUTH_CONFIG_PATH": str(ini)})
    assert config.session_ttl_seconds == 43200
    assert config.max_failures == 10
    assert config.secure_cookies is None
