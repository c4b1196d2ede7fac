"""``runyard server --artifacts-destination s3://bucket/prefix``: the artifact proxy over S3.

A real server process in front of a real S3-compatible server (moto_server): the runyard client
and raw HTTP upload, list, download and delete through the proxy, the bytes land in the bucket
under the prefix, and a 50 MB file passes both ways without the server holding it in memory.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import runyard
from tests.s3_server import (
    ProxyServer,
    S3Server,
    s3_server,  # noqa: F401
    start_proxy_server,
    stop_proxy_server,
)

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def proxy(
    s3_server: S3Server,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyServer]:
    server = start_proxy_server(
        tmp_path_factory.mktemp("s3-proxy"), s3_server, f"proxy-{uuid.uuid4().hex[:8]}"
    )
    yield server
    stop_proxy_server(server)


@pytest.fixture
def http(proxy: ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=120) as client:
        yield client


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def _reset_peak(pid: int) -> int:
    """Reset the process's peak RSS (VmHWM) to its current RSS; return that RSS in KiB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _rss_kib(pid)


def test_runyard_client_through_the_proxy(
    proxy: ProxyServer,
    s3_server: S3Server,  # noqa: F811
    tracking_env: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    # The client only talks HTTP: it needs no AWS settings at all.
    for name in s3_server.env:
        monkeypatch.delenv(name, raising=False)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.bin").write_bytes(b"\x00" * 1000)
    runyard.set_experiment("s3-proxy")
    with runyard.start_run() as run:
        runyard.log_artifacts(str(tree), "data")
        runyard.log_text("hello", "notes/hello.txt")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    root = run.info.artifact_uri.removeprefix("mlflow-artifacts:").strip("/")
    assert sorted(s3_server.keys(proxy.prefix + "/" + root)) == [
        f"{proxy.prefix}/{root}/data/a.txt",
        f"{proxy.prefix}/{root}/data/sub/b.bin",
        f"{proxy.prefix}/{root}/notes/hello.txt",
    ]
    client = runyard.Client()
    listed = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "data")]
    assert listed == [("data/a.txt", False, 1), ("data/sub", True, None)]
    local = Path(runyard.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (local / "data" / "sub" / "b.bin").read_bytes() == b"\x00" * 1000
    assert (local / "notes" / "hello.txt").read_text() == "hello"


def test_raw_http_put_get_list_delete(
    http: httpx.Client,
    proxy: ProxyServer,
    s3_server: S3Server,  # noqa: F811
) -> None:
    base = f"{ARTIFACTS}/raw"
    assert http.put(f"{base}/d/x.json", content=b'{"x": 1}').status_code == 200
    assert http.put(f"{base}/y.txt", content=b"yy").status_code == 200
    got = http.get(f"{base}/d/x.json")
    assert got.status_code == 200
    assert got.content == b'{"x": 1}'
    assert got.headers["content-type"].startswith("application/json")
    listing = http.get(ARTIFACTS, params={"path": "raw"}).json()
    assert listing == {
        "files": [
            {"path": "d", "is_dir": True},
            {"path": "y.txt", "is_dir": False, "file_size": 2},
        ]
    }
    assert http.get(ARTIFACTS, params={"path": "raw/y.txt"}).json() == {}
    missing = http.get(f"{base}/nope.txt")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert http.put(f"{ARTIFACTS}/%2E%2E/escape.txt", content=b"x").status_code == 400
    assert sorted(s3_server.keys(f"{proxy.prefix}/raw")) == [
        f"{proxy.prefix}/raw/d/x.json",
        f"{proxy.prefix}/raw/y.txt",
    ]
    assert http.delete(f"{base}/d").status_code == 200
    assert s3_server.keys(f"{proxy.prefix}/raw") == [f"{proxy.prefix}/raw/y.txt"]


def test_fifty_megabytes_stream_both_ways(
    http: httpx.Client,
    proxy: ProxyServer,
    s3_server: S3Server,  # noqa: F811
) -> None:
    size = 50 * 1000 * 1000
    block = os.urandom(MiB)

    def body() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            piece = block[: min(MiB, size - sent)]
            sent += len(piece)
            yield piece

    expected = hashlib.sha256(b"".join(body())).hexdigest()
    # Warm up first (the S3 client, imports, buffers), then measure one big transfer each way.
    assert http.put(f"{ARTIFACTS}/big/warm.bin", content=block * 6).status_code == 200
    assert len(http.get(f"{ARTIFACTS}/big/warm.bin").content) == 6 * MiB
    pid = proxy.process.pid
    before = _reset_peak(pid)
    assert http.put(f"{ARTIFACTS}/big/file.bin", content=body()).status_code == 200
    peak_upload = _rss_kib(pid, "VmHWM")

    before_download = _reset_peak(pid)
    digest = hashlib.sha256()
    received = 0
    with http.stream("GET", f"{ARTIFACTS}/big/file.bin") as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            digest.update(chunk)
            received += len(chunk)
    peak_download = _rss_kib(pid, "VmHWM")

    assert received == size
    assert digest.hexdigest() == expected
    head = s3_server.client().head_object(
        Bucket=s3_server.bucket, Key=f"{proxy.prefix}/big/file.bin"
    )
    assert head["ContentLength"] == size
    assert str(head["ETag"]).strip('"').endswith("-10")  # ten 5 MiB parts, streamed
    # Peak RSS during each transfer: generous slack for allocator noise and the 5 MiB part
    # buffer, far below the 48 MiB a buffered copy of the file would add.
    limit_kib = 24 * 1024
    assert peak_upload - before < limit_kib, (before, peak_upload)
    assert peak_download - before_download < limit_kib, (before_download, peak_download)
