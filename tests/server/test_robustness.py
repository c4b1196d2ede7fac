"""Server robustness: body size caps, stalled and lying clients, connection limits, SIGTERM.

In-process tests drive the app through Starlette's client and the body-timeout middleware with
hand-made ASGI messages; the ``slow`` ones talk raw sockets to a real ``runyard server``
process, which is what a lying ``Content-Length`` or a stalled upload needs.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from runyard.server.limits import BodyTimeoutMiddleware
from runyard.store.sql.store import SqlTrackingStore
from tests.server.conftest import make_client
from tests.server.fault_server import ServerProcess, launch

ART = "/api/2.0/mlflow-artifacts/artifacts"
API = "/api/2.0/mlflow"


# -- size caps (in process) ------------------------------------------------------------------------


def test_an_oversized_json_body_is_refused(tmp_path: Path) -> None:
    with make_client(tmp_path) as api:
        big = {"run_id": "x" * 32, "params": [{"key": "k", "value": "v" * 1_100_000}]}
        response = api.post(f"{API}/runs/log-batch", json=big)
        assert response.status_code == 400
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "over the limit of 1000000 bytes" in response.json()["message"]

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b'{"run_id": "' + b"x" * 600_000
            yield b"y" * 600_000 + b'"}'

        headers = {"content-type": "application/json"}
        response = api.post(f"{API}/runs/log-batch", content=chunked(), headers=headers)
        assert response.status_code == 400
        assert "more than 1000000" in response.json()["message"]
        # The server is fine afterwards.
        assert api.post(f"{API}/experiments/create", json={"name": "after"}).status_code == 200


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_artifact_uploads_are_capped_when_configured(tmp_path: Path) -> None:
    with make_client(tmp_path, max_upload_size=1000) as api:
        assert api.put(f"{ART}/0/small.bin", content=b"a" * 1000).status_code == 200
        response = api.put(f"{ART}/0/big.bin", content=b"a" * 1001)
        assert response.status_code == 413
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "RUNYARD_SERVER_MAX_UPLOAD_SIZE" in response.json()["message"]

        def chunked() -> Iterator[bytes]:
            for _ in range(10):
                yield b"b" * 300

        assert api.put(f"{ART}/0/streamed.bin", content=chunked()).status_code == 413
        # Nothing of a refused upload stays on disk, not even its temporary file.
        assert [p.name for p in _leftovers(tmp_path / "artifacts")] == ["small.bin"]


def test_uploads_are_not_capped_by_default(tmp_path: Path) -> None:
    with make_client(tmp_path) as api:
        body = b"z" * (3 * 1024 * 1024)
        assert api.put(f"{ART}/0/big.bin", content=body).status_code == 200
        assert api.get(f"{ART}/0/big.bin").content == body


# -- the body timeout middleware (ASGI messages) ---------------------------------------------------


async def _echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then waits for the next message (as Starlette does to notice a
    disconnect while it streams), then answers with what it saw."""
    seen = []
    while True:
        message = await receive()
        seen.append(message["type"])
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    if seen[-1] == "http.request":
        seen.append((await receive())["type"])
    body = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(messages: list[tuple[float, dict[str, Any]]], timeout: float) -> list[dict[str, Any]]:
    """Run the middleware over ``_echo_app``; ``messages`` arrive after the given delays, then
    nothing more ever arrives. Returns what was sent to the client."""
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        queue = list(messages)

        async def receive() -> dict[str, Any]:
            if not queue:
                await anyio.sleep_forever()
            delay, message = queue.pop(0)
            await anyio.sleep(delay)
            return message

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        app = BodyTimeoutMiddleware(_echo_app, timeout=timeout)
        with anyio.fail_after(10):
            await app({"type": "http", "method": "PUT", "path": "/"}, receive, send)

    anyio.run(main)
    return sent


def test_a_stalled_body_is_answered_408_and_the_app_sees_a_disconnect() -> None:
    first = {"type": "http.request", "body": b"abc", "more_body": True}
    sent = _call([(0.0, first)], timeout=0.2)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error_code"] == "BAD_REQUEST"
    assert len(sent) == 2  # the app's own answer is dropped


def test_a_slow_but_steady_body_is_not_cut_off() -> None:
    chunks = [
        (0.1, {"type": "http.request", "body": b"a", "more_body": True}),
        (0.1, {"type": "http.request", "body": b"b", "more_body": True}),
        (0.1, {"type": "http.request", "body": b"c", "more_body": False}),
        (0.5, {"type": "http.disconnect"}),  # after the body: waited for without a limit
    ]
    sent = _call(chunks, timeout=0.25)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == ["http.request"] * 3 + ["http.disconnect"]


# -- a real server: lies, stalls, limits -----------------------------------------------------------


