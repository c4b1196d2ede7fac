"""HTTP/1.1 keep-alive clients for the raw server workloads.

Two interchangeable implementations of :class:`Http` (one persistent connection,
sequential requests) and of :func:`hammer` (N concurrent keep-alive connections
looping on one GET for a fixed time):

- ``stdlib`` (default): :mod:`http.client` and :mod:`asyncio` streams. About
  0.15 ms of client CPU per request on the benchmark machine, so the client is
  not what limits a fast server.
- ``httpx``: ``httpx.Client`` / ``httpx.AsyncClient``. Measured here at about
  0.5-0.7 ms of client CPU per request sequentially, and 400-550 req/s in
  total for 16 async connections (the load generator saturating a core), which
  hides the difference between servers faster than that.

Only the standard library is imported at module level; httpx is imported when
its implementation is asked for. Every loop is bounded in count and time.
Both take optional ``headers`` sent with every request (e.g. ``Authorization``
for the auth suite, :mod:`benchmarks.auth`). Large bodies are streamed both ways:
:meth:`Http.upload` sends a file from disk in 1 MiB reads and :meth:`Http.download`
hashes (and optionally writes to disk) one 1 MiB chunk at a time, so the client never
holds a whole artifact in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

REQUEST_TIMEOUT_S = 600.0
MAX_HAMMER_REQUESTS = 5_000_000  # hard cap on a hammer run, besides its duration
READ_CHUNK = 1 << 20


class Http(Protocol):
    """A sequential HTTP client bound to one server."""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return the status and the whole body."""
        ...

    def download(
        self,
        path: str,
        params: dict[str, str] | None = None,
        sink: BinaryIO | None = None,
        digest: bool = True,
    ) -> tuple[int, int, str]:
        """Stream a GET response (into ``sink`` if given); return status, byte count and
        SHA-256 hex digest ("" with ``digest=False``: hashing 1 GB costs the client more
        than the server takes to send it, so timed downloads only count bytes)."""
        ...

    def upload(self, method: str, path: str, source: Path) -> tuple[int, bytes]:
        """Send the file ``source`` as the body, streamed from disk; status and answer."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


def _target(path: str, params: dict[str, str] | None) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}" if params else path


def _encode(
    body: bytes | None, json_body: Any, content_type: str | None
) -> tuple[bytes | None, dict[str, str]]:
    if json_body is not None:
        return json.dumps(json_body).encode(), {"Content-Type": "application/json"}
    return body, {"Content-Type": content_type} if content_type else {}


class StdlibHttp:
    """:class:`Http` over one :class:`http.client.HTTPConnection` (keep-alive)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.conn = http.client.HTTPConnection(
            self.host, self.port, timeout=REQUEST_TIMEOUT_S, blocksize=READ_CHUNK
        )
        self.headers = dict(headers or {})

    def _send(
        self, method: str, target: str, body: bytes | Path | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        for attempt in (1, 2):
            try:
                if isinstance(body, Path):  # streamed by http.client in blocksize reads
                    with body.open("rb") as stream:
                        self.conn.request(method, target, body=stream, headers=headers)
                else:
                    self.conn.request(method, target, body=body, headers=headers)
                return self.conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection before reading
                # the request: reconnect and send it once more.
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, bytes]:
        """See :meth:`Http.request`."""
        data, headers = _encode(body, json_body, content_type)
        response = self._send(method, _target(path, params), data, {**self.headers, **headers})
        return response.status, response.read()

    def download(
        self,
        path: str,
        params: dict[str, str] | None = None,
        sink: BinaryIO | None = None,
        digest: bool = True,
    ) -> tuple[int, int, str]:
        """See :meth:`Http.download`."""
        response = self._send("GET", _target(path, params), None, self.headers)
        sha, size = hashlib.sha256(), 0
        while chunk := response.read(READ_CHUNK):
            if digest:
                sha.update(chunk)
            size += len(chunk)
            if sink is not None:
                sink.write(chunk)
        return response.status, size, sha.hexdigest() if digest else ""

    def upload(self, method: str, path: str, source: Path) -> tuple[int, bytes]:
        """See :meth:`Http.upload`."""
        headers = {**self.headers, "Content-Length": str(source.stat().st_size)}
        response = self._send(method, path, source, headers)
        return response.status, response.read()

    def close(self) -> None:
        """See :meth:`Http.close`."""
        self.conn.close()


