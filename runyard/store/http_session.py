"""The HTTP plumbing shared by the REST tracking store and the proxied artifact repository.

One :class:`HttpSession` wraps one pooled ``httpx.Client`` (HTTP/1.1, keep-alive) with what every
call to a tracking server needs: the ``User-Agent``, Basic or Bearer auth, TLS settings, a timeout,
retries with exponential backoff and jitter, and the translation of error responses into runyard's
exception classes (MLflow's JSON error bodies keep their code; other bodies map by status).

Retry policy (``RUNYARD_HTTP_REQUEST_MAX_RETRIES``, ``..._BACKOFF_FACTOR``):

* idempotent requests (GET, PUT of a whole file, DELETE, and POSTs the caller marks as safe to
  repeat) are retried on any transport error and on 429, 500, 502, 503 and 504;
* other requests are retried only when the server cannot have acted on them: a connection that
  failed before the request was sent, and 429/503 answers (the server refused the request);
* a ``Retry-After`` header sets the wait; otherwise ``factor * 2**attempt`` plus jitter, capped.
"""

from __future__ import annotations

import atexit
import email.utils
import functools
import os
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, Any

import httpx
import orjson

from runyard.config import ENV
from runyard.errors import RunyardError, error_from_code
from runyard.version import __version__

__all__ = [
    "RETRY_STATUSES",
    "HttpConfig",
    "HttpSession",
    "error_from_response",
    "shared_session",
]

#: Statuses worth another try: rate limiting, and server or gateway trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# 429 and 503 mean the server refused the request without acting on it, so even a request
# that must not run twice (create a run) may be sent again.
_REFUSED_STATUSES = frozenset({429, 503})
_MAX_WAIT = 120.0
_CHUNK = 1024 * 1024

# Non-JSON error bodies (a proxy's HTML page, a plain-text 503) map to a code by status. MLflow's
# client maps 400/401/403/404/500; 429/503/504 also get their own codes here so that the
# background writer sees them as temporary and keeps the values queued.
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

Content = bytes | IO[bytes] | Iterable[bytes]


@dataclass(frozen=True)
class HttpConfig:
    """Connection settings for a tracking server, normally read from the environment."""

    max_retries: int = 7
    backoff_factor: float = 2.0
    backoff_jitter: float = 1.0
    timeout: float = 120.0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    insecure_tls: bool = False
    server_cert_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpConfig:
        """Settings from ``RUNYARD_*`` / ``MLFLOW_*`` variables (see ``docs/environment.md``)."""
        factor = max(0.0, ENV.HTTP_REQUEST_BACKOFF_FACTOR.get(environ))
        return cls(
            max_retries=max(0, ENV.HTTP_REQUEST_MAX_RETRIES.get(environ)),
            backoff_factor=factor,
            # Jitter spreads the retries of many clients after an outage; never more than the
            # factor itself, so a factor of 0 (tests) means no waiting at all.
            backoff_jitter=min(1.0, factor),
            timeout=ENV.HTTP_REQUEST_TIMEOUT.get(environ),
            username=ENV.TRACKING_USERNAME.get(environ),
            password=ENV.TRACKING_PASSWORD.get(environ),
            token=ENV.TRACKING_TOKEN.get(environ),
            insecure_tls=ENV.TRACKING_INSECURE_TLS.get(environ),
            server_cert_path=ENV.TRACKING_SERVER_CERT_PATH.get(environ),
        )

    def auth(self) -> httpx.Auth | None:
        """Basic auth when a user name is set, else a Bearer token, else nothing."""
        if self.username:
            return httpx.BasicAuth(self.username, self.password or "")
        if self.token:
            return _BearerAuth(self.token)
        return None

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should verify server certificates with: one context per process and
        settings, shared by every session (loading the CA bundle costs ~25 ms; the background
        writer opens a session of its own when a run ends)."""
        if self.insecure_tls:
            return False
        return _ssl_context(
            self.server_cert_path, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
        )


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None, env_file: str | None, env_dir: str | None) -> ssl.SSLContext:
    """A verifying client context: ``cafile``, else httpx's default (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set, else certifi's bundle); the environment is part of the key."""
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    return httpx.create_ssl_context()


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def error_from_response(response: httpx.Response) -> RunyardError:
    """The runyard error an error response stands for (the body must have been read)."""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error_code"), str):
        return error_from_code(body["error_code"], str(body.get("message", "")))
    status = response.status_code
    code = _STATUS_CODES.get(status, "INTERNAL_ERROR")
    request = response.request
    message = f"HTTP {status} {response.reason_phrase} from {request.method} {request.url.path}"
    snippet = _snippet(response)
    return error_from_code(code, f"{message}: {snippet}" if snippet else message)


def _snippet(response: httpx.Response) -> str:
    if "html" in response.headers.get("content-type", ""):
        return ""  # an HTML error page says nothing the status does not
    text = " ".join(response.text.split())
    return text if len(text) <= 200 else text[:200] + "..."


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _sent_nothing(exc: httpx.TransportError) -> bool:
    """True when the request never left this process, so the server cannot have seen it."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _transport_error(exc: httpx.RequestError, request: httpx.Request) -> RunyardError:
    url = request.url
    # Scheme, host and path only: no credentials from the URL, no query string.
    where = f"{request.method} {url.scheme}://{url.netloc.decode('ascii')}{url.path}"
    if isinstance(exc, httpx.TimeoutException):
        code = "DEADLINE_EXCEEDED"
    elif isinstance(exc, httpx.TransportError):
        code = "TEMPORARILY_UNAVAILABLE"
    else:  # an undecodable body or a redirect loop: retrying later will not help
        code = "INTERNAL_ERROR"
    # DEADLINE_EXCEEDED and TEMPORARILY_UNAVAILABLE are "try again later" to the background
    # writer, which keeps the values queued for the next flush.
    return RunyardError(f"HTTP request failed ({type(exc).__name__} on {where}): {exc}", code)


