"""The web UI with auth on (``runyard server --app-name basic-auth``), in headless Chromium.

The module starts its own server process: an admin (bootstrapped from the environment), a user
``alice`` with EDIT on one experiment and NO_PERMISSIONS on another experiment and on a
registered model, and a user ``carol`` whose password a test changes. Covered: the redirect to
the sign-in page, a wrong password, ``next``, the header, a write through the session (CSRF
header), a write without the CSRF header, logout, hidden experiments and models, and personal
access tokens created and revoked on the account page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import FOREIGN_ENV
from tests.live_server import TrackingServer, stop_server, wait_healthy
from tests.ui.conftest import UI

pytestmark = pytest.mark.slow

ADMIN = ("admin", "admin-password-1")
ALICE = ("alice", "alice-password-1")
CAROL = ("carol", "carol-password-1")
API = "/api/2.0/mlflow"


@dataclass
class AuthSeed:
    """What the auth-enabled server holds."""

    url: str
    visible_experiment: str
    visible_run: str
    hidden_experiment: str
    hidden_run: str
    visible_model: str
    hidden_model: str


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_auth_server(root: Path) -> TrackingServer:
    """A ``runyard server --app-name basic-auth`` process with the admin of :data:`ADMIN`."""
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "runyard"),
        "server",
        *("--backend-store-uri", f"sqlite:///{root / 'db'}"),
        *("--artifacts-destination", str(root / "art")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--app-name", "basic-auth"),
    ]
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        RUNYARD_AUTH_ADMIN_USERNAME=ADMIN[0],
        RUNYARD_AUTH_ADMIN_PASSWORD=ADMIN[1],
    )
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = TrackingServer("runyard", f"http://127.0.0.1:{port}", root, process)
    if wait_healthy(server.url, process):
        return server
    stop_server(server)
    tail = (root / "server.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"auth server did not start:\n{tail}")


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _seed(url: str) -> AuthSeed:
    with httpx.Client(base_url=url + API, auth=ADMIN, timeout=30) as admin:

        def experiment(name: str) -> tuple[str, str]:
            exp = _ok(admin.post("/experiments/create", json={"name": name}))["experiment_id"]
            run = _ok(admin.post("/runs/create", json={"experiment_id": exp, "run_name": name}))
            run_id = run["run"]["info"]["run_id"]
            _ok(admin.post("/runs/log-metric", json={
                "run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0,
            }))  # fmt: skip
            return exp, run_id

        visible, visible_run = experiment("auth-visible")
        hidden, hidden_run = experiment("auth-hidden")
        for model in ("auth-visible-model", "auth-hidden-model"):
            _ok(admin.post("/registered-models/create", json={"name": model}))
        for username, password in (ALICE, CAROL):
            _ok(admin.post("/users/create", json={"username": username, "password": password}))
        grants = [
            ("/experiments/permissions/create", {"experiment_id": visible}, "EDIT"),
            ("/experiments/permissions/create", {"experiment_id": hidden}, "NO_PERMISSIONS"),
            ("/registered-models/permissions/create", {"name": "auth-hidden-model"},
             "NO_PERMISSIONS"),
        ]  # fmt: skip
        for path, target, permission in grants:
            _ok(admin.post(path, json={**target, "username": ALICE[0], "permission": permission}))
    return AuthSeed(
        url, visible, visible_run, hidden, hidden_run, "auth-visible-model", "auth-hidden-model"
    )


@pytest.fixture(scope="module")
def auth_seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthSeed]:
    server = start_auth_server(tmp_path_factory.mktemp("ui-auth-server"))
    try:
        yield _seed(server.url)
    finally:
        stop_server(server)


@pytest.fixture
def aui(browser: Any, auth_seed: AuthSeed) -> Iterator[UI]:
    """A fresh (signed-out) browser page on the auth-enabled server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    helper = UI(context.new_page(), auth_seed.url)
    yield helper
    errors = helper.unexpected_errors()
    context.close()
    assert not errors, "\n".join(errors)


def _sign_in(ui: UI, user: tuple[str, str]) -> None:
    page = ui.page
    page.get_by_label("Username").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def _login(ui: UI, user: tuple[str, str], path: str = "/experiments") -> None:
    ui.goto(path)
    expect(ui.page).to_have_url(re.compile(r"/login\?next="))
    _sign_in(ui, user)
    expect(ui.page.locator(".site-user-name")).to_have_text(user[0])