class HttpxHttp:
    """:class:`Http` over ``httpx.Client`` (keep-alive connection pool)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.client = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, bytes]:
        """See :meth:`Http.request`."""
        data, headers = _encode(body, json_body, content_type)
        response = self.client.request(method, path, params=params, content=data, headers=headers)
        return response.status_code, response.content

    def download(
        self,
        path: str,
        params: dict[str, str] | None = None,
        sink: BinaryIO | None = None,
        digest: bool = True,
    ) -> tuple[int, int, str]:
        """See :meth:`Http.download`."""
        sha, size = hashlib.sha256(), 0
        with self.client.stream("GET", path, params=params) as response:
            for chunk in response.iter_bytes(READ_CHUNK):
                if digest:
                    sha.update(chunk)
                size += len(chunk)
                if sink is not None:
                    sink.write(chunk)
            return response.status_code, size, sha.hexdigest() if digest else ""

    def upload(self, method: str, path: str, source: Path) -> tuple[int, bytes]:
        """See :meth:`Http.upload`."""

        def chunks() -> Iterator[bytes]:
            with source.open("rb") as stream:
                while chunk := stream.read(READ_CHUNK):
                    yield chunk

        headers = {"Content-Length": str(source.stat().st_size)}
        response = self.client.request(method, path, content=chunks(), headers=headers)
        return response.status_code, response.content

    def close(self) -> None:
        """See :meth:`Http.close`."""
        self.client.close()


def connect(kind: str, url: str, headers: dict[str, str] | None = None) -> Http:
    """A sequential client of implementation ``kind`` (``stdlib`` or ``httpx``)."""
    return HttpxHttp(url, headers) if kind == "httpx" else StdlibHttp(url, headers)


@dataclass
class HammerStats:
    """What a :func:`hammer` run saw over its timed window."""

    ok: int = 0
    bad: int = 0
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def record(self, started: float, good: bool) -> None:
        """Count one response that took from ``started`` until now."""
        self.latencies.append(time.perf_counter() - started)
        if good:
            self.ok += 1
        else:
            self.bad += 1

    def more(self, deadline: float) -> bool:
        """Whether the loop may send another request."""
        return time.perf_counter() < deadline and self.ok + self.bad < MAX_HAMMER_REQUESTS


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length or chunked body."""
    status_line = await reader.readline()
    if len(status_line.split()) < 2:
        raise ConnectionError(f"no HTTP status line from the server: {status_line[:100]!r}")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
        parts.append(await reader.readexactly(size))
        await reader.readline()
    await reader.readline()  # the blank line after the last chunk (no trailers sent)
    return status, b"".join(parts)


async def _hammer_stdlib(
    url: str,
    target: str,
    needle: bytes,
    connections: int,
    duration_s: float,
    headers: dict[str, str],
) -> HammerStats:
    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]

    async def warm_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(request)
        await _read_response(reader)

    # One untimed request per connection, all at once: sent one after the other, the first
    # connections would idle past the server's keep-alive timeout behind a slow server.
    await asyncio.gather(*(warm_up(reader, writer) for reader, writer in streams))
    stats = HammerStats()
    cpu_start, start = time.process_time(), time.perf_counter()
    deadline = start + duration_s

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while stats.more(deadline):
            sent = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            stats.record(sent, status == 200 and needle in body)

    await asyncio.gather(*(worker(reader, writer) for reader, writer in streams))
    stats.wall_s, stats.client_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    for _, writer in streams:
        writer.close()
    return stats


async def _hammer_httpx(
    url: str,
    target: str,
    needle: bytes,
    connections: int,
    duration_s: float,
    headers: dict[str, str],
) -> HammerStats:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S, headers=headers
    ) as client:
        await asyncio.gather(*(client.get(target) for _ in range(connections)))
        stats = HammerStats()
        cpu_start, start = time.process_time(), time.perf_counter()
        deadline = start + duration_s

        async def worker() -> None:
            while stats.more(deadline):
                sent = time.perf_counter()
                response = await client.get(target)
                stats.record(sent, response.status_code == 200 and needle in response.content)

        await asyncio.gather(*(worker() for _ in range(connections)))
        stats.wall_s = time.perf_counter() - start
        stats.client_cpu_s = time.process_time() - cpu_start
    return stats


def hammer(
    kind: str,
    url: str,
    target: str,
    needle: bytes,
    connections: int,
    duration_s: float,
    headers: dict[str, str] | None = None,
) -> HammerStats:
    """GET ``target`` over ``connections`` keep-alive connections for ``duration_s``.

    A response counts as good when it is a 200 whose body contains ``needle``;
    ``headers`` go with every request.
    """
    run = _hammer_httpx if kind == "httpx" else _hammer_stdlib
    return asyncio.run(run(url, target, needle, connections, duration_s, dict(headers or {})))
