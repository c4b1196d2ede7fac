"""The web UI's sign-in, sessions and page permissions over HTTP (no browser): an in-process
server with auth on (``app_name="basic-auth"``), real SQLite, real Argon2id."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from runyard.server.app import create_app
from runyard.server.settings import ServerSettings
from runyard.server.ui import experiments as experiments_pages
from runyard.server.ui.login import HOME, safe_next

ADMIN = ("admin", "admin-password-1")
ALICE = ("alice", "alice-password-1")
API = "/api/2.0/mlflow"
HTML = {"Accept": "text/html"}


def _client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **config: str) -> TestClient:
    ini = tmp_path / "auth.ini"
    ini.write_text("[mlflow]\n" + "".join(f"{k} = {v}\n" for k, v in config.items()))
    monkeypatch.setenv("RUNYARD_AUTH_CONFIG_PATH", str(ini))
    monkeypatch.setenv("RUNYARD_AUTH_ADMIN_USERNAME", ADMIN[0])
    monkeypatch.setenv("RUNYARD_AUTH_ADMIN_PASSWORD", ADMIN[1])
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
        app_name="basic-auth",
    )
    return TestClient(create_app(settings), follow_redirects=False)


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class World:
    """An auth server with alice, and what she may and may not read."""

    client: TestClient
    visible: str
    visible_run: str
    hidden: str
    hidden_run: str


def _world(client: TestClient) -> World:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _ok(client.post(API + path, json=body, auth=ADMIN))

    def experiment(name: str) -> tuple[str, str]:
        exp = str(post("/experiments/create", {"name": name})["experiment_id"])
        run = post("/runs/create", {"experiment_id": exp, "run_name": name})["run"]
        return exp, str(run["info"]["run_id"])

    visible, visible_run = experiment("ui-visible")
    hidden, hidden_run = experiment("ui-hidden")
    for model in ("visible-model", "hidden-model"):
        post("/registered-models/create", {"name": model})
    post("/users/create", {"username": ALICE[0], "password": ALICE[1]})
    for path, target in (
        ("/experiments/permissions/create", {"experiment_id": hidden}),
        ("/registered-models/permissions/create", {"name": "hidden-model"}),
    ):
        post(path, {**target, "username": ALICE[0], "permission": "NO_PERMISSIONS"})
    return World(client, visible, visible_run, hidden, hidden_run)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with _client(tmp_path, monkeypatch) as client:
        yield _world(client)


def _sign_in(client: TestClient, user: tuple[str, str], next_path: str = "") -> Any:
    form = {"username": user[0], "password": user[1], "next": next_path}
    return client.post("/login", data=form, headers=HTML)


def _csrf(client: TestClient) -> str:
    page = client.get("/experiments", headers=HTML)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match, page.text[:500]
    return match.group(1)


# -- safe_next ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/runs/abc?x=1#metrics", "/runs/abc?x=1#metrics"),
        ("/experiments/1", "/experiments/1"),
        (None, HOME),
        ("", HOME),
        ("https://evil.example/", HOME),
        ("//evil.example/x", HOME),
        ("/\\evil.example", HOME),
        ("\\\\evil.example", HOME),
        ("javascript:alert(1)", HOME),
        ("/runs/\nabc", HOME),
        ("/login?next=/x", HOME),
        ("/logout", HOME),
        ("experiments", HOME),
    ],
)
def test_safe_next_allows_only_paths_on_this_server(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_safe_next_drops_the_static_prefix() -> None:
    assert safe_next("/mlflow/runs/a", "/mlflow") == "/runs/a"
    assert safe_next("/mlflow", "/mlflow") == "/"
    assert safe_next("/mlflow//evil.example", "/mlflow") == HOME
    assert safe_next("/runs/a", "/mlflow") == "/runs/a"


# -- signing in and out ------------------------------------------------------------------------
def test_pages_redirect_to_login_and_login_sets_a_session_cookie(world: World) -> None:
    client = world.client
    asked = client.get(f"/experiments/{world.visible}", headers=HTML)
    assert asked.status_code in (302, 303)
    assert asked.headers["location"] == f"/login?next=%2Fexperiments%2F{world.visible}"

    form = client.get(asked.headers["location"], headers=HTML)
    assert form.status_code == 200
    assert f'name="next" value="/experiments/{world.visible}"' in form.text
    assert form.headers["cache-control"] == "no-store"
    assert form.headers["x-frame-options"] == "DENY"

    signed_in = _sign_in(client, ALICE, f"/experiments/{world.visible}")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == f"/experiments/{world.visible}"
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith("runyard_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "path=/" in lowered
    assert f"max-age={12 * 3600}" in lowered
    assert "secure" not in lowered  # plain http, secure_cookies unset

    page = client.get(f"/experiments/{world.visible}", headers=HTML)
    assert page.status_code == 200
    assert 'class="site-user-name"' in page.text
    assert ">alice</a>" in page.text
    assert 'name="csrf_token"' in page.text
    # Signed in already: the form sends the browser on.
    again = client.get("/login?next=/models", headers=HTML)
    assert again.status_code == 303
    assert again.headers["location"] == "/models"


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example", "/\\evil"])
def test_login_never_redirects_off_site(world: World, next_path: str) -> None:
    response = _sign_in(world.client, ALICE, next_path)
    assert response.status_code == 303
    assert response.headers["location"] == HOME


def test_wrong_password_is_refused_with_the_form_again(world: World) -> None:
    response = _sign_in(world.client, (ALICE[0], "wrong-password"), "/models")
    assert response.status_code == 401
    assert "Invalid username or password" in response.text
    assert 'name="next" value="/models"' in response.text
    assert 'value="alice"' in response.text
    assert "set-cookie" not in response.headers
    unknown = _sign_in(world.client, ("nobody", "whatever-password"))
    assert unknown.status_code == 401
    assert "Invalid username or password" in unknown.text


def test_a_login_posted_from_another_site_is_refused(world: World) -> None:
    form = {"username": ALICE[0], "password": ALICE[1], "next": "/"}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        response = world.client.post("/login", data=form, headers={**HTML, **headers})
        assert response.status_code == 403, headers
        assert "set-cookie" not in response.headers
    same = world.client.post("/login", data=form, headers={**HTML, "Origin": "http://testserver"})
    assert same.status_code == 303


def test_a_body_that_is_not_a_sign_in_form_is_refused(world: World) -> None:
    response = world.client.post("/login", json={"username": ALICE[0], "password": ALICE[1]})
    assert response.status_code == 400
    huge = world.client.post("/login", data={"username": "a", "password": "x" * 20_000})
    assert huge.status_code == 400


def test_repeated_failures_are_rate_limited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _client(tmp_path, monkeypatch, max_failures="3") as client:
        statuses = [_sign_in(client, (ADMIN[0], "wrong-password")).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        limited = _sign_in(client, ADMIN)
        assert limited.status_code == 429
        assert "Too many failed sign-in attempts" in limited.text


def test_logout_needs_the_csrf_token_and_ends_the_session(world: World) -> None:
    client = world.client
    _sign_in(client, ALICE)
    cookie = client.cookies["runyard_session"]
    csrf = _csrf(client)

    refused = client.post("/logout", data={"csrf_token": "wrong"}, headers=HTML)
    assert refused.status_code == 403
    assert client.get("/experiments", headers=HTML).status_code == 200  # still signed in

    out = client.post("/logout", data={"csrf_token": csrf}, headers=HTML)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert 'runyard_session=""' in out.headers["set-cookie"] or "max-age=0" in (
        out.headers["set-cookie"].lower()
    )
    client.cookies.clear()
    client.cookies.set("runyard_session", cookie)
    assert client.get(f"{API}/experiments/search").status_code == 401
    assert client.get("/experiments", headers=HTML).headers["location"].startswith("/login")


def test_session_writes_need_the_csrf_header(world: World) -> None:
    client = world.client
    _sign_in(client, ALICE)
    csrf = _csrf(client)
    body = {"run_id": world.visible_run, "key": "k", "value": "v"}
    # alice has the default READ on the visible experiment: grant EDIT so the write can pass.
    _ok(client.post(f"{API}/experiments/permissions/create", auth=ADMIN, json={
        "experiment_id": world.visible, "username": ALICE[0], "permission": "EDIT",
    }))  # fmt: skip
    assert client.post(f"{API}/runs/set-tag", json=body).status_code == 403
    assert client.post(f"{API}/runs/set-tag", json=body, headers={"X-CSRF-Token": csrf}).is_success


# -- page permissions --------------------------------------------------------------------------
def test_pages_refuse_what_the_user_may_not_read(world: World) -> None:
    client = world.client
    _sign_in(client, ALICE)
    listing = client.get("/experiments", headers=HTML)
    assert ">ui-visible<" in listing.text
    assert ">ui-hidden<" not in listing.text
    models = client.get("/models", headers=HTML)
    assert ">visible-model<" in models.text
    assert ">hidden-model<" not in models.text

    denied = [
        f"/experiments/{world.hidden}",
        f"/experiments/{world.hidden}/runs.csv",
        f"/runs?experiment_ids={world.visible}&experiment_ids={world.hidden}",
        f"/runs.csv?experiment_ids={world.hidden}",
        f"/runs/{world.hidden_run}",
        f"/runs/{world.hidden_run}/artifact-preview?path=x.txt",
        f"/metrics?runs={world.hidden_run}",
        f"/compare?runs={world.visible_run},{world.hidden_run}",
        "/models/hidden-model",
        "/models/hidden-model/versions/1",
    ]
    for path in denied:
        response = client.get(path, headers=HTML)
        assert response.status_code == 403, path
        assert "Permission denied" in response.text, path

    allowed = [
        f"/experiments/{world.visible}",
        f"/experiments/{world.visible}/runs.csv",
        f"/runs/{world.visible_run}",
        f"/metrics?runs={world.visible_run}",
        f"/compare?runs={world.visible_run}",
        "/models/visible-model",
        "/account",
    ]
    for path in allowed:
        assert client.get(path, headers=HTML).status_code == 200, path


def test_admins_see_everything(world: World) -> None:
    client = world.client
    _sign_in(client, ADMIN)
    assert ">ui-hidden<" in client.get("/experiments", headers=HTML).text
    assert client.get(f"/runs/{world.hidden_run}", headers=HTML).status_code == 200
    assert client.get("/models/hidden-model", headers=HTML).status_code == 200


def test_the_list_reads_on_until_its_page_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experiments_pages, "EXPERIMENTS_PAGE_SIZE", 3)
    with _client(tmp_path, monkeypatch, default_permission="NO_PERMISSIONS") as client:
        ids = []
        for i in range(12):
            created = client.post(
                f"{API}/experiments/create", json={"name": f"exp-{i:02d}"}, auth=ADMIN
            )
            ids.append(_ok(created)["experiment_id"])
        _ok(
            client.post(
                f"{API}/users/create", json={"username": ALICE[0], "password": ALICE[1]}, auth=ADMIN
            )
        )
        readable = [ids[1], ids[6], ids[7], ids[10]]
        for exp in readable:
            _ok(client.post(f"{API}/experiments/permissions/create", auth=ADMIN, json={
                "experiment_id": exp, "username": ALICE[0], "permission": "READ",
            }))  # fmt: skip
        _sign_in(client, ALICE)
        shown: list[str] = []
        path = "/experiments?view=all"
        for _ in range(10):
            page = client.get(path, headers=HTML).text
            shown += re.findall(r">(exp-\d\d)<", page)
            more = re.search(r'href="(/experiments\?[^"]*page_token=[^"]+)"', page)
            if not more:
                break
            path = more.group(1).replace("&amp;", "&")
        names = {f"exp-{i:02d}" for i in (1, 6, 7, 10)}
        assert set(shown) == names
        assert len(shown) == len(names)


def test_account_page_lists_tokens_and_grants(world: World) -> None:
    client = world.client
    _sign_in(client, ALICE)
    csrf = _csrf(client)
    created = client.post(
        "/ajax-api/2.0/runyard/tokens/create",
        json={"name": "nightly-job", "expires_in_days": 3},
        headers={"X-CSRF-Token": csrf},
    )
    secret = _ok(created)["token"]
    page = client.get("/account", headers=HTML)
    assert page.status_code == 200
    assert "Account: alice" in page.text
    assert "nightly-job" in page.text
    assert secret not in page.text
    assert "NO_PERMISSIONS" in page.text
    assert "hidden-model" in page.text


def test_with_auth_off_nothing_changes(tmp_path: Path) -> None:
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        page = client.get("/experiments", headers=HTML)
        assert page.status_code == 200
        assert "site-user" not in page.text
        assert "csrf-token" not in page.text
        assert client.get("/login", headers=HTML).status_code == 404
        assert client.get("/account", headers=HTML).status_code == 404