def _session_cookie(ui: UI) -> str:
    cookies = {c["name"]: c for c in ui.page.context.cookies()}
    cookie = cookies["runyard_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    return str(cookie["value"])


def test_a_page_asks_to_sign_in_and_a_wrong_password_is_refused(
    aui: UI, auth_seed: AuthSeed
) -> None:
    aui.allow_console_error("401")
    response = aui.goto(f"/experiments/{auth_seed.visible_experiment}")
    page = aui.page
    expect(page).to_have_url(
        re.compile(
            r"/login\?next="
            + re.escape(quote(f"/experiments/{auth_seed.visible_experiment}", safe=""))
        )
    )
    assert response.status == 200
    expect(page.get_by_role("heading", name="Sign in to runyard")).to_be_visible()
    expect(page.locator(".site-user")).to_have_count(0)
    aui.shot("auth-login")

    page.get_by_label("Username").fill(ALICE[0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    expect(page.get_by_label("Username")).to_have_value(ALICE[0])
    assert "runyard_session" not in {c["name"] for c in page.context.cookies()}
    aui.shot("auth-login-wrong-password")

    # The form still leads to the page first asked for.
    page.get_by_label("Password").fill(ALICE[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{auth_seed.url}/experiments/{auth_seed.visible_experiment}")
    expect(page.locator(".site-user-name")).to_have_text(ALICE[0])


def test_sign_in_leads_to_next_and_a_tag_is_set_through_the_session(
    aui: UI, auth_seed: AuthSeed
) -> None:
    run_path = f"/runs/{auth_seed.visible_run}"
    _login(aui, ALICE, run_path)
    page = aui.page
    expect(page).to_have_url(auth_seed.url + run_path)
    expect(page.locator('meta[name="csrf-token"]')).to_have_count(1)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    aui.shot("auth-run-page-signed-in")

    page.get_by_role("tab", name=re.compile("Tags")).click()
    page.get_by_label("Key").fill("reviewed-by")
    page.get_by_label("Value").fill("alice")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator('#tags-table tr[data-key="reviewed-by"] .tag-value')).to_have_text("alice")
    aui.shot("auth-run-tag-added")
    with httpx.Client(base_url=auth_seed.url + API, auth=ADMIN) as admin:
        run = _ok(admin.get("/runs/get", params={"run_id": auth_seed.visible_run}))["run"]
    assert {"key": "reviewed-by", "value": "alice"} in run["data"]["tags"]


def test_a_write_with_the_session_but_without_the_csrf_header_is_refused(
    aui: UI, auth_seed: AuthSeed
) -> None:
    _login(aui, ALICE)
    cookie = _session_cookie(aui)
    csrf = aui.page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    body = {"run_id": auth_seed.visible_run, "key": "csrf", "value": "x"}
    with httpx.Client(base_url=auth_seed.url, cookies={"runyard_session": cookie}) as client:
        refused = client.post(f"{API}/runs/set-tag", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
        wrong = client.post(f"{API}/runs/set-tag", json=body, headers={"X-CSRF-Token": "nope"})
        assert wrong.status_code == 403
        allowed = client.post(f"{API}/runs/set-tag", json=body, headers={"X-CSRF-Token": csrf})
        assert allowed.status_code == 200, allowed.text
        # Reads need no token.
        assert client.get(f"{API}/runs/get", params={"run_id": auth_seed.visible_run}).is_success
    aui.shot("auth-csrf")


def test_logout_ends_the_session(aui: UI, auth_seed: AuthSeed) -> None:
    _login(aui, ALICE)
    page = aui.page
    cookie = _session_cookie(aui)
    aui.shot("auth-before-logout")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{auth_seed.url}/login")
    expect(page.get_by_role("heading", name="Sign in to runyard")).to_be_visible()
    assert "runyard_session" not in {c["name"] for c in page.context.cookies()}
    aui.shot("auth-logged-out")

    with httpx.Client(base_url=auth_seed.url, cookies={"runyard_session": cookie}) as client:
        api = client.get(f"{API}/experiments/search", params={"max_results": 10})
        assert api.status_code == 401
        html = client.get("/experiments", headers={"Accept": "text/html"})
        assert html.status_code in (302, 303)
        assert "/login?next=" in html.headers["location"]
    # A signed-out page sends the browser back to the sign-in form.
    aui.goto("/experiments")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_what_alice_may_not_read_is_hidden_or_refused(aui: UI, auth_seed: AuthSeed) -> None:
    aui.allow_console_error("403")
    _login(aui, ALICE)
    page = aui.page
    table = page.locator("main")
    expect(table.get_by_role("link", name="auth-visible", exact=True)).to_be_visible()
    expect(table.get_by_role("link", name="auth-hidden", exact=True)).to_have_count(0)
    aui.shot("auth-experiments-filtered")

    denied = [
        f"/experiments/{auth_seed.hidden_experiment}",
        f"/experiments/{auth_seed.hidden_experiment}/runs.csv",
        f"/runs/{auth_seed.hidden_run}",
        f"/runs?experiment_ids={auth_seed.visible_experiment}"
        f"&experiment_ids={auth_seed.hidden_experiment}",
        f"/compare?runs={auth_seed.visible_run},{auth_seed.hidden_run}",
        f"/metrics?runs={auth_seed.hidden_run}",
        f"/models/{auth_seed.hidden_model}",
        f"/models/{auth_seed.hidden_model}/versions/1",
    ]
    for path in denied:
        response = aui.goto(path)
        assert response.status == 403, path
        expect(page.get_by_role("heading", name="Permission denied")).to_be_visible()
    aui.shot("auth-permission-denied")

    aui.goto("/models")
    expect(page.get_by_role("link", name=auth_seed.visible_model)).to_be_visible()
    expect(page.get_by_role("link", name=auth_seed.hidden_model)).to_have_count(0)
    aui.shot("auth-models-filtered")
    # What she may read opens.
    assert aui.goto(f"/compare?runs={auth_seed.visible_run}").status == 200
    assert aui.goto(f"/models/{auth_seed.visible_model}").status == 200


def test_admin_sees_everything(aui: UI, auth_seed: AuthSeed) -> None:
    _login(aui, ADMIN)
    page = aui.page
    expect(page.locator("main").get_by_role("link", name="auth-hidden", exact=True)).to_be_visible()
    assert aui.goto(f"/runs/{auth_seed.hidden_run}").status == 200
    aui.shot("auth-admin-run")


def test_account_page_creates_and_revokes_a_token(aui: UI, auth_seed: AuthSeed) -> None:
    _login(aui, ALICE)
    page = aui.page
    page.locator(".site-user-name").click()
    expect(page).to_have_url(f"{auth_seed.url}/account")
    expect(page.get_by_role("heading", name="Account: alice")).to_be_visible()
    aui.shot("auth-account")

    page.get_by_role("button", name="Create token").click()
    page.get_by_label("Name (what it is for)").fill("ci-script")
    page.get_by_label(re.compile("Expires after")).fill("7")
    page.locator("#create-token-dialog").get_by_role("button", name="Create").click()
    secret_box = page.get_by_label("Token", exact=True)
    expect(secret_box).to_have_value(re.compile(r"^ryt_"))
    secret = secret_box.input_value()
    aui.shot("auth-token-created")
    page.get_by_role("button", name="Done").click()
    row = page.locator("tr", has_text="ci-script")
    expect(row).to_have_count(1)

    search = f"{auth_seed.url}{API}/experiments/search"
    headers = {"Authorization": f"Bearer {secret}"}
    found = httpx.get(search, params={"max_results": 50}, headers=headers)
    assert found.status_code == 200, found.text
    names = {e["name"] for e in found.json()["experiments"]}
    assert "auth-visible" in names
    assert "auth-hidden" not in names

    row.get_by_role("button", name=re.compile("Revoke")).click()
    page.locator("#revoke-token-dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="ci-script")).to_have_count(0)
    aui.shot("auth-token-revoked")
    assert httpx.get(search, params={"max_results": 50}, headers=headers).status_code == 401


def test_account_page_changes_the_password(aui: UI, auth_seed: AuthSeed) -> None:
    aui.allow_console_error("400")  # the refused change (wrong current password)
    _login(aui, CAROL)
    page = aui.page
    aui.goto("/account")
    page.get_by_label("Current password").fill("wrong-password")
    page.get_by_label("New password (at least 8 characters)").fill("carol-password-2")
    page.get_by_label("Repeat the new password").fill("carol-password-2")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-error")).to_have_text("Current password does not match.")
    aui.shot("auth-password-wrong")

    page.get_by_label("Current password").fill(CAROL[1])
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#toast")).to_have_text("Password changed")
    aui.shot("auth-password-changed")
    current = f"{auth_seed.url}{API}/users/current"
    assert httpx.get(current, auth=(CAROL[0], "carol-password-2")).status_code == 200
    assert httpx.get(current, auth=CAROL).status_code == 401


def test_a_write_after_the_session_ended_leads_to_the_sign_in_page(
    aui: UI, auth_seed: AuthSeed
) -> None:
    aui.allow_console_error("401")
    run_path = f"/runs/{auth_seed.visible_run}"
    _login(aui, ALICE, run_path)
    page = aui.page
    cookie = _session_cookie(aui)
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    # The session ends elsewhere (another tab logs out).
    with httpx.Client(base_url=auth_seed.url, cookies={"runyard_session": cookie}) as other:
        ended = other.post("/logout", data={"csrf_token": csrf})
        assert ended.status_code == 303
    page.get_by_role("tab", name=re.compile("Tags")).click()
    page.get_by_label("Key").fill("after-logout")
    page.get_by_role("button", name="Add tag").click()
    expect(page).to_have_url(re.compile(r"/login\?next=" + re.escape(quote(run_path, safe=""))))
    aui.shot("auth-session-ended")
    _sign_in(aui, ALICE)
    expect(page).to_have_url(auth_seed.url + run_path)
