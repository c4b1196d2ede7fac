"""A real S3-compatible server for tests: the ``s3_server`` session fixture.

It starts ``moto_server`` (the console script next to ``sys.executable``, else
``python -m moto.server``) on a free loopback port, waits until it answers, creates a bucket and
yields an :class:`S3Server`. Import the fixture into a test module or conftest to use it::

    from tests.s3_server import S3Server, s3_server  # noqa: F401

``S3Server.env`` holds the variables a process needs to reach it (fake credentials, region and
``MLFLOW_S3_ENDPOINT_URL``); apply them with ``monkeypatch.setenv`` or pass them to a subprocess.
The server keeps everything in memory and is stopped at the end of the session.
:func:`start_proxy_server` starts a ``runyard server`` whose artifact destination is the bucket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import wait_healthy

STARTUP_TIMEOUT_S = 60.0

#: Credentials moto accepts; never real ones.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    """A running ``moto_server``: its endpoint, a bucket created for the session, and the env."""

    endpoint_url: str
    bucket: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self) -> Any:
        """A boto3 S3 client on this server (for checking what landed in the bucket)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create another bucket (a unique name by default) and return its name."""
        name = name or f"runyard-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        """Every object key under ``prefix`` in ``bucket`` (default: the session bucket)."""
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in paginator.paginate(Bucket=bucket or self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "moto_server"
    program = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    return [*program, "-H", "127.0.0.1", "-p", str(port)]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_s3_server(root: Path) -> S3Server:
    """Start ``moto_server`` with its log under ``root``; fail the test if it does not answer."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = root / "moto.log"
    env = os.environ | CREDENTIALS
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            _command(port), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"moto_server exited ({process.returncode}):\n{log.read_text()}")
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=2)
            break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"moto_server did not answer in time:\n{log.read_text()}")
        time.sleep(0.1)
    server = S3Server(
        endpoint_url=endpoint,
        bucket=f"runyard-test-{uuid.uuid4().hex[:8]}",
        env={**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": endpoint},
        log=log,
        process=process,
    )
    server.create_bucket(server.bucket)
    return server


@dataclass
class ProxyServer:
    """A ``runyard server`` process whose artifact destination is ``s3://<bucket>/<prefix>``."""

    url: str
    prefix: str
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)


def start_proxy_server(
    root: Path, s3: S3Server, prefix: str, backend_store_uri: str | None = None
) -> ProxyServer:
    """Start ``runyard server --artifacts-destination s3://<bucket>/<prefix>`` (store: a SQLite
    file under ``root``, or ``backend_store_uri``, whose schema must be current), configured
    for ``s3`` through the environment only, as an operator would."""
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "runyard"),
        "server",
        *("--backend-store-uri", backend_store_uri or f"sqlite:///{root / 'db.sqlite'}"),
        *("--artifacts-destination", f"s3://{s3.bucket}/{prefix}"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "RUNYARD_"))}
    # Streamed uploads buffer one part: 5 MiB here, so a 50 MB file goes up in ten parts.
    env |= s3.env | {"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(5 * 1024 * 1024)}
    log = root / "server.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    server = ProxyServer(f"http://127.0.0.1:{port}", prefix, log, process)
    if wait_healthy(server.url, process):
        return server
    stop_proxy_server(server)
    pytest.fail(f"runyard server did not start ({' '.join(command)}):\n{log.read_text()}")


def stop_proxy_server(server: ProxyServer) -> None:
    """Stop a server started by :func:`start_proxy_server`."""
    _stop(server.process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One ``moto_server`` process for the session, with a bucket already created."""
    server = start_s3_server(tmp_path_factory.mktemp("s3-server"))
    try:
        yield server
    finally:
        _stop(server.process)
