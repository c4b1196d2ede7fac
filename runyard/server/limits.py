"""Request limits: body size caps and the body read timeout.

A request body is never trusted to be as long, or as fast, as it says:

* :func:`read_body` refuses a declared ``Content-Length`` over the cap before reading a byte,
  and stops reading as soon as the bytes that do arrive pass it (a missing or lying header
  changes nothing);
* :func:`check_upload_size` / :func:`capped_chunks` do the same for streamed artifact uploads;
* :class:`BodyTimeoutMiddleware` answers 408 and closes the connection when the client stops
  sending its body for ``body_timeout`` seconds, so a stalled upload or a ``Content-Length``
  larger than what is sent cannot hold a request open for ever. It only watches the body: once
  the body is complete, waiting on ``receive`` (Starlette listening for a disconnect while it
  streams a download) is not limited.

Idle keep-alive connections, the number of concurrent connections and the graceful-shutdown
window are uvicorn settings (see ``runyard.cli.server``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runyard.errors import InvalidParameterValue

__all__ = [
    "BodyTimeoutMiddleware",
    "UploadTooLarge",
    "capped_chunks",
    "check_upload_size",
    "declared_length",
    "read_body",
]


class UploadTooLarge(InvalidParameterValue):
    """An artifact upload over ``RUNYARD_SERVER_MAX_UPLOAD_SIZE`` (answered 413)."""

    def get_http_status_code(self) -> int:
        """413 Content Too Large: the request was refused for its size alone."""
        return 413


def declared_length(request: Request) -> int | None:
    """The ``Content-Length`` the client declared, None when absent or not a number."""
    raw = request.headers.get("content-length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def _too_large(size: int | str, limit: int, what: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Request body of {size} bytes is over the limit of {limit} bytes for {what}."
    )


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The whole body, refused (INVALID_PARAMETER_VALUE) once it is known to pass ``limit``."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise _too_large(declared, limit, what)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit}", limit, what)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # read again by anyone else: Starlette's own cache
    return body


def _upload_too_large(size: int | str, limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"Artifact upload of {size} bytes is over the server's limit of {limit} bytes "
        "(RUNYARD_SERVER_MAX_UPLOAD_SIZE)."
    )


def check_upload_size(request: Request, limit: int) -> None:
    """Refuse an upload whose declared size passes ``limit`` (0: no limit) before reading it."""
    declared = declared_length(request)
    if limit and declared is not None and declared > limit:
        raise _upload_too_large(declared, limit)


async def capped_chunks(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The body's chunks, raising :class:`UploadTooLarge` once more than ``limit`` bytes came
    (0: no limit)."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit and size > limit:
            raise _upload_too_large(f"more than {limit}", limit)
        yield chunk


class BodyTimeoutMiddleware:
    """Answer 408 when a request body stalls for ``timeout`` seconds (see the module doc)."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.timeout <= 0:
            await self.app(scope, receive, send)
            return
        state = {"body_done": False, "timed_out": False, "started": False}
        timeout = self.timeout

        async def timed_receive() -> Message:
            if state["timed_out"]:
                return {"type": "http.disconnect"}
            if state["body_done"]:
                return await receive()
            with anyio.move_on_after(timeout) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                state["timed_out"] = True
                if not state["started"]:
                    await _send_timeout(send, timeout)
                # What the app sees: the client is gone (it reads ClientDisconnect).
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def guarded_send(message: Message) -> None:
            if state["timed_out"]:
                return  # the 408 went out instead
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, timed_receive, guarded_send)


async def _send_timeout(send: Send, timeout: float) -> None:
    body: dict[str, Any] = {
        "error_code": "BAD_REQUEST",
        "message": f"The request body stalled: no data for {timeout:g} seconds "
        "(RUNYARD_SERVER_BODY_TIMEOUT).",
    }
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
