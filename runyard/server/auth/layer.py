"""The auth layer of one server process: who is calling, and may they do this.

:class:`AuthLayer` holds the auth store, the credential caches, the permission caches and the
audit writer. The middleware (:mod:`.middleware`) asks it who is calling; the routing layer
asks it to apply an endpoint's rule from :mod:`.policy` (``begin`` → :class:`Access`) and to
record writes in the audit log; the artifact proxy and the UI pages ask ``can``.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from runyard.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceDoesNotExist,
    RunyardError,
    Unauthenticated,
)
from runyard.server.auth.audit import AuditWriter
from runyard.server.auth.authn import CredentialChecker, Principal, parse_authorization
from runyard.server.auth.cache import ExpiringDict
from runyard.server.auth.config import AuthConfig
from runyard.server.auth.entities import AuditEntry, User
from runyard.server.auth.permissions import Permission
from runyard.server.auth.policy import Rule, rule_for
from runyard.server.auth.store import AuthStore

if TYPE_CHECKING:
    from runyard.server.context import ServerContext
    from runyard.server.routing import Endpoint

__all__ = ["Access", "AuthLayer"]

Handler = Callable[["ServerContext", dict[str, Any]], Awaitable[Any]]
_DENIED = "Permission denied"
#: Which resource type a resolver's resource is checked as.
_CHECKED_AS = {"run": "experiment", "runs": "experiment", "logged_model": "experiment",
               "experiments": "experiment", "experiment_name": "experiment"}  # fmt: skip
_AUDIT_TYPE = {"registered_model_create": "registered_model"}
_DEFAULT_PARAM = {
    "experiment": "experiment_id", "experiments": "experiment_ids", "run": "run_id",
    "runs": "run_ids", "logged_model": "model_id", "registered_model": "name",
    "registered_model_create": "name", "experiment_name": "experiment_name",
}  # fmt: skip


def _is_write(rule: Rule | None, method: str) -> bool:
    """Audited: every request that can change something (a POST search is a read)."""
    if method in ("GET", "HEAD"):
        return False
    if rule is None:
        return True
    return not (
        rule.kind in ("narrow", "filter") or (rule.kind == "resource" and rule.need == "read")
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Access:
    """An authorised call of one endpoint: runs it, then applies the rule's after-effects."""

    layer: AuthLayer
    principal: Principal
    rule: Rule
    #: What the audit log names: (resource type, id) as the caller gave it.
    resource: tuple[str, str] | None = None
    #: Whether the call changes something (and so goes to the audit log).
    write: bool = True
    created: bool = False

    async def call(self, handler: Handler, ctx: ServerContext, params: dict[str, Any]) -> Any:
        """Run the handler under the rule (narrowed or filtered searches), then the after-hook."""
        rule = self.rule
        if rule.kind == "narrow":
            asked = [str(i) for i in params.get(rule.param) or []]
            allowed = self.layer.filter_readable(self.principal, "experiment", asked)
            if asked and not allowed:
                return {}
            params[rule.param] = allowed
            return await handler(ctx, params)
        if rule.kind == "filter":
            return await self._filtered(handler, ctx, params)
        result = await handler(ctx, params)
        if self.write or rule.after:  # reads have nothing to record or grant
            self._after(params, result)
        return result

    async def _filtered(self, handler: Handler, ctx: ServerContext, params: dict[str, Any]) -> Any:
        """A search page with unreadable items dropped, refilled from the following pages.

        Each follow-up page is asked for exactly the number of items still missing, so every
        item of it can be kept and its page token stays exact.
        """
        rule = self.rule
        result = await handler(ctx, params)
        if self.principal.is_admin or not isinstance(result, dict):
            return result
        items = result.get(rule.items, [])
        token = result.get("next_page_token")
        size = len(items)
        kept = self._readable_items(items)
        while token and len(kept) < size:
            more = await handler(ctx, {**params, "max_results": size - len(kept),
                                       "page_token": token})  # fmt: skip
            kept += self._readable_items(more.get(rule.items, []))
            token = more.get("next_page_token")
        out = {k: v for k, v in result.items() if k not in (rule.items, "next_page_token")}
        if kept:
            out[rule.items] = kept
        if token:
            out["next_page_token"] = token
        return out

    def _readable_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rule = self.rule
        ids = [str(item.get(rule.item_id)) for item in items]
        allowed = set(self.layer.filter_readable(self.principal, rule.item_type, ids))
        return [item for item, i in zip(items, ids, strict=True) if i in allowed]

    def _after(self, params: dict[str, Any], result: Any) -> None:
        layer, rule = self.layer, self.rule
        doc = result if isinstance(result, dict) else {}
        if "run" in doc and isinstance(doc["run"], dict):
            self.resource = ("run", str(doc["run"].get("info", {}).get("run_id")))
        if rule.after == "grant_experiment" and doc.get("experiment_id"):
            exp_id = str(doc["experiment_id"])
            self.resource = ("experiment", exp_id)
            layer.grant_creator("experiment", exp_id, self.principal)
        elif rule.after == "grant_model" and (self.created or rule.res == ""):
            name = str(params.get("name"))
            self.resource = ("registered_model", name)
            layer.grant_creator("registered_model", name, self.principal)
        elif rule.after == "move_model" and params.get("new_name"):
            layer.store.move_grants(
                "registered_model", str(params["name"]), str(params["new_name"])
            )
            layer.invalidate()
        elif rule.after == "drop_model":
            layer.store.drop_grants("registered_model", str(params["name"]))
            layer.invalidate()


