"""``runyard users``, ``runyard tokens`` and ``runyard audit`` against a live auth server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from runyard.cli import main
from runyard.cli.users import parse_time
from tests.server.auth.conftest import (
    ADMIN,
    PASSWORD,
    AuthServer,
    create_user,
    start_auth_server,
    stop_auth_server,
    unique_name,
)

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]
Credentials = tuple[str, str]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """An auth-enabled server process for this module (admin: ``ADMIN``)."""
    server = start_auth_server(tmp_path_factory.mktemp("cli-auth-server"))
    yield server
    stop_auth_server(server)


@pytest.fixture
def server_user(auth_server: AuthServer) -> Iterator[Callable[..., Credentials]]:
    """Create users on the server through the API: ``server_user() -> (name, password)``."""
    with httpx.Client(base_url=auth_server.url, timeout=60) as client:

        def make(admin: bool = False) -> Credentials:
            return create_user(client, admin=admin)

        yield make


@pytest.fixture
def runyard(auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``runyard ARGS...`` against the auth server, as the admin unless ``as_user`` is
    given (a (name, password) pair, or a token string)."""
    for name in ("TRACKING_URI", "TRACKING_USERNAME", "TRACKING_PASSWORD", "TRACKING_TOKEN"):
        monkeypatch.delenv(f"RUNYARD_{name}", raising=False)
        monkeypatch.delenv(f"MLFLOW_{name}", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server.url)
    monkeypatch.setenv("RUNYARD_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    runner = CliRunner()

    def invoke(*args: str, as_user: Credentials | str = ADMIN, input: str | None = None) -> Result:
        if isinstance(as_user, str):
            env = {"MLFLOW_TRACKING_TOKEN": as_user}
        else:
            env = {"MLFLOW_TRACKING_USERNAME": as_user[0], "MLFLOW_TRACKING_PASSWORD": as_user[1]}
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


# -- users ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_create_list_and_delete_users(runyard: Invoke, user_error: ErrorCheck) -> None:
    name = unique_name()
    out = ok(runyard("users", "create", name, "--password", PASSWORD))
    assert out.startswith(f"Created user '{name}' with id ")
    table = ok(runyard("users", "list"))
    assert table.splitlines()[0].split() == ["ID", "Username", "Admin"]
    row = next(line.split() for line in table.splitlines() if name in line)
    assert row[1:] == [name]
    admin_row = next(line.split() for line in table.splitlines() if " admin " in f" {line} ")
    assert admin_row[1:] == ["admin", "yes"]
    listed = json.loads(ok(runyard("users", "list", "--output", "json")))
    assert {"id": int(row[0]), "username": name, "is_admin": False} in listed
    assert ok(runyard("users", "delete", name, "--yes")) == f"Deleted user '{name}'\n"
    assert name not in ok(runyard("users", "list"))
    user_error(runyard("users", "delete", name, "--yes"), f"User with username={name} not found")


@pytest.mark.slow
def test_create_prompts_for_a_hidden_confirmed_password(runyard: Invoke) -> None:
    name = unique_name()
    result = runyard("users", "create", name, "--admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    out = ok(result)
    assert PASSWORD not in out  # hidden
    assert "New password" in out
    assert f"Created admin '{name}'" in out
    # The new admin can list users with that password.
    assert name in ok(runyard("users", "list", as_user=(name, PASSWORD)))


@pytest.mark.slow
def test_delete_asks_first(runyard: Invoke, server_user: Callable[..., Credentials]) -> None:
    name, _ = server_user()
    refused = runyard("users", "delete", name, input="n\n")
    assert refused.exit_code == 1
    assert "Aborted" in refused.output
    assert name in ok(runyard("users", "list"))
    ok(runyard("users", "delete", name, input="y\n"))
    assert name not in ok(runyard("users", "list"))


@pytest.mark.slow
def test_set_admin(
    runyard: Invoke, server_user: Callable[..., Credentials], user_error: ErrorCheck
) -> None:
    user = server_user()
    user_error(runyard("users", "list", as_user=user), "Permission denied")
    assert ok(runyard("users", "set-admin", user[0], "true")) == f"'{user[0]}' is now an admin\n"
    ok(runyard("users", "list", as_user=user))
    assert "no longer" in ok(runyard("users", "set-admin", user[0], "false"))
    user_error(runyard("users", "list", as_user=user), "needs an admin account")


@pytest.mark.slow
def test_update_password(
    runyard: Invoke, server_user: Callable[..., Credentials], user_error: ErrorCheck
) -> None:
    name, old = server_user()
    ok(runyard("users", "update-password", name, "--password", "set-by-admin-1"))
    user_error(runyard("users", "permissions", as_user=(name, old)), "MLFLOW_TRACKING_USERNAME")
    ok(runyard("users", "permissions", as_user=(name, "set-by-admin-1")))
    # Your own: the current password is prompted for (hidden) when not given.
    result = runyard(
        "users", "update-password", name, "--password", "chosen-by-me-1",
        as_user=(name, "set-by-admin-1"), input="set-by-admin-1\n",
    )  # fmt: skip
    assert "Current password" in ok(result)
    ok(runyard("users", "permissions", as_user=(name, "chosen-by-me-1")))
    wrong = runyard(
        "users", "update-password", name, "--password", "another-one-1",
        "--current-password", "not-the-password", as_user=(name, "chosen-by-me-1"),
    )  # fmt: skip
    user_error(wrong, "Current password does not match")
    other = server_user()
    denied = runyard(
        "users", "update-password", other[0], "--password", "hijack-attempt",
        as_user=(name, "chosen-by-me-1"),
    )  # fmt: skip
    user_error(denied, "Permission denied")


@pytest.mark.slow
def test_grant_revoke_and_permissions(
    runyard: Invoke, server_user: Callable[..., Credentials]
) -> None:
    user = server_user()
    model = unique_name("model")
    out = ok(runyard("users", "grant", user[0], "--experiment-id", "0", "--permission", "edit"))
    assert out == f"Granted EDIT on experiment '0' to '{user[0]}'\n"
    ok(runyard("users", "grant", user[0], "-m", model, "-p", "READ"))
    table = ok(runyard("users", "permissions", user[0]))
    lines = table.splitlines()
    assert lines[0].split() == ["Type", "Resource", "Permission"]
    assert ["experiment", "0", "EDIT"] in [line.split() for line in lines]
    assert ["registered_model", model, "READ"] in [line.split() for line in lines]
    own = json.loads(ok(runyard("users", "permissions", "--output", "json", as_user=user)))
    assert own == {
        "is_admin": False,
        "permissions": [
            {"resource_type": "experiment", "resource_pattern": "0", "permission": "EDIT"},
            {"resource_type": "registered_model", "resource_pattern": model,
             "permission": "READ"},
        ],
    }  # fmt: skip
    out = ok(runyard("users", "revoke", user[0], "--model", model))
    assert out == f"Revoked the permission of '{user[0]}' on registered model '{model}'\n"
    ok(runyard("users", "revoke", user[0], "-x", "0"))
    assert "has no explicit grants" in ok(runyard("users", "permissions", user[0]))
    assert "is an admin" in ok(runyard("users", "permissions", "admin"))


@pytest.mark.slow
def test_grant_usage_errors(runyard: Invoke, user_error: ErrorCheck) -> None:
    both = runyard("users", "grant", "x", "-x", "1", "-m", "m", "-p", "READ")
    assert both.exit_code == 2
    assert "exactly one of --experiment-id and --model" in both.stderr
    bad = runyard("users", "grant", "x", "-x", "1", "-p", "OWNER")
    assert bad.exit_code == 2
    assert "'OWNER' is not one of" in bad.stderr
    user_error(
        runyard("users", "grant", "ghost-user", "-x", "0", "-p", "READ"),
        "User with username=ghost-user not found",
    )


# -- tokens -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_token_create_use_list_revoke(
    runyard: Invoke, server_user: Callable[..., Credentials], user_error: ErrorCheck
) -> None:
    user = server_user()
    created = runyard("tokens", "create", "--name", "ci", "--expires-in-days", "7", as_user=user)
    token = ok(created).strip()
    assert token.startswith("ryt_")
    assert "\n" not in token  # only the secret on stdout, for $(...)
    assert "Copy it now" in created.stderr
    assert "MLFLOW_TRACKING_TOKEN" in created.stderr
    # The token is a credential of its own.
    own = json.loads(ok(runyard("users", "permissions", "--output", "json", as_user=token)))
    assert own["is_admin"] is False
    table = ok(runyard("tokens", "list", as_user=token))
    assert table.splitlines()[0].split() == [
        "ID",
        "Name",
        "User",
        "Created",
        "Expires",
        "Last",
        "used",
    ]
    [row] = [line.split() for line in table.splitlines() if line.split()[:1] != ["ID"]
             and line.strip()[:1].isdigit()]  # fmt: skip
    token_id = row[0]
    assert row[1:3] == ["ci", user[0]]
    listed = json.loads(ok(runyard("tokens", "list", "--output", "json", as_user=user)))
    assert [t["name"] for t in listed] == ["ci"]
    assert token not in json.dumps(listed)
    assert ok(runyard("tokens", "revoke", token_id, as_user=user)) == f"Revoked token {token_id}\n"
    user_error(runyard("users", "permissions", as_user=token), "MLFLOW_TRACKING_TOKEN")
    user_error(runyard("tokens", "revoke", token_id, as_user=user), "not found")


@pytest.mark.slow
def test_admins_manage_other_users_tokens(
    runyard: Invoke, server_user: Callable[..., Credentials], user_error: ErrorCheck
) -> None:
    alice, bob = server_user(), server_user()
    ok(runyard("tokens", "create", "--user", bob[0], "--name", "for-bob"))
    listed = json.loads(ok(runyard("tokens", "list", "--user", bob[0], "--output", "json")))
    assert [(t["name"], t["username"]) for t in listed] == [("for-bob", bob[0])]
    user_error(runyard("tokens", "list", "--user", bob[0], as_user=alice), "Permission denied")
    user_error(runyard("tokens", "create", "--user", bob[0], as_user=alice), "Permission denied")


# -- audit ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_audit_shows_recent_writes(
    runyard: Invoke, server_user: Callable[..., Credentials], user_error: ErrorCheck
) -> None:
    user = server_user()
    ok(runyard("tokens", "create", "--name", "audited", as_user=user))
    entries = json.loads(ok(runyard("audit", "--since", "10m", "--user", user[0], "--json")))
    assert entries[0]["username"] == user[0]
    assert entries[0]["path"] == "/api/2.0/runyard/tokens/create"
    assert entries[0]["status"] == 200
    table = ok(runyard("audit", "--since", "1h", "--max-results", "5"))
    header = table.splitlines()[0].split()
    assert header == ["Time", "User", "Method", "Path", "Status", "Resource", "Client"]
    assert len([line for line in table.splitlines()[2:] if line.strip()]) <= 5
    future = json.loads(ok(runyard("audit", "--since", "2999-01-01", "--json")))
    assert future == []
    user_error(runyard("audit", as_user=user), "Permission denied")
    bad = runyard("audit", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "neither a duration" in bad.stderr


@pytest.mark.slow
def test_audit_pages_through_more_than_one_request(
    runyard: Invoke, server_user: Callable[..., Credentials]
) -> None:
    user = server_user()
    for i in range(3):
        ok(runyard("tokens", "create", "--name", f"t{i}", as_user=user))
    got = json.loads(ok(runyard("audit", "--user", user[0], "--since", "1h", "--json")))
    assert [e["path"] for e in got].count("/api/2.0/runyard/tokens/create") == 3
    two = json.loads(ok(runyard("audit", "--user", user[0], "--max-results", "2", "--json")))
    assert [e["id"] for e in two] == [e["id"] for e in got[:2]]


# -- connection errors ------------------------------------------------------------------------
@pytest.mark.slow
def test_connection_errors_are_one_line(
    runyard: Invoke, monkeypatch: pytest.MonkeyPatch, user_error: ErrorCheck
) -> None:
    user_error(
        runyard("users", "list", as_user=("admin", "wrong-password")), "MLFLOW_TRACKING_PASSWORD"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///local.db")
    user_error(runyard("users", "list"), "--app-name basic-auth")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    user_error(runyard("users", "list"), "--tracking-uri")


@pytest.mark.slow
def test_tracking_uri_option_wins(
    runyard: Invoke, auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    out = ok(runyard("users", "list", "--tracking-uri", auth_server.url))
    assert "admin" in out


# -- time parsing (no server) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds_ago"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172_800), ("1w", 604_800), ("1.5h", 5400)],
)
def test_parse_time_durations(text: str, seconds_ago: int) -> None:
    now = 1_800_000_000.0
    assert parse_time(text, now=now) == int((now - seconds_ago) * 1000)


def test_parse_time_iso() -> None:
    assert parse_time("2026-05-01T14:30:00+00:00") == 1_777_645_800_000
    local = datetime(2026, 5, 1).timestamp() * 1000
    assert parse_time("2026-05-01") == int(local)
    with pytest.raises(click.BadParameter, match="neither a duration"):
        parse_time("last tuesday")


def test_parse_time_is_relative_to_now() -> None:
    before = time.time()
    assert abs(parse_time("1h") - (before - 3600) * 1000) < 5_000
