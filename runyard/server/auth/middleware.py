"""The ASGI middleware that authenticates every request when auth is on.

Public: ``/health``, ``/static-files/...``, ``/login``, ``/logout``, ``server-info``.
Everything else needs a credential: HTTP Basic or a bearer token (API clients), or the session
cookie (the UI). The principal goes to ``scope["state"]["principal"]``
(``request.state.principal``). A request authenticated by its session cookie that changes
something must carry the session's CSRF token in ``X-CSRF-Token`` (``/login`` and ``/logout``
check their form field themselves).
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from runyard.errors import RunyardError
from runyard.server.auth.layer import AuthLayer

__all__ = ["SESSION_COOKIE", "AuthMiddleware"]

SESSION_COOKIE = "runyard_session"
_PUBLIC_EXACT = {"/health", "/login", "/logout", "/favicon.ico", "/api/3.0/mlflow/server-info",
                 "/ajax-api/3.0/mlflow/server-info"}  # fmt: skip
_PUBLIC_PREFIXES = ("/static-files/",)
_SELF_CHECKED = {"/login", "/logout"}
_API_PREFIXES = ("/api/", "/ajax-api/", "/get-artifact", "/model-versions/", "/openapi.json",
                 "/version")  # fmt: skip
_SAFE = {"GET", "HEAD", "OPTIONS"}
_NOT_AUTHENTICATED = (
    "You are not authenticated. Send HTTP Basic credentials (MLFLOW_TRACKING_USERNAME and "
    "MLFLOW_TRACKING_PASSWORD) or a token (MLFLOW_TRACKING_TOKEN)."
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _csrf_ok(scope: Scope, expected: str | None) -> bool:
    """Whether the request carries the session's CSRF token (compared in constant time)."""
    given = (_header(scope, b"x-csrf-token") or "").encode("latin-1")
    return hmac.compare_digest(given, (expected or "\0").encode())


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 - a malformed Cookie header is no session
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


class AuthMiddleware:
    """Authenticates each HTTP request; answers 401/403/429 itself."""

    def __init__(self, app: ASGIApp, layer: AuthLayer, prefix: str = "") -> None:
        self.app = app
        self.layer = layer
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix) :] or "/"
        state = scope.setdefault("state", {})
        state["principal"] = None
        if path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PREFIXES):
            if path in _SELF_CHECKED:
                state["principal"] = self._session_principal(scope)
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        client_ip = client[0] if client else None
        header = _header(scope, b"authorization")
        stale_session = False
        try:
            if header:
                principal = await self.layer.authenticate_header(header, client_ip)
            else:
                principal = self._session_principal(scope)
                stale_session = principal is None and _cookie(scope, SESSION_COOKIE) is not None
        except RunyardError as exc:
            await self._refuse(scope, send, exc.get_http_status_code(), exc.error_code,
                               exc.message, path)  # fmt: skip
            return
        if principal is None:
            await self._unauthenticated(scope, send, path, basic_challenge=not stale_session)
            return
        if (
            principal.via == "session"
            and scope["method"] not in _SAFE
            and path not in _SELF_CHECKED
            and not _csrf_ok(scope, principal.csrf)
        ):
            await self._refuse(scope, send, 403, "PERMISSION_DENIED",
                               "Missing or wrong CSRF token (X-CSRF-Token).", path)  # fmt: skip
            return
        state["principal"] = principal
        await self.app(scope, receive, send)

    def _session_principal(self, scope: Scope) -> Any:
        secret = _cookie(scope, SESSION_COOKIE)
        return self.layer.authenticate_session(secret) if secret else None

    async def _unauthenticated(
        self, scope: Scope, send: Send, path: str, basic_challenge: bool
    ) -> None:
        accept = _header(scope, b"accept") or ""
        is_page = not path.startswith(_API_PREFIXES) and "text/html" in accept
        if scope["method"] in ("GET", "HEAD") and is_page:
            target = path + ("?" + scope["query_string"].decode("latin-1")
                             if scope.get("query_string") else "")  # fmt: skip
            location = f"{self.prefix}/login?next={quote(target, safe='')}"
            await _send(send, 303, b"", [(b"location", location.encode("latin-1"))])
            return
        extra = [(b"www-authenticate", b'Basic realm="mlflow"')] if basic_challenge else []
        await self._refuse(scope, send, 401, "UNAUTHENTICATED", _NOT_AUTHENTICATED, path, extra)

    @staticmethod
    async def _refuse(
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        message: str,
        path: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [(b"content-type", b"application/json"), *(extra or [])]
        if status == 429:
            headers.append((b"retry-after", b"60"))
        body = orjson.dumps({"error_code": code, "message": message})
        await _send(send, status, body, headers)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
