"""``runyard users``, ``runyard tokens`` and ``runyard audit``: manage an auth-enabled server.

These commands talk to a tracking server started with ``--app-name basic-auth`` over its REST API
(MLflow's users and permissions endpoints, runyard's tokens and audit endpoints). The server comes
from ``--tracking-uri`` or RUNYARD_TRACKING_URI / MLFLOW_TRACKING_URI; the caller's credentials from
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

import click

from runyard.cli.output import (
    RunyardGroup,
    echo_json,
    echo_table,
    format_time,
    one_line,
    output_option,
)
from runyard.config import ENV
from runyard.errors import PermissionDenied, RunyardError, Unauthenticated

__all__ = ["audit", "parse_time", "tokens", "users"]

F = TypeVar("F", bound=Callable[..., Any])

_MLFLOW = "/api/2.0/mlflow"
_MLFLOW3 = "/api/3.0/mlflow"
_RUNYARD = "/api/2.0/runyard"
#: A command should fail in seconds when the server is down, not after minutes of backoff.
_MAX_RETRIES = 2
_PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_CREDENTIALS_HINT = (
    "Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
    "to an account of this server."
)


# -- the connection ---------------------------------------------------------------------------
def tracking_uri_option(func: F) -> F:
    """``--tracking-uri``: the server to manage (default from the environment)."""
    option = click.option(
        "--tracking-uri",
        envvar=[ENV.TRACKING_URI.runyard_name, ENV.TRACKING_URI.mlflow_name],
        show_envvar=True,
        metavar="URL",
        help="The tracking server, e.g. http://localhost:5000 (started with "
        "--app-name basic-auth).",
    )
    return option(func)


class _Server:
    """The REST calls of one command, with errors turned into advice a user can act on."""

    def __init__(self, tracking_uri: str | None) -> None:
        if not tracking_uri:
            raise click.ClickException(
                "No tracking server given: pass --tracking-uri http://HOST:PORT or set "
                "MLFLOW_TRACKING_URI."
            )
        if urlparse(tracking_uri).scheme not in ("http", "https"):
            raise click.ClickException(
                f"'{tracking_uri}' is not a tracking server: users, tokens and the audit log "
                "live on a server started with 'runyard server --app-name basic-auth'; pass its "
                "http(s):// URL with --tracking-uri."
            )
        # Imported here: httpx is not needed by `runyard --help` or other commands.
        from runyard.store.http_session import HttpConfig, HttpSession

        try:
            config = HttpConfig.from_env()
        except ValueError as exc:  # a malformed RUNYARD_*/MLFLOW_* variable
            raise click.ClickException(one_line(str(exc))) from None
        self.uri = tracking_uri
        self.config = replace(config, max_retries=min(config.max_retries, _MAX_RETRIES))
        self._session = HttpSession(tracking_uri, self.config)
        click.get_current_context().call_on_close(self._session.close)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One JSON request; auth and missing-endpoint errors come back with a hint."""
        try:
            return self._session.call(method, path, params=params, body=body)
        except Unauthenticated as exc:
            raise click.ClickException(f"{one_line(exc.message)} {_CREDENTIALS_HINT}") from None
        except PermissionDenied as exc:
            if exc.message.strip() != "Permission denied":  # the server said why
                raise
            raise click.ClickException(
                "Permission denied: this needs an admin account (or MANAGE permission on the "
                "resource). Check MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_TOKEN."
            ) from None
        except RunyardError as exc:
            if exc.error_code == "ENDPOINT_NOT_FOUND":
                raise click.ClickException(
                    f"{self.uri} has no auth endpoints: start it with "
                    "'runyard server --app-name basic-auth'."
                ) from None
            raise

    def current_username(self) -> str:
        """Who the credentials belong to."""
        if self.config.username:
            return self.config.username
        return str(self.call("GET", f"{_MLFLOW}/users/current")["user"]["username"])


def _output_json(output: str) -> bool:
    return output.lower() == "json"


def _new_password(func: F) -> F:
    option = click.option(
        "--password",
        prompt="New password",
        hide_input=True,
        confirmation_prompt=True,
        help="The password (at least 8 characters). Prompted for, hidden, when not given; "
        "avoid passing it on the command line, where it lands in the shell history.",
    )
    return option(func)


def parse_time(text: str, now: float | None = None) -> int:
    """``1h``, ``30m``, ``2d``, ``1w`` ago, or an ISO time (local unless it has an offset), as
    milliseconds since the epoch."""
    current = time.time() if now is None else now
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return int((current - amount * _UNITS[unit]) * 1000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"'{text}' is neither a duration like 30m, 1h, 2d, 1w nor an ISO time like "
            "2026-05-01 or 2026-05-01T14:30:00."
        ) from None
    return int(moment.timestamp() * 1000)


