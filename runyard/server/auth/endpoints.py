"""The auth management endpoints: MLflow's users and permissions API, runyard's tokens and audit.

MLflow's (``--app-name basic-auth``, spec §13): ``users/{create,get,current,list,update-password,
update-admin,delete}`` (2.0), ``users/permissions/{grant,revoke,get,list}`` and
``users/current/permissions`` (3.0), and the legacy per-resource ``experiments/permissions/*`` and
``registered-models/permissions/*`` (2.0) that older clients call. runyard's own, under
``/api/2.0/runyard``: ``tokens/{create,list,revoke}`` and ``audit``.

Who may call what (admin, self, MANAGE on the resource) is decided by the policy table before a
handler runs. The handlers do the data work and the rules that depend on the body: nobody deletes
their own account, changing one's own password needs the current one, and a non-admin handles only
their own tokens. Every mutation clears this process's credential and grant caches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

from runyard.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    RunyardError,
    Unauthenticated,
)
from runyard.protocol.requests import Field
from runyard.server.auth.authn import Principal
from runyard.server.auth.entities import Grant, User
from runyard.server.auth.permissions import Permission, check_resource_type
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint, check_max_results, page_response

if TYPE_CHECKING:
    from runyard.server.auth.layer import AuthLayer

__all__ = ["AUDIT_MAX_RESULTS", "ENDPOINTS"]

#: The most audit entries one ``audit`` call returns.
AUDIT_MAX_RESULTS = 10_000
_TAGS = ("auth",)

USERNAME = Field("username", required=True)
RESOURCE = (Field("resource_type", required=True), Field("resource_id", required=True))
EXPERIMENT_ID = Field("experiment_id", required=True)
MODEL_NAME = Field("name", required=True)


# -- helpers ----------------------------------------------------------------------------------
def _layer(ctx: ServerContext) -> AuthLayer:
    """The auth layer, or MLflow's answer when the server runs without ``basic-auth``."""
    layer: AuthLayer | None = ctx.auth
    if layer is None:
        raise RunyardError(
            "Authentication is not enabled on this server; start it with "
            "'runyard server --app-name basic-auth'.",
            error_code="ENDPOINT_NOT_FOUND",
        )
    return layer


def _caller(p: dict[str, Any]) -> Principal:
    """The authenticated caller the routing layer put in the parameters."""
    principal = p.get("_principal")
    if not isinstance(principal, Principal):
        raise PermissionDenied("Permission denied")
    return principal


def _user_json(user: User, grants: list[Grant] | None = None) -> dict[str, Any]:
    """MLflow's ``user`` object, with the permission arrays MLflow 2.x clients parse."""
    grants = grants or []
    return {
        **user.to_json(),
        "experiment_permissions": [
            _experiment_permission(g, user.id) for g in grants if g.resource_type == "experiment"
        ],
        "registered_model_permissions": [
            _model_permission(g, user.id) for g in grants if g.resource_type == "registered_model"
        ],
    }


def _experiment_permission(grant: Grant, user_id: int) -> dict[str, Any]:
    return {
        "experiment_id": grant.resource_id,
        "user_id": user_id,
        "permission": grant.permission.name,
    }


def _model_permission(grant: Grant, user_id: int) -> dict[str, Any]:
    return {"name": grant.resource_id, "user_id": user_id, "permission": grant.permission.name}


def _effective(layer: AuthLayer, user: User, resource_type: str, resource_id: str) -> Permission:
    """What a request of ``user`` on the resource is allowed: admins everything, else their
    grant, else the server's default permission."""
    if user.is_admin:
        return Permission.MANAGE
    found = layer.store.permission_of(user.id, resource_type, resource_id)
    return layer.config.default_permission if found is None else found


def _permission_rows(layer: AuthLayer, username: str) -> dict[str, Any]:
    """``users/permissions/list``: MLflow 3's rows (each grant as a one-user role)."""
    user = layer.store.get_user(username)
    rows = [
        {
            **grant.to_json(),
            "role_id": user.id,
            "role_name": f"__user_{user.id}__",
            "workspace": "default",
        }
        for grant in layer.store.list_grants(username)
    ]
    return {"is_admin": user.is_admin, "permissions": rows}


def _own_or_admin(principal: Principal, username: str | None, what: str) -> str:
    """The user a token call is about: the caller's own, or anyone's for an admin."""
    target = username or principal.username
    if target != principal.username and not principal.is_admin:
        raise PermissionDenied(f"Permission denied: only admins can {what} other users' tokens.")
    return target