class HttpSession:
    """A pooled HTTP client for one server base URL, with retries and error translation.

    Args:
        base_url: every relative path is resolved against it (its path prefix is kept).
        config: connection settings; default from the environment.
        transport: an httpx transport to use instead of the network (tests).
        sleep: how to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str,
        config: HttpConfig | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or HttpConfig.from_env()
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": f"runyard/{__version__}"},
            auth=self.config.auth(),
            timeout=httpx.Timeout(self.config.timeout),
            # Expire idle connections before common servers do (uvicorn drops them after 5 s),
            # so a request rarely lands on a socket the server is closing.
            limits=httpx.Limits(max_connections=64, keepalive_expiry=4.0),
            verify=self.config.verify(),
            transport=transport,
            follow_redirects=True,
        )

    @property
    def base_url(self) -> httpx.URL:
        """The URL relative paths are resolved against."""
        return self._client.base_url

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    # -- JSON calls --------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """Send a JSON request and return the JSON object answered (``{}`` for an empty body)."""
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        response = self.send(
            method, path, params=params, content=content, headers=headers, idempotent=idempotent
        )
        if not response.content:
            return {}
        try:
            doc = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            raise RunyardError(
                f"The server answered {method} {response.request.url.path} with a body that is "
                f"not a JSON object: {_snippet(response) or '(binary)'}"
            )
        return doc

    # -- raw requests ------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: Content | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request with retries; raise the matching runyard error on an error status.

        ``idempotent`` defaults to True for GET, HEAD, PUT and DELETE. A body that is a
        seekable file is rewound before each try; a body that is a one-shot iterator makes
        the request non-idempotent, since it cannot be sent twice. With ``stream`` the body
        is not read: use the response as a context manager.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        rewind = _rewinder(content)
        if rewind is None:
            idempotent = False
        attempt = 0
        while True:
            if attempt and rewind is not None:
                rewind()
            request = self._client.build_request(
                method, path, params=params, content=content, headers=headers
            )
            try:
                response = self._client.send(request, stream=stream)
            except httpx.RequestError as exc:
                if self._may_retry(exc, attempt, idempotent):
                    self._sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise _transport_error(exc, request) from exc
            wait = self._retry_wait(response, attempt, idempotent, rewind is not None)
            if wait is None:
                return _checked(response)
            response.close()
            self._sleep(wait)
            attempt += 1

    def _may_retry(self, exc: httpx.RequestError, attempt: int, idempotent: bool) -> bool:
        """Whether a request that failed without a response may be sent again."""
        if attempt >= self.config.max_retries or not isinstance(exc, httpx.TransportError):
            return False
        return idempotent or _sent_nothing(exc)

    def _retry_wait(
        self, response: httpx.Response, attempt: int, idempotent: bool, replayable: bool
    ) -> float | None:
        """Seconds to wait before trying again, or None to keep this response."""
        status = response.status_code
        if status not in RETRY_STATUSES or attempt >= self.config.max_retries:
            return None
        if not (idempotent or (replayable and status in _REFUSED_STATUSES)):
            return None
        asked = _retry_after(response)
        if asked is not None:
            return min(asked, _MAX_WAIT)
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        base = min(_MAX_WAIT, self.config.backoff_factor * (2.0**attempt))
        return base + random.uniform(0.0, self.config.backoff_jitter)

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """``send(..., stream=True)`` as a context manager that closes the response."""
        response = self.send(method, path, stream=True, **kwargs)
        try:
            yield response
        finally:
            response.close()

    def iter_bytes(self, path: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """Stream a GET's body in chunks; a broken transfer raises a runyard error."""
        with self.stream("GET", path) as response:
            try:
                yield from response.iter_bytes(chunk_size)
            except httpx.RequestError as exc:
                raise _transport_error(exc, response.request) from exc

    def download(self, path: str, dest: str) -> None:
        """Stream a GET into ``dest`` (written whole or not at all), retrying broken transfers."""
        directory = os.path.dirname(os.path.abspath(dest))
        os.makedirs(directory, exist_ok=True)
        attempt = 0
        while True:
            # A sibling temp name opened with "xb": normal permissions, and a reader of
            # ``dest`` never sees half a file.
            tmp = os.path.join(directory, f".{os.path.basename(dest)}.{secrets.token_hex(4)}.part")
            try:
                with open(tmp, "xb") as handle, self.stream("GET", path) as response:
                    for chunk in response.iter_bytes(_CHUNK):
                        handle.write(chunk)
                os.replace(tmp, dest)
                return
            except httpx.RequestError as exc:
                # The connection broke mid-body: a GET can simply start over.
                _remove(tmp)
                if not self._may_retry(exc, attempt, True):
                    request = httpx.Request("GET", self.base_url.join(path))
                    raise _transport_error(exc, request) from exc
                self._sleep(self._backoff(attempt))
                attempt += 1
            except BaseException:
                _remove(tmp)
                raise


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    try:
        response.read()
    finally:
        response.close()
    raise error_from_response(response)


