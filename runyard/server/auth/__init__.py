"""Authentication, permissions and audit (``runyard server --app-name basic-auth``).

* :mod:`.store` — users (Argon2id), grants, tokens, sessions, the audit log (schema 0003_auth);
* :mod:`.authn` — credentials → users, through caches and a brute-force limiter;
* :mod:`.policy` — THE table from endpoint to required permission;
* :mod:`.layer` — :class:`AuthLayer`: applies the table, answers ``can``, writes the audit log;
* :mod:`.middleware` — authenticates every request; 401 / login redirect / CSRF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from runyard.server.auth.middleware import SESSION_COOKIE

if TYPE_CHECKING:
    from runyard.server.auth.authn import Principal

__all__ = ["APP_NAME", "SESSION_COOKIE", "principal_of"]

#: ``--app-name`` value that turns auth on (MLflow's).
APP_NAME = "basic-auth"


def principal_of(request: Request) -> Principal | None:
    """The authenticated caller of a request; None with auth off or on a public path."""
    state: Any = request.scope.get("state") or {}
    return state.get("principal")  # type: ignore[no-any-return]