# -- users (2.0) ------------------------------------------------------------------------------
async def create_user(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST users/create ``{username, password}`` → ``{"user": {...}}``."""
    layer = _layer(ctx)
    if not p["username"] or not p["password"]:
        raise InvalidParameterValue("Username and password cannot be empty.")
    user = await anyio.to_thread.run_sync(
        layer.store.create_user, p["username"], p["password"], bool(p["is_admin"])
    )
    layer.invalidate()
    return {"user": _user_json(user)}


async def get_user(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET users/get?username= → ``{"user": {...}}``."""
    store = _layer(ctx).store
    user = store.get_user(p["username"])
    return {"user": _user_json(user, store.list_grants(user.username))}


async def get_current_user(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET users/current → ``{"is_basic_auth": true, "user": {...}}``."""
    user = _layer(ctx).store.get_user(_caller(p).username)
    return {"is_basic_auth": True, "user": user.to_json()}


async def list_users(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET users/list → ``{"users": [{id, username, is_admin, roles}]}``."""
    users = _layer(ctx).store.list_users()
    return {"users": [{**user.to_json(), "roles": []} for user in users]}


async def update_user_password(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """PATCH users/update-password ``{username, password[, current_password]}``.

    As in MLflow, whoever changes their own password (admins too) proves the current one, so a
    stolen browser session cannot lock the owner out.
    """
    layer = _layer(ctx)
    username, password = p["username"], p["password"]
    if _caller(p).username == username:
        current = p["current_password"]
        if not current:
            raise InvalidParameterValue(
                "Current password is required when changing your own password."
            )
        try:  # through the limiter: a stolen session cannot guess the current password
            await layer.login(username, current, None)
        except Unauthenticated:
            raise InvalidParameterValue("Current password does not match.") from None
        if password == current:
            raise InvalidParameterValue("New password must differ from the current password.")
    await anyio.to_thread.run_sync(layer.store.update_password, username, password)
    layer.invalidate()
    return {}


async def update_user_admin(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """PATCH users/update-admin ``{username, is_admin}``."""
    layer = _layer(ctx)
    layer.store.set_admin(p["username"], p["is_admin"])
    layer.invalidate()
    return {}


async def delete_user(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """DELETE users/delete ``{username}``: with their grants, tokens and sessions."""
    layer = _layer(ctx)
    if p["username"] == _caller(p).username:
        raise RunyardError(
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
            error_code="BAD_REQUEST",
        )
    layer.store.delete_user(p["username"])
    layer.invalidate()
    return {}


# -- per-user permissions (3.0) ---------------------------------------------------------------
async def grant_user_permission(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST users/permissions/grant ``{username, resource_type, resource_id, permission}``."""
    layer = _layer(ctx)
    resource_type = check_resource_type(p["resource_type"])
    permission = Permission.parse(p["permission"])
    layer.store.grant(p["username"], resource_type, p["resource_id"], permission)
    layer.invalidate()
    return {}


async def revoke_user_permission(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST users/permissions/revoke ``{username, resource_type, resource_id}``."""
    layer = _layer(ctx)
    layer.store.revoke(p["username"], check_resource_type(p["resource_type"]), p["resource_id"])
    layer.invalidate()
    return {}


async def get_user_permission(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET users/permissions/get → ``{"allowed": <can_use>, "permission": "<NAME>"}``: the
    user's effective permission, as a request of theirs would be judged."""
    layer = _layer(ctx)
    resource_type = check_resource_type(p["resource_type"])
    user = layer.store.get_user(p["username"])
    permission = _effective(layer, user, resource_type, p["resource_id"])
    return {"allowed": permission.can_use, "permission": permission.name}


async def list_user_permissions(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET users/permissions/list?username= → ``{"is_admin", "permissions": [...]}``."""
    return _permission_rows(_layer(ctx), p["username"])


async def list_current_user_permissions(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET users/current/permissions: the caller's own grants."""
    return _permission_rows(_layer(ctx), _caller(p).username)


# -- legacy per-resource permissions (2.0) ----------------------------------------------------
class _Legacy:
    """MLflow 2.x's four verbs on one resource type (experiment by id, model by name)."""

    def __init__(self, resource_type: str, key: str, label: str, what: str) -> None:
        self.resource_type = resource_type
        self.key = key  # the body field naming the resource
        self.label = label  # the response object's name
        self.what = what  # how MLflow's messages name it

    def _json(self, grant: Grant, user_id: int) -> dict[str, Any]:
        return {self.label: {self.key: grant.resource_id, "user_id": user_id,
                             "permission": grant.permission.name}}  # fmt: skip

    def _existing(self, layer: AuthLayer, p: dict[str, Any]) -> Grant:
        grant = layer.store.get_grant(p["username"], self.resource_type, p[self.key])
        if grant is None:
            raise ResourceDoesNotExist(
                f"{self.what} permission with {self.key}={p[self.key]} and "
                f"username={p['username']} not found"
            )
        return grant

    async def create(self, ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
        """POST .../permissions/create: a new grant (RESOURCE_ALREADY_EXISTS if one exists)."""
        layer = _layer(ctx)
        permission = Permission.parse(p["permission"])
        user = layer.store.get_user(p["username"])
        if layer.store.get_grant(user.username, self.resource_type, p[self.key]) is not None:
            raise ResourceAlreadyExists(
                f"{self.what} permission ({self.key}={p[self.key]}, username={user.username}) "
                "already exists."
            )
        grant = layer.store.grant(user.username, self.resource_type, p[self.key], permission)
        layer.invalidate()
        return self._json(grant, user.id)

    async def get(self, ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
        """GET .../permissions/get: the grant, or RESOURCE_DOES_NOT_EXIST."""
        layer = _layer(ctx)
        user = layer.store.get_user(p["username"])
        return self._json(self._existing(layer, p), user.id)

    async def update(self, ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
        """PATCH .../permissions/update: change an existing grant."""
        layer = _layer(ctx)
        permission = Permission.parse(p["permission"])
        self._existing(layer, p)
        layer.store.grant(p["username"], self.resource_type, p[self.key], permission)
        layer.invalidate()
        return {}

    async def delete(self, ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
        """DELETE .../permissions/delete: remove an existing grant."""
        layer = _layer(ctx)
        self._existing(layer, p)
        layer.store.revoke(p["username"], self.resource_type, p[self.key])
        layer.invalidate()
        return {}

    def endpoints(self, prefix: str, key_field: Field) -> list[Endpoint]:
        """The four endpoints under ``prefix`` (``/experiments/permissions`` ...)."""
        permission = Field("permission", required=True)
        noun = self.what.lower()
        return [
            Endpoint(f"{prefix}/create", ("POST",), self.create,
                     (key_field, USERNAME, permission), f"Grant a user a {noun} permission",
                     tags=_TAGS),
            Endpoint(f"{prefix}/get", ("GET",), self.get, (key_field, USERNAME),
                     f"A user's {noun} permission", tags=_TAGS),
            Endpoint(f"{prefix}/update", ("PATCH",), self.update,
                     (key_field, USERNAME, permission), f"Change a user's {noun} permission",
                     tags=_TAGS),
            Endpoint(f"{prefix}/delete", ("DELETE",), self.delete, (key_field, USERNAME),
                     f"Remove a user's {noun} permission", tags=_TAGS),
        ]  # fmt: skip


EXPERIMENT_PERMISSIONS = _Legacy("experiment", "experiment_id", "experiment_permission",
                                 "Experiment")  # fmt: skip
MODEL_PERMISSIONS = _Legacy("registered_model", "name", "registered_model_permission",
                            "Registered model")  # fmt: skip


# -- tokens and audit (runyard) ---------------------------------------------------------------
async def create_token(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST tokens/create ``{name, expires_in_days?, username?}`` → the secret (shown once)
    and the token's description."""
    layer = _layer(ctx)
    username = _own_or_admin(_caller(p), p["username"], "create")
    config = layer.config
    days = config.token_default_days if p["expires_in_days"] is None else p["expires_in_days"]
    if not 0 < days <= config.token_max_days:
        raise InvalidParameterValue(
            f"expires_in_days must be more than 0 and at most {config.token_max_days} "
            f"(the server's token_max_days), got {days}."
        )
    secret, info = layer.store.create_token(username, p["name"] or "", days)
    layer.invalidate()
    return {"token": secret, "token_info": info.to_json()}


async def list_tokens(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET tokens/list?username= → ``{"tokens": [...]}`` (unrevoked; never the secrets)."""
    username = _own_or_admin(_caller(p), p["username"], "list")
    tokens = _layer(ctx).store.list_tokens(username)
    return {"tokens": [token.to_json() for token in tokens]}


async def revoke_token(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST tokens/revoke ``{token_id, username?}``: the token stops working at once."""
    layer = _layer(ctx)
    username = _own_or_admin(_caller(p), p["username"], "revoke")
    layer.store.revoke_token(username, p["token_id"])
    layer.invalidate()
    return {}


async def search_audit(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET audit?since=&until=&username=&max_results=&page_token= → ``{"entries": [...],
    "next_page_token"?}``, newest first (times in milliseconds since the epoch)."""
    layer = _layer(ctx)
    max_results = check_max_results(
        1000 if p["max_results"] is None else p["max_results"], AUDIT_MAX_RESULTS
    )
    if p["since"] is not None and p["until"] is not None and p["since"] > p["until"]:
        raise InvalidParameterValue("'since' must not be later than 'until'.")
    await anyio.to_thread.run_sync(layer.flush_audit)
    page = layer.store.search_audit(
        p["since"], p["until"], p["username"], max_results, p["page_token"]
    )
    out = page_response("entries", [entry.to_json() for entry in page], page.token)
    out.setdefault("entries", [])
    return out


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "/users/create",
        ("POST",),
        create_user,
        (Field("username"), Field("password"), Field("is_admin", "bool")),
        "Create a user (admins)",
        tags=_TAGS,
    ),
    Endpoint("/users/get", ("GET",), get_user, (USERNAME,), "Get a user", tags=_TAGS),
    Endpoint("/users/current", ("GET",), get_current_user, (), "The caller", tags=_TAGS),
    Endpoint("/users/list", ("GET",), list_users, (), "List users (admins)", tags=_TAGS),
    Endpoint(
        "/users/update-password",
        ("PATCH",),
        update_user_password,
        (USERNAME, Field("password", required=True), Field("current_password")),
        "Change a user's password",
        tags=_TAGS,
    ),
    Endpoint(
        "/users/update-admin",
        ("PATCH",),
        update_user_admin,
        (USERNAME, Field("is_admin", "bool", required=True)),
        "Make a user an admin, or not (admins)",
        tags=_TAGS,
    ),
    Endpoint("/users/delete", ("DELETE",), delete_user, (USERNAME,), "Delete a user", tags=_TAGS),
    Endpoint(
        "/users/permissions/grant",
        ("POST",),
        grant_user_permission,
        (USERNAME, *RESOURCE, Field("permission", required=True)),
        "Grant a user a permission on an experiment or registered model",
        major=3,
        tags=_TAGS,
    ),
    Endpoint(
        "/users/permissions/revoke",
        ("POST",),
        revoke_user_permission,
        (USERNAME, *RESOURCE),
        "Revoke a user's permission on a resource",
        major=3,
        tags=_TAGS,
    ),
    Endpoint(
        "/users/permissions/get",
        ("GET",),
        get_user_permission,
        (USERNAME, *RESOURCE),
        "A user's effective permission on a resource",
        major=3,
        tags=_TAGS,
    ),
    Endpoint(
        "/users/permissions/list",
        ("GET",),
        list_user_permissions,
        (USERNAME,),
        "A user's permission grants",
        major=3,
        tags=_TAGS,
    ),
    Endpoint(
        "/users/current/permissions",
        ("GET",),
        list_current_user_permissions,
        (),
        "The caller's permission grants",
        major=3,
        tags=_TAGS,
    ),
    *EXPERIMENT_PERMISSIONS.endpoints("/experiments/permissions", EXPERIMENT_ID),
    *MODEL_PERMISSIONS.endpoints("/registered-models/permissions", MODEL_NAME),
    Endpoint(
        "/tokens/create",
        ("POST",),
        create_token,
        (Field("name"), Field("expires_in_days", "double"), Field("username")),
        "Create a personal access token",
        namespace="runyard",
        tags=_TAGS,
    ),
    Endpoint(
        "/tokens/list",
        ("GET",),
        list_tokens,
        (Field("username"),),
        "List personal access tokens",
        namespace="runyard",
        tags=_TAGS,
    ),
    Endpoint(
        "/tokens/revoke",
        ("POST",),
        revoke_token,
        (Field("token_id", "int", required=True), Field("username")),
        "Revoke a personal access token",
        namespace="runyard",
        tags=_TAGS,
    ),
    Endpoint(
        "/audit",
        ("GET",),
        search_audit,
        (
            Field("since", "int"),
            Field("until", "int"),
            Field("username"),
            Field("max_results", "int"),
            Field("page_token"),
        ),
        "Search the audit log (admins)",
        namespace="runyard",
        tags=_TAGS,
    ),
]