# -- runyard users ----------------------------------------------------------------------------
@click.group("users", cls=RunyardGroup)
def users() -> None:
    """Manage the users of an auth-enabled tracking server and their permissions.

    Needs a server started with 'runyard server --app-name basic-auth'. The server comes from
    --tracking-uri or MLFLOW_TRACKING_URI; your credentials from MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN). Most commands need an admin account.

    \b
    Example:
        export MLFLOW_TRACKING_URI=http://localhost:5000
        export MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=...
        runyard users create alice
        runyard users grant alice --experiment-id 1 --permission EDIT
    """


@users.command("create")
@click.argument("username")
@_new_password
@click.option("--admin", is_flag=True, help="Make the new user an admin.")
@tracking_uri_option
def create_user(username: str, password: str, admin: bool, tracking_uri: str | None) -> None:
    """Create a user (admins only).

    \b
    Example:
        runyard users create alice
        runyard users create bob --admin
    """
    server = _Server(tracking_uri)
    user = server.call(
        "POST", f"{_MLFLOW}/users/create", body={"username": username, "password": password}
    )["user"]
    if admin:
        server.call(
            "PATCH", f"{_MLFLOW}/users/update-admin", body={"username": username, "is_admin": True}
        )
    role = "admin" if admin else "user"
    click.echo(f"Created {role} '{user['username']}' with id {user['id']}")


@users.command("list")
@output_option
@tracking_uri_option
def list_users(output: str, tracking_uri: str | None) -> None:
    """List the users (admins only).

    \b
    Example:
        runyard users list
        runyard users list --output json
    """
    found = _Server(tracking_uri).call("GET", f"{_MLFLOW}/users/list").get("users", [])
    if _output_json(output):
        echo_json([{k: u[k] for k in ("id", "username", "is_admin")} for u in found])
        return
    rows = [[str(u["id"]), u["username"], "yes" if u["is_admin"] else ""] for u in found]
    echo_table(["ID", "Username", "Admin"], rows, no_wrap=["ID"])


@users.command("delete")
@click.argument("username")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@tracking_uri_option
def delete_user(username: str, yes: bool, tracking_uri: str | None) -> None:
    """Delete a user with their permissions and tokens (admins only; not yourself).

    \b
    Example:
        runyard users delete alice --yes
    """
    if not yes:
        click.confirm(f"Delete user '{username}' with their permissions and tokens?", abort=True)
    _Server(tracking_uri).call("DELETE", f"{_MLFLOW}/users/delete", body={"username": username})
    click.echo(f"Deleted user '{username}'")


@users.command("update-password")
@click.argument("username")
@_new_password
@click.option(
    "--current-password",
    help="Your current password, needed to change your own (prompted for when not given).",
)
@tracking_uri_option
def update_password(
    username: str, password: str, current_password: str | None, tracking_uri: str | None
) -> None:
    """Set a user's password (admins: anyone's; everyone: their own, with the current one).

    Sessions of the user end, and the old password stops working at once.

    \b
    Example:
        runyard users update-password alice
    """
    server = _Server(tracking_uri)
    body = {"username": username, "password": password}
    if current_password is None and server.current_username() == username:
        current_password = click.prompt("Current password", hide_input=True)
    if current_password is not None:
        body["current_password"] = current_password
    server.call("PATCH", f"{_MLFLOW}/users/update-password", body=body)
    click.echo(f"Updated the password of '{username}'")


@users.command("set-admin")
@click.argument("username")
@click.argument("is_admin", metavar="true|false", type=click.BOOL)
@tracking_uri_option
def set_admin(username: str, is_admin: bool, tracking_uri: str | None) -> None:
    """Make a user an admin (true) or a regular user (false); admins only.

    \b
    Example:
        runyard users set-admin alice true
    """
    _Server(tracking_uri).call(
        "PATCH", f"{_MLFLOW}/users/update-admin", body={"username": username, "is_admin": is_admin}
    )
    click.echo(f"'{username}' is {'now an admin' if is_admin else 'no longer an admin'}")


def _resource_options(func: F) -> F:
    func = click.option("--model", "-m", metavar="NAME", help="Name of the registered model.")(func)
    func = click.option(
        "--experiment-id",
        "-x",
        metavar="ID",
        help="ID of the experiment, as shown by 'runyard experiments list'.",
    )(func)
    return func


def _resource(experiment_id: str | None, model: str | None) -> tuple[str, str]:
    if (experiment_id is None) == (model is None):
        raise click.UsageError("Give exactly one of --experiment-id and --model.")
    if experiment_id is not None:
        return "experiment", experiment_id
    assert model is not None
    return "registered_model", model