class AuthLayer:
    """Authentication, authorisation and audit for one server process."""

    def __init__(
        self,
        store: AuthStore,
        tracking: Any,
        registry: Any,
        config: AuthConfig,
        secret: bytes | None = None,
    ):
        self.store = store
        self.config = config
        self._tracking = tracking
        self._registry = registry
        # The key of the credential-cache digests: given (an environment variable every worker
        # shares), else the one generated once and kept in the auth database.
        self.credentials = CredentialChecker(store, config, secret or store.secret_key())
        ttl, size = config.cache_ttl_seconds, config.cache_max_size
        #: Authorization header digest → principal: a repeated credential costs one HMAC.
        self._by_header: ExpiringDict[bytes, Principal] = ExpiringDict(ttl, size)
        self._grants: ExpiringDict[tuple[int, str], dict[str, Permission]] = ExpiringDict(ttl, size)
        # Runs and logged models never move between experiments: kept until the map is full.
        self._owner: ExpiringDict[tuple[str, str], str] = ExpiringDict(float("inf"), 100_000)
        self.audit_writer = AuditWriter(store)

    # -- set-up -------------------------------------------------------------------------------

    def bootstrap_admin(self) -> User | None:
        """Create the configured admin on a database without users; refuse to run without
        the password for it. Returns the user created (None when users exist)."""
        if self.store.count_users():
            return None
        if not self.config.admin_password:
            raise InvalidParameterValue(
                "Authentication is on (--app-name basic-auth) but no users exist and no admin "
                "password is set. Set RUNYARD_AUTH_ADMIN_PASSWORD (or MLFLOW_AUTH_ADMIN_PASSWORD, "
                "or admin_password in the file named by RUNYARD_AUTH_CONFIG_PATH) and start "
                "again; RUNYARD_AUTH_ADMIN_USERNAME names the admin (default: admin)."
            )
        try:
            return self.store.create_user(
                self.config.admin_username, self.config.admin_password, is_admin=True
            )
        except RunyardError as exc:
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":  # another worker made it first
                return None
            raise

    def close(self) -> None:
        """Write the pending audit entries (server shutdown)."""
        self.audit_writer.close()

    # -- who is calling -----------------------------------------------------------------------

    async def authenticate_header(self, header: str, client_ip: str | None) -> Principal:
        """The principal of an Authorization header (Basic or Bearer), or Unauthenticated."""
        key = self.credentials.key(b"header", header)
        found = self._by_header.get(key)
        if isinstance(found, Principal):
            return found
        principal = await self._authenticate_header(header, client_ip)
        self._by_header.put(key, principal)
        return principal

    async def _authenticate_header(self, header: str, client_ip: str | None) -> Principal:
        parsed = parse_authorization(header)
        if parsed is None:
            raise Unauthenticated("Unsupported or malformed Authorization header.")
        scheme, name, secret = parsed
        if scheme == "bearer":
            return Principal(await self.credentials.token(name), "token")
        try:
            user = await self.credentials.password(name, secret, client_ip)
        except Unauthenticated:
            self.record_login_failure(name, client_ip)
            raise
        return Principal(user, "basic")

    def authenticate_session(self, secret: str) -> Principal | None:
        """The principal of a session cookie, None when the session is unknown or expired."""
        found = self.credentials.session(secret)
        if found is None:
            return None
        user, csrf = found
        return Principal(user, "session", csrf)

    async def login(self, username: str, password: str, client_ip: str | None) -> User:
        """Check a name and password (login page): the caches and the limiter apply."""
        try:
            return await self.credentials.password(username, password, client_ip)
        except Unauthenticated:
            self.record_login_failure(username, client_ip)
            raise

    def start_session(self, user: User) -> tuple[str, str]:
        """A new browser session: (cookie secret, CSRF token)."""
        return self.store.create_session(user.id, self.config.session_ttl_seconds)

    def end_session(self, secret: str) -> None:
        """Log out: the session is gone here at once, elsewhere within the cache TTL."""
        self.store.delete_session(secret)
        self.invalidate()

    def cookie_secure(self, request: Request) -> bool:
        """Whether cookies get the Secure flag (configured, else when the request is https)."""
        if self.config.secure_cookies is not None:
            return self.config.secure_cookies
        return request.url.scheme == "https"

    def invalidate(self) -> None:
        """Forget cached credentials and grants (after any user, grant or token change)."""
        self.credentials.clear()
        self._by_header.clear()
        self._grants.clear()

    # -- may they -----------------------------------------------------------------------------

    def _grants_of(self, user_id: int, resource_type: str) -> dict[str, Permission]:
        key = (user_id, resource_type)
        found = self._grants.get(key)
        if isinstance(found, dict):
            return found
        grants = self.store.grants_on(user_id, resource_type)
        self._grants.put(key, grants)
        return grants

    def permission(self, principal: Principal, resource_type: str, resource_id: str) -> Permission:
        """The caller's permission on a resource: their grant, else the default."""
        grants = self._grants_of(principal.user.id, resource_type)
        return grants.get(str(resource_id), self.config.default_permission)

    def can(
        self, principal: Principal | None, resource_type: str, resource_id: str, need: str
    ) -> bool:
        """Whether the caller has ``need`` on the resource (admins: always)."""
        if principal is None:
            return False
        if principal.is_admin:
            return True
        return self.permission(principal, resource_type, resource_id).allows(need)

    def filter_readable(
        self, principal: Principal, resource_type: str, ids: list[str]
    ) -> list[str]:
        """The ids (in order) of the resources the caller may read."""
        if principal.is_admin:
            return list(ids)
        grants = self._grants_of(principal.user.id, resource_type)
        default = self.config.default_permission
        return [i for i in ids if grants.get(str(i), default).can_read]

    def grant_creator(self, resource_type: str, resource_id: str, principal: Principal) -> None:
        """The creator of an experiment or registered model manages it."""
        self.store.grant(principal.username, resource_type, resource_id, Permission.MANAGE)
        self._grants.pop((principal.user.id, resource_type))

    def experiment_of_run(self, run_id: str) -> str | None:
        """The experiment a run belongs to (cached for good: runs never move)."""
        return self._owner_of("run", run_id, self._tracking.experiment_id_of_run)

    def experiment_of_logged_model(self, model_id: str) -> str | None:
        """The experiment a logged model belongs to."""
        return self._owner_of(
            "logged_model", model_id, self._tracking.experiment_id_of_logged_model
        )

    def _owner_of(self, kind: str, key: str, find: Callable[[str], str | None]) -> str | None:
        found = self._owner.get((kind, key))
        if isinstance(found, str):
            return found
        owner = find(key)
        if owner is not None:
            self._owner.put((kind, key), owner)
        return owner

    # -- endpoint rules -----------------------------------------------------------------------

    def rules_of(self, endpoint: Endpoint) -> dict[str, tuple[Rule, bool]]:
        """The rule of each method of ``endpoint`` and whether a call is audited (looked up
        once, when the route is built). Every endpoint has a rule (a test checks); one missing
        is refused — admins only — never waved through."""
        out = {}
        for method in endpoint.methods:
            rule = rule_for(endpoint.namespace, endpoint.major, endpoint.path, method)
            out[method] = (rule or Rule("admin"), _is_write(rule, method))
        return out

    def prepare(self, principal: Principal, rule: tuple[Rule, bool]) -> Access:
        """The access of one call under ``rule`` (from :meth:`rules_of`); ``check`` decides."""
        return Access(self, principal, rule[0], write=rule[1])

    def check(self, access: Access, params: dict[str, Any]) -> None:
        """Apply the rule before the handler runs: PermissionDenied when the caller may not."""
        rule, principal = access.rule, access.principal
        kind = rule.kind
        if params.get("username"):
            access.resource = ("user", str(params["username"]))
        if kind == "admin" and not principal.is_admin:
            raise PermissionDenied(_DENIED)
        if kind == "self_or_admin":
            asked = params.get("username")
            if asked and asked != principal.username and not principal.is_admin:
                raise PermissionDenied(_DENIED)
        if kind == "resource":
            self._check_resource(access, rule, params)

    def _check_resource(self, access: Access, rule: Rule, params: dict[str, Any]) -> None:
        principal = access.principal
        res = rule.res
        param = rule.param or _DEFAULT_PARAM.get(res, "")
        if res == "grant_target":
            rtype = str(params.get("resource_type") or "")
            rid = str(params.get("resource_id") or "")
            access.resource = (rtype, rid)
            if not self.can(principal, rtype, rid, rule.need):
                raise PermissionDenied(_DENIED)
            return
        value = params.get(param)
        if res in ("experiments", "runs"):
            ids = [str(v) for v in value or []]
            for one in ids:
                exp_id = one if res == "experiments" else self.experiment_of_run(one)
                if exp_id is not None and not self.can(principal, "experiment", exp_id, rule.need):
                    raise PermissionDenied(_DENIED)
            return
        if res == "experiment" and not value:
            value = "0"  # runs/create and logged-models without an id use the default experiment
        if value is None or value == "":
            return  # the handler reports the missing parameter
        key = str(value)
        access.resource = (_AUDIT_TYPE.get(res, res), key)
        if res == "registered_model_create":
            if not self._model_exists(key):
                access.created = True
                return
            target: tuple[str, str | None] = ("registered_model", key)
        elif res == "run":
            target = ("experiment", self.experiment_of_run(key))
        elif res == "logged_model":
            target = ("experiment", self.experiment_of_logged_model(key))
        elif res == "experiment_name":
            exp = self._tracking.get_experiment_by_name(key)
            target = ("experiment", None if exp is None else str(exp.experiment_id))
        else:
            target = (_CHECKED_AS.get(res, res), key)
        if target[1] is None:
            return  # unknown run/model/name: the handler answers RESOURCE_DOES_NOT_EXIST
        if not self.can(principal, target[0], target[1], rule.need):
            raise PermissionDenied(_DENIED)

    def _model_exists(self, name: str) -> bool:
        try:
            self._registry.get_registered_model(name)
        except ResourceDoesNotExist:
            return False
        return True

    # -- artifacts ----------------------------------------------------------------------------

    def check_artifact_path(self, principal: Principal, method: str, path: str) -> str | None:
        """Access to ``mlflow-artifacts:/<path>``: the first segment is the owning experiment
        (``<experiment_id>/<run_id>/artifacts/...``, ``<experiment_id>/models/...``). Paths
        outside an experiment are for admins only. Returns the experiment id."""
        need = {"GET": "read", "HEAD": "read", "PUT": "update", "POST": "update"}.get(
            method, "delete"
        )
        first = posixpath.normpath(path.lstrip("/")).split("/")[0] if path else ""
        if not first.isdigit() or self._tracking_experiment_missing(first):
            if principal.is_admin:
                return None
            raise PermissionDenied(_DENIED)
        if not self.can(principal, "experiment", first, need):
            raise PermissionDenied(_DENIED)
        return first

    def _tracking_experiment_missing(self, exp_id: str) -> bool:
        try:
            self._tracking.get_experiment(exp_id)
        except ResourceDoesNotExist:
            return True
        return False

    def check_run(self, principal: Principal, run_id: str, need: str) -> None:
        """PermissionDenied unless the caller has ``need`` on the run's experiment."""
        exp_id = self.experiment_of_run(run_id)
        if exp_id is not None and not self.can(principal, "experiment", exp_id, need):
            raise PermissionDenied(_DENIED)

    # -- audit --------------------------------------------------------------------------------

    def record(
        self,
        request: Request,
        principal: Principal | None,
        endpoint: str,
        status: int,
        resource: tuple[str, str] | None = None,
        error_code: str | None = None,
    ) -> None:
        """Queue an audit entry for a write request."""
        client = request.client.host if request.client else None
        self.audit_writer.add(
            AuditEntry(
                timestamp=_now_ms(),
                username=principal.username if principal else None,
                method=request.method,
                path=request.url.path,
                endpoint=endpoint,
                status=status,
                resource_type=resource[0] if resource else None,
                resource_id=resource[1] if resource else None,
                error_code=error_code,
                client_ip=client,
            )
        )

    def record_login_failure(self, username: str, client_ip: str | None) -> None:
        """A wrong password is audited (the limiter bounds how many)."""
        self.audit_writer.add(
            AuditEntry(
                timestamp=_now_ms(),
                username=username,
                method="AUTH",
                path="",
                endpoint="login",
                status=401,
                error_code="UNAUTHENTICATED",
                client_ip=client_ip,
            )  # fmt: skip
        )

    def flush_audit(self) -> None:
        """Write queued audit entries now."""
        self.audit_writer.flush()