def _open(server: ServerProcess, head: bytes, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(head + body)
    return sock


def _head(method: str, path: str, length: int, kind: str = "application/json") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and raw bytes of one response (read until complete or closed, 30 s at most)."""
    data = b""
    sock.settimeout(30)
    while not _complete(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0
    return status, data


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "RUNYARD_SERVER_BODY_TIMEOUT": "1",
        "RUNYARD_SERVER_LIMIT_CONCURRENCY": "6",
        "RUNYARD_SERVER_MAX_UPLOAD_SIZE": "100000",
    }
    server = launch(f"sqlite:///{tmp_path / 'db'}", tmp_path, env)
    yield server
    server.stop()


@pytest.mark.slow
def test_a_lying_content_length_cannot_pin_the_server(strict_server: ServerProcess) -> None:
    # Declares 1000 bytes, sends 10, then goes quiet.
    liar = _open(strict_server, _head("POST", f"{API}/runs/log-batch", 1000), b'{"run_id":')
    started = time.monotonic()
    # Meanwhile everyone else is served at once.
    assert httpx.get(f"{strict_server.url}/health", timeout=5).status_code == 200
    status, data = _answer(liar)
    waited = time.monotonic() - started
    liar.close()
    assert status == 408, data
    assert b"stalled" in data
    assert waited < 10
    # A declared size over the limit is refused before a byte of the body is sent.
    huge = _open(strict_server, _head("POST", f"{API}/runs/log-batch", 10**10))
    status, data = _answer(huge)
    huge.close()
    assert status == 400, data
    assert b"over the limit" in data
    upload = _open(strict_server, _head("PUT", f"{ART}/0/x.bin", 10**9, "application/x"))
    status, data = _answer(upload)
    upload.close()
    assert status == 413, data
    assert "Traceback" not in strict_server.logs()


@pytest.mark.slow
def test_past_the_connection_limit_new_requests_get_503_until_slots_free(
    strict_server: ServerProcess,
) -> None:
    head = _head("PUT", f"{ART}/0/stall.bin", 50_000, "application/octet-stream")
    # uvicorn counts the connection asking too: with a limit of 6, the 6th is refused.
    stalled = [_open(strict_server, head, b"x" * 100) for _ in range(5)]
    try:
        time.sleep(0.3)
        refused = httpx.get(f"{strict_server.url}/health", timeout=5)
        assert refused.status_code == 503  # uvicorn's answer: clients retry it
        # The stalled uploads time out (408), their slots free up, service resumes.
        for sock in stalled:
            assert _answer(sock)[0] == 408
    finally:
        for sock in stalled:
            sock.close()
    assert httpx.get(f"{strict_server.url}/health", timeout=5).status_code == 200
    assert not list((strict_server.root / "art").rglob("*stall*"))


# -- graceful shutdown ---------------------------------------------------------------------------


def _trickle(chunks: list[bytes], pause: float, started: threading.Event) -> Iterator[bytes]:
    for i, chunk in enumerate(chunks):
        yield chunk
        if i == 0:
            started.set()
        time.sleep(pause)


@pytest.mark.slow
def test_sigterm_lets_slow_requests_in_progress_finish_and_refuses_new_ones(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'db'}"
    server = launch(uri, tmp_path)
    base = server.url
    exp_id = httpx.post(f"{base}{API}/experiments/create", json={"name": "g"}).json()[
        "experiment_id"
    ]
    run = httpx.post(f"{base}{API}/runs/create", json={"experiment_id": exp_id}).json()
    run_id = run["run"]["info"]["run_id"]
    metrics = [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(500)]
    batch = json.dumps({"run_id": run_id, "metrics": metrics}).encode()
    upload = [bytes([65 + i]) * 100_000 for i in range(8)]
    results: dict[str, Any] = {}
    upload_started, batch_started = threading.Event(), threading.Event()

    def send(name: str, method: str, path: str, chunks: list[bytes], flag: threading.Event) -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=60) as http:
            try:
                response = http.request(
                    method, base + path, content=_trickle(chunks, 0.3, flag), headers=headers
                )
                results[name] = response.status_code
            except httpx.HTTPError as exc:
                results[name] = repr(exc)

    size = -(-len(batch) // 7)
    batch_chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
    threads = [
        threading.Thread(
            target=send, args=("upload", "PUT", f"{ART}/0/slow.bin", upload, upload_started)
        ),
        threading.Thread(
            target=send,
            args=("batch", "POST", f"{API}/runs/log-batch", batch_chunks, batch_started),
        ),
    ]
    try:
        for thread in threads:
            thread.start()
        assert upload_started.wait(10)
        assert batch_started.wait(10)
        time.sleep(0.2)  # both requests are in the server, bodies half sent
        server.terminate()
        time.sleep(0.5)
        try:  # new connections are refused while the old requests finish
            late: object = httpx.get(f"{base}/health", timeout=2).status_code
        except httpx.TransportError as exc:
            late = type(exc).__name__
        for thread in threads:
            thread.join(timeout=60)
        code = server.wait(timeout=30)
    finally:
        server.stop()
    assert results == {"upload": 200, "batch": 200}
    assert late == "ConnectError"
    # uvicorn ends by re-raising the signal it handled (default action): "killed by SIGTERM"
    # after a clean shutdown, as service managers expect.
    assert code in (0, -signal.SIGTERM)
    stored = (tmp_path / "art" / "0" / "slow.bin").read_bytes()
    assert stored == b"".join(upload)
    store = SqlTrackingStore(uri, str(tmp_path / "art"), auto_upgrade=False)
    try:
        assert len(store.get_metric_history(run_id, "m")) == 500
    finally:
        store.close()