def _describe(resource_type: str, resource_id: str) -> str:
    kind = "experiment" if resource_type == "experiment" else "registered model"
    return f"{kind} '{resource_id}'"


@users.command("grant")
@click.argument("username")
@_resource_options
@click.option(
    "--permission",
    "-p",
    required=True,
    type=click.Choice(_PERMISSIONS, case_sensitive=False),
    help="READ: view; USE: view and use (e.g. serve a model); EDIT: also log, tag and rename; "
    "MANAGE: also delete and grant others; NO_PERMISSIONS: nothing.",
)
@tracking_uri_option
def grant(
    username: str,
    experiment_id: str | None,
    model: str | None,
    permission: str,
    tracking_uri: str | None,
) -> None:
    """Give a user a permission on an experiment or a registered model (replaces an earlier
    one). Needs MANAGE on the resource, or an admin account.

    \b
    Example:
        runyard users grant alice --experiment-id 1 --permission EDIT
        runyard users grant bob --model fraud-model --permission READ
    """
    resource_type, resource_id = _resource(experiment_id, model)
    body = {
        "username": username,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "permission": permission.upper(),
    }
    _Server(tracking_uri).call("POST", f"{_MLFLOW3}/users/permissions/grant", body=body)
    click.echo(f"Granted {permission.upper()} on {_describe(resource_type, resource_id)} "
               f"to '{username}'")  # fmt: skip


@users.command("revoke")
@click.argument("username")
@_resource_options
@tracking_uri_option
def revoke(
    username: str, experiment_id: str | None, model: str | None, tracking_uri: str | None
) -> None:
    """Remove a user's permission on an experiment or registered model; the server's default
    permission applies to them again.

    \b
    Example:
        runyard users revoke alice --experiment-id 1
    """
    resource_type, resource_id = _resource(experiment_id, model)
    body = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
    _Server(tracking_uri).call("POST", f"{_MLFLOW3}/users/permissions/revoke", body=body)
    click.echo(f"Revoked the permission of '{username}' on "
               f"{_describe(resource_type, resource_id)}")  # fmt: skip


@users.command("permissions")
@click.argument("username", required=False)
@output_option
@tracking_uri_option
def permissions(username: str | None, output: str, tracking_uri: str | None) -> None:
    """List a user's permission grants (yours without USERNAME).

    Resources without a grant get the server's default permission; admins may do everything.

    \b
    Example:
        runyard users permissions
        runyard users permissions alice --output json
    """
    server = _Server(tracking_uri)
    if username:
        doc = server.call(
            "GET", f"{_MLFLOW3}/users/permissions/list", params={"username": username}
        )
    else:
        doc = server.call("GET", f"{_MLFLOW3}/users/current/permissions")
    rows = doc.get("permissions", [])
    if _output_json(output):
        echo_json({"is_admin": bool(doc.get("is_admin")), "permissions": [
            {k: r[k] for k in ("resource_type", "resource_pattern", "permission")} for r in rows
        ]})  # fmt: skip
        return
    who = f"'{username}'" if username else "You"
    if doc.get("is_admin"):
        click.echo(f"{who} {'are' if who == 'You' else 'is'} an admin: every action is allowed.")
    if not rows:
        click.echo(f"{who} {'have' if who == 'You' else 'has'} no explicit grants.")
        return
    table = [[r["resource_type"], r["resource_pattern"], r["permission"]] for r in rows]
    echo_table(["Type", "Resource", "Permission"], table)


# -- runyard tokens ---------------------------------------------------------------------------
@click.group("tokens", cls=RunyardGroup)
def tokens() -> None:
    """Personal access tokens: credentials for scripts and CI instead of a password.

    Use a token as MLFLOW_TRACKING_TOKEN (sent as 'Authorization: Bearer <token>'). It works
    until it expires or is revoked. Admins may manage other users' tokens with --user.

    \b
    Example:
        export MLFLOW_TRACKING_TOKEN=$(runyard tokens create --name ci --expires-in-days 30)
        runyard tokens list
        runyard tokens revoke 3
    """


def _user_option(action: str) -> Callable[[F], F]:
    return click.option(
        "--user",
        "username",
        metavar="USERNAME",
        help=f"{action} another user's tokens (admins only; default: your own).",
    )


