"""Signing in and out of the web UI (mounted only when auth is on, ``ctx.auth is not None``).

* ``GET /login?next=<path>`` — the sign-in form;
* ``POST /login`` — a form post (``application/x-www-form-urlencoded``: ``username``,
  ``password``, ``next``). The password is checked by the auth layer (credential cache and
  brute-force limiter); on success a session starts, its secret goes into the
  ``runyard_session`` cookie (HttpOnly, SameSite=Lax, Secure on https) and the browser is sent
  on to ``next`` — only ever a path on this server, never an absolute URL (no open redirect).
  A post whose Origin (or Referer) names another host is refused: no site can sign a visitor
  into an account of its choosing (login CSRF);
* ``POST /logout`` — checks the session's CSRF token (form field ``csrf_token``), ends the
  session, clears the cookie and goes back to ``/login``;
* ``/account`` — :mod:`.account`.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.errors import RunyardError
from runyard.server.auth import SESSION_COOKIE, principal_of
from runyard.server.ui.render import error_page, prefix_of, render

if TYPE_CHECKING:
    from runyard.server.auth.layer import AuthLayer
    from runyard.server.context import ServerContext

__all__ = ["MAX_FORM_BYTES", "routes", "safe_next"]

#: A sign-in form is a few hundred bytes; anything much larger is not one.
MAX_FORM_BYTES = 16 * 1024
#: Where a sign-in without (a usable) ``next`` leads.
HOME = "/experiments"
_BAD_CREDENTIALS = "Invalid username or password."
_CROSS_SITE = (
    "This sign-in form was sent from another site. Open this server's sign-in page and "
    "sign in there."
)
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


def safe_next(raw: str | None, prefix: str = "") -> str:
    """The app-relative path a sign-in may lead to: ``raw`` when it is a plain path on this
    server (``/runs/abc?x=1#metrics``), else :data:`HOME`. Absolute and scheme-relative URLs
    (``https://evil``, ``//evil``, ``/\\evil``), control characters and the sign-in/out pages
    themselves are refused. A ``next`` that carries the ``--static-prefix`` has it removed."""
    if not raw or any(ord(c) < 0x20 or c in "\\\x7f" for c in raw):
        return HOME
    if not raw.startswith("/") or raw.startswith("//"):
        return HOME
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return HOME
    if prefix and (raw == prefix or raw.startswith(prefix + "/")):
        raw = raw[len(prefix) :] or "/"
        if raw.startswith("//"):
            return HOME
    if urlsplit(raw).path.rstrip("/") in ("/login", "/logout"):
        return HOME
    return raw


def _hosts(request: Request) -> set[str]:
    """The names this server is reached by on this request (Host, and a proxy's
    X-Forwarded-Host)."""
    hosts = {request.headers.get("host", "").lower()}
    forwarded = request.headers.get("x-forwarded-host", "")
    hosts.update(h.strip().lower() for h in forwarded.split(",") if h.strip())
    hosts.discard("")
    return hosts


def _cross_site(request: Request) -> bool:
    """Whether a form post came from another site: its Origin (or, without one, its Referer)
    names a host other than this server's, is opaque ("null"), or the browser says so."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return False  # not a browser that tells (curl, scripts): no cross-site risk to refuse
    if source.strip().lower() == "null":
        return True
    host = urlsplit(source.strip()).netloc.lower()
    return host not in _hosts(request)


async def _read_form(request: Request) -> dict[str, str] | None:
    """The url-encoded form of a post (None when it is too large or not a form)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            return None
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _login_page(
    request: Request,
    status: int = 200,
    *,
    next_path: str,
    username: str = "",
    error: str | None = None,
) -> Response:
    response = render(
        request,
        "auth/login.html",
        status=status,
        next=next_path,
        username=username,
        error=error,
    )
    response.headers.update(_HEADERS)
    return response


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _cookie_path(request: Request) -> str:
    return prefix_of(request) or "/"


def routes(ctx: ServerContext) -> list[BaseRoute]:
    """``/login``, ``/logout`` and ``/account``; none when auth is off."""
    if ctx.auth is None:
        return []
    from runyard.server.ui import account

    auth: AuthLayer = ctx.auth

    async def login_form(request: Request) -> Response:
        prefix = prefix_of(request)
        next_path = safe_next(request.query_params.get("next"), prefix)
        if principal_of(request) is not None:  # signed in already (a live session cookie)
            return RedirectResponse(prefix + next_path, status_code=303)
        return _login_page(request, next_path=next_path)

    async def login(request: Request) -> Response:
        prefix = prefix_of(request)
        form = await _read_form(request)
        if form is None:
            return _login_page(
                request, 400, next_path=HOME, error="Send the sign-in form (username, password)."
            )
        next_path = safe_next(form.get("next"), prefix)
        username = form.get("username", "").strip()
        if _cross_site(request):
            return _login_page(request, 403, next_path=next_path, error=_CROSS_SITE)
        password = form.get("password", "")
        if not username or not password:
            return _login_page(
                request, 401, next_path=next_path, username=username, error=_BAD_CREDENTIALS
            )
        try:
            user = await auth.login(username, password, _client_ip(request))
        except RunyardError as exc:
            status = exc.get_http_status_code()
            if status not in (401, 429):
                raise
            message = exc.message if status == 429 else _BAD_CREDENTIALS
            return _login_page(
                request, status, next_path=next_path, username=username, error=message
            )
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:  # signing in again (maybe as someone else): the old session ends
            auth.end_session(previous)
        secret, _csrf = auth.start_session(user)
        response = RedirectResponse(prefix + next_path, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            secret,
            max_age=auth.config.session_ttl_seconds,
            path=_cookie_path(request),
            secure=auth.cookie_secure(request),
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def logout(request: Request) -> Response:
        # The middleware let this post through with a session but leaves its CSRF token (a
        # form field here) to be checked by this page.
        principal = principal_of(request)
        secret = request.cookies.get(SESSION_COOKIE)
        if principal is not None and principal.via == "session" and secret:
            form = await _read_form(request) or {}
            given = form.get("csrf_token", "")
            if not principal.csrf or not hmac.compare_digest(given, principal.csrf):
                message = "Missing or wrong CSRF token: reload the page and log out again."
                return error_page(request, 403, "Permission denied", message)
            auth.end_session(secret)
        response = RedirectResponse(prefix_of(request) + "/login", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE,
            path=_cookie_path(request),
            secure=auth.cookie_secure(request),
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        *account.routes(ctx),
    ]