def _rewinder(content: Content | None) -> Callable[[], None] | None:
    """How to replay ``content`` for another try, or None when it can be sent only once."""
    if content is None or isinstance(content, (bytes, bytearray)):
        return lambda: None
    seek = getattr(content, "seek", None)
    tell = getattr(content, "tell", None)
    if seek is not None and tell is not None:
        try:
            start = tell()
        except OSError:
            return None
        return lambda: seek(start)
    return None


# -- process-wide sessions per server --------------------------------------------------------
_shared: dict[tuple[str, HttpConfig], HttpSession] = {}
_shared_lock = threading.Lock()


def shared_session(base_url: str) -> HttpSession:
    """A session for ``base_url`` shared by this process (artifact repositories are made per
    call; sharing keeps their connections warm). Settings come from the environment now."""
    key = (base_url, HttpConfig.from_env())
    session = _shared.get(key)
    if session is None:
        with _shared_lock:
            session = _shared.get(key)
            if session is None:
                session = _shared[key] = HttpSession(base_url, key[1])
    return session


def _forget_shared_sessions() -> None:
    # A forked child must not write on the parent's pooled sockets; it opens its own.
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()


def close_shared_sessions() -> None:
    """Close every shared session's pooled connections (at exit, or when a test is done)."""
    with _shared_lock:
        sessions = list(_shared.values())
        _shared.clear()
    for session in sessions:
        session.close()


os.register_at_fork(after_in_child=_forget_shared_sessions)
atexit.register(close_shared_sessions)