@tokens.command("create")
@click.option("--name", default="token", show_default=True, help="A label to recognise it by.")
@click.option(
    "--expires-in-days",
    type=click.FloatRange(min=0, min_open=True),
    help="Days until it expires (default: the server's, 90 unless configured).",
)
@_user_option("Create")
@tracking_uri_option
def create_token(
    name: str, expires_in_days: float | None, username: str | None, tracking_uri: str | None
) -> None:
    """Create a token and print it: only now, it is never shown again.

    The token alone goes to standard output (for scripts); what it is goes to standard error.

    \b
    Example:
        runyard tokens create --name ci --expires-in-days 30
    """
    body: dict[str, Any] = {"name": name}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    if username:
        body["username"] = username
    doc = _Server(tracking_uri).call("POST", f"{_RUNYARD}/tokens/create", body=body)
    info = doc["token_info"]
    click.echo(doc["token"])
    click.echo(
        f"Token {info['id']} '{info['name']}' of '{info['username']}', expires "
        f"{format_time(info['expiration_time'])}. Copy it now: it is not shown again. "
        "Use it as MLFLOW_TRACKING_TOKEN.",
        err=True,
    )


@tokens.command("list")
@_user_option("List")
@output_option
@tracking_uri_option
def list_tokens(username: str | None, output: str, tracking_uri: str | None) -> None:
    """List tokens that are not revoked (never their secrets).

    \b
    Example:
        runyard tokens list
        runyard tokens list --user alice
    """
    params = {"username": username} if username else None
    found = _Server(tracking_uri).call("GET", f"{_RUNYARD}/tokens/list", params=params)
    items = found.get("tokens", [])
    if _output_json(output):
        echo_json(items)
        return
    now = time.time() * 1000
    rows = [
        [
            str(t["id"]),
            t["name"],
            t["username"],
            format_time(t["creation_time"]),
            format_time(t["expiration_time"])
            + (" (expired)" if t["expiration_time"] <= now else ""),
            format_time(t.get("last_used_time")),
        ]
        for t in items
    ]
    echo_table(
        ["ID", "Name", "User", "Created", "Expires", "Last used"],
        rows,
        no_wrap=["ID", "Created", "Expires", "Last used"],
    )


@tokens.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@_user_option("Revoke")
@tracking_uri_option
def revoke_token(token_id: int, username: str | None, tracking_uri: str | None) -> None:
    """Revoke a token by its ID (from 'runyard tokens list'); it stops working at once.

    \b
    Example:
        runyard tokens revoke 3
    """
    body: dict[str, Any] = {"token_id": token_id}
    if username:
        body["username"] = username
    _Server(tracking_uri).call("POST", f"{_RUNYARD}/tokens/revoke", body=body)
    click.echo(f"Revoked token {token_id}")


# -- runyard audit ----------------------------------------------------------------------------
def _fetch_audit(server: _Server, query: dict[str, Any], max_results: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    token: str | None = None
    while len(entries) < max_results:
        params = {**query, "max_results": min(1000, max_results - len(entries))}
        if token:
            params["page_token"] = token
        page = server.call("GET", f"{_RUNYARD}/audit", params=params)
        entries.extend(page.get("entries", []))
        token = page.get("next_page_token")
        if not token:
            break
    return entries


def _status(entry: dict[str, Any]) -> str:
    code = entry.get("error_code")
    return f"{entry['status']} {code}" if code else str(entry["status"])


def _resource_cell(entry: dict[str, Any]) -> str:
    if entry.get("resource_type") is None:
        return ""
    return f"{entry['resource_type']}:{entry.get('resource_id', '')}"


@click.command("audit")
@click.option(
    "--since",
    metavar="WHEN",
    help="Only entries from then on: 30m, 1h, 2d, 1w ago, or an ISO time (2026-05-01T14:30).",
)
@click.option("--until", metavar="WHEN", help="Only entries before then (same forms as --since).")
@click.option("--user", "username", metavar="USERNAME", help="Only what this user did.")
@click.option(
    "--max-results",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many entries, newest first.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
)
@tracking_uri_option
def audit(
    since: str | None,
    until: str | None,
    username: str | None,
    max_results: int,
    as_json: bool,
    tracking_uri: str | None,
) -> None:
    """Show the audit log of an auth-enabled server: who changed what, when (admins only).

    Every write request is recorded with its user, endpoint, resource and outcome.

    \b
    Example:
        runyard audit --since 1h
        runyard audit --since 2026-05-01 --until 2026-05-02 --user alice --json
    """
    query: dict[str, Any] = {}
    if since:
        query["since"] = parse_time(since)
    if until:
        query["until"] = parse_time(until)
    if username:
        query["username"] = username
    entries = _fetch_audit(_Server(tracking_uri), query, max_results)
    if as_json:
        echo_json(entries)
        return
    rows = [
        [
            format_time(e["timestamp"]),
            e.get("username") or "",
            e["method"],
            e["path"],
            _status(e),
            _resource_cell(e),
            e.get("client_ip") or "",
        ]
        for e in entries
    ]
    echo_table(
        ["Time", "User", "Method", "Path", "Status", "Resource", "Client"],
        rows,
        no_wrap=["Time", "Method"],
    )
