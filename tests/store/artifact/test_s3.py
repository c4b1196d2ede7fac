"""S3ArtifactRepository against a real S3-compatible server (moto_server, tests/s3_server.py).

Also the client's direct path: an experiment whose artifact location is ``s3://...`` (or a
``file://`` path, as a network mount would be) is written and read without any tracking server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.entities import FileInfo
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.artifact import get_artifact_repository
from runyard.store.artifact.s3 import S3ArtifactRepository, parse_s3_uri, s3_client
from tests.s3_server import S3Server, s3_server  # noqa: F401

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:  # noqa: F811
    """The session's S3 server, with its credentials and endpoint in this test's environment."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    for name in ("MULTIPART_UPLOAD_CHUNK_SIZE", "MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"):
        monkeypatch.delenv(f"MLFLOW_{name}", raising=False)
        monkeypatch.delenv(f"RUNYARD_{name}", raising=False)
    monkeypatch.delenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", raising=False)
    return s3_server


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def repo(s3: S3Server, prefix: str) -> S3ArtifactRepository:
    return S3ArtifactRepository(f"s3://{s3.bucket}/{prefix}")


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A local tree to upload: a.txt, sub/b.txt, sub/deeper/c.bin."""
    base = tmp_path / "src"
    (base / "sub" / "deeper").mkdir(parents=True)
    (base / "a.txt").write_text("a")
    (base / "sub" / "b.txt").write_text("bb")
    (base / "sub" / "deeper" / "c.bin").write_bytes(b"\x00\x01\x02")
    return base


def _head(s3: S3Server, key: str) -> dict[str, Any]:
    head: dict[str, Any] = s3.client().head_object(Bucket=s3.bucket, Key=key)
    return head


def _etag_parts(s3: S3Server, key: str) -> int | None:
    """The part count in a multipart object's ETag (``"<md5>-N"``); None for a single PUT."""
    etag = str(_head(s3, key)["ETag"]).strip('"')
    return int(etag.rsplit("-", 1)[1]) if "-" in etag else None


def _random_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_uri_parsing_and_scheme_registry(s3: S3Server) -> None:
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/a/b/") == ("bucket", "a/b")
    for bad in ("s3:///nobucket", "s3://b/a/../c", "s3://b/a//c", "http://b/a"):
        with pytest.raises(InvalidParameterValue):
            parse_s3_uri(bad)
    repo = get_artifact_repository(f"s3://{s3.bucket}/x/y")
    assert isinstance(repo, S3ArtifactRepository)
    assert (repo.bucket, repo.prefix) == (s3.bucket, "x/y")
    assert repo.endpoint_url == s3.endpoint_url  # from MLFLOW_S3_ENDPOINT_URL
    assert repo.verify_tls is True


def test_one_client_per_endpoint_and_tls_setting(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    found: list[Any] = []
    threads = [
        threading.Thread(target=lambda: found.append(s3_client(s3.endpoint_url, False)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in found}) == 1
    assert s3_client(s3.endpoint_url, True) is not found[0]
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    repo = S3ArtifactRepository(f"s3://{s3.bucket}/p")
    assert repo.verify_tls is False
    assert repo.client is found[0]


def test_log_artifact_list_and_keys(
    repo: S3ArtifactRepository, s3: S3Server, prefix: str, src: Path
) -> None:
    repo.log_artifact(str(src / "a.txt"))
    repo.log_artifact(str(src / "sub" / "b.txt"), "x/y")
    assert sorted(s3.keys(prefix)) == [f"{prefix}/a.txt", f"{prefix}/x/y/b.txt"]
    assert repo.list_artifacts() == [FileInfo("a.txt", False, 1), FileInfo("x", True, None)]
    assert repo.list_artifacts("x") == [FileInfo("x/y", True, None)]
    assert repo.list_artifacts("x/y/") == [FileInfo("x/y/b.txt", False, 2)]
    assert repo.list_artifacts("x/y/b.txt") == []  # a file lists nothing
    assert repo.list_artifacts("missing") == []
    assert _head(s3, f"{prefix}/a.txt")["ContentType"] == "text/plain"
    with pytest.raises(InvalidParameterValue):
        repo.list_artifacts("../other")


def test_root_of_a_bucket_without_prefix(s3: S3Server, src: Path) -> None:
    bucket = s3.create_bucket()
    repo = S3ArtifactRepository(f"s3://{bucket}")
    repo.log_artifacts(str(src))
    assert [f.path for f in repo.list_artifacts()] == ["a.txt", "sub"]
    assert sorted(s3.keys(bucket=bucket)) == ["a.txt", "sub/b.txt", "sub/deeper/c.bin"]


def test_log_artifacts_and_download_tree_file_and_root(
    repo: S3ArtifactRepository, src: Path, tmp_path: Path
) -> None:
    repo.log_artifacts(str(src))
    repo.log_artifacts(str(src), "copy")
    assert [f.path for f in repo.list_artifacts()] == ["a.txt", "copy", "sub"]

    out = Path(repo.download_artifacts("sub", str(tmp_path / "d1")))
    assert out == (tmp_path / "d1" / "sub").resolve()
    assert (out / "b.txt").read_text() == "bb"
    assert (out / "deeper" / "c.bin").read_bytes() == b"\x00\x01\x02"

    one = Path(repo.download_artifacts("copy/sub/b.txt", str(tmp_path / "d2")))
    assert one == (tmp_path / "d2" / "copy" / "sub" / "b.txt").resolve()
    assert one.read_text() == "bb"

    everything = Path(repo.download_artifacts())
    files = sorted(p.relative_to(everything).as_posix() for p in everything.rglob("*.*"))
    assert files == [
        "a.txt",
        "copy/a.txt",
        "copy/sub/b.txt",
        "copy/sub/deeper/c.bin",
        "sub/b.txt",
        "sub/deeper/c.bin",
    ]
    with pytest.raises(ResourceDoesNotExist, match="No such artifact"):
        repo.download_artifacts("nothing/here.txt", str(tmp_path / "d3"))


def test_multipart_upload_above_threshold(
    repo: S3ArtifactRepository,
    s3: S3Server,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(8 * MiB))
    monkeypatch.setenv("RUNYARD_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    big = tmp_path / "big.bin"
    digest = _random_file(big, 12 * MiB)
    small = tmp_path / "small.bin"
    _random_file(small, 7 * MiB)
    repo.log_artifact(str(big), "m")
    repo.log_artifact(str(small), "m")
    assert _etag_parts(s3, f"{prefix}/m/big.bin") == 3  # 5 + 5 + 2 MiB
    assert _etag_parts(s3, f"{prefix}/m/small.bin") is None  # under the threshold: one PUT
    assert repo.list_artifacts("m") == [
        FileInfo("m/big.bin", False, 12 * MiB),
        FileInfo("m/small.bin", False, 7 * MiB),
    ]
    assert _sha(repo.download_artifacts("m/big.bin", str(tmp_path / "dl"))) == digest


def test_upload_extra_args_from_env(
    repo: S3ArtifactRepository,
    s3: S3Server,
    prefix: str,
    src: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Metadata": {"team": "ml"}}')
    repo.log_artifact(str(src / "a.txt"))
    repo.write_chunks("w.json", [b"{}"])
    assert _head(s3, f"{prefix}/a.txt")["Metadata"] == {"team": "ml"}
    assert _head(s3, f"{prefix}/w.json")["Metadata"] == {"team": "ml"}
    assert _head(s3, f"{prefix}/w.json")["ContentType"] == "application/json"
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "{not json")
    with pytest.raises(InvalidParameterValue, match="S3_UPLOAD_EXTRA_ARGS is not valid JSON"):
        repo.log_artifact(str(src / "a.txt"))


def test_list_and_delete_more_than_one_page(
    repo: S3ArtifactRepository, s3: S3Server, prefix: str
) -> None:
    client = s3.client()
    names = [f"f{i:05d}.txt" for i in range(1100)]
    for name in names:
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}/many/{name}", Body=name.encode())
    client.put_object(Bucket=s3.bucket, Key=f"{prefix}/many/zdir/inner.txt", Body=b"x")
    listing = repo.list_artifacts("many")
    assert len(listing) == 1101  # S3 answers 1,000 keys a page: the paginator read them all
    assert listing[0] == FileInfo("many/f00000.txt", False, 10)
    assert listing[-2] == FileInfo("many/f01099.txt", False, 10)
    assert listing[-1] == FileInfo("many/zdir", True, None)
    repo.delete_artifacts("many")  # 1,101 keys: two delete_objects batches
    assert s3.keys(f"{prefix}/many") == []


def test_open_chunks_streams_and_missing_raises_at_once(
    repo: S3ArtifactRepository, tmp_path: Path
) -> None:
    data = os.urandom(3 * MiB + 17)
    (tmp_path / "f.bin").write_bytes(data)
    repo.log_artifact(str(tmp_path / "f.bin"), "s")
    chunks = list(repo.open_chunks("s/f.bin"))
    assert [len(c) for c in chunks] == [MiB, MiB, MiB, 17]
    assert b"".join(chunks) == data
    with pytest.raises(ResourceDoesNotExist, match="No such artifact"):
        repo.open_chunks("s/missing.bin")  # before any iteration: a server can answer 404
    with pytest.raises(InvalidParameterValue):
        repo.open_chunks("")


def test_write_chunks_small_is_one_put(
    repo: S3ArtifactRepository, s3: S3Server, prefix: str
) -> None:
    repo.write_chunks("w/small.txt", iter([b"hello ", b"world"]))
    repo.write_chunks("w/empty.txt", iter([]))
    assert b"".join(repo.open_chunks("w/small.txt")) == b"hello world"
    assert b"".join(repo.open_chunks("w/empty.txt")) == b""
    assert _etag_parts(s3, f"{prefix}/w/small.txt") is None


def test_write_chunks_sends_parts_while_the_stream_is_still_open(
    repo: S3ArtifactRepository, s3: S3Server, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    key = f"{prefix}/w/big.bin"
    client = s3.client()
    seen_parts: list[int] = []
    digest = hashlib.sha256()

    def stream() -> Iterator[bytes]:
        for _ in range(13):  # 13 MiB in 1 MiB chunks → parts of 5, 5 and 3 MiB
            uploads = client.list_multipart_uploads(Bucket=s3.bucket, Prefix=key)
            parts = 0
            for upload in uploads.get("Uploads", []):
                listed = client.list_parts(Bucket=s3.bucket, Key=key, UploadId=upload["UploadId"])
                parts += len(listed.get("Parts", []))
            seen_parts.append(parts)
            chunk = os.urandom(MiB)
            digest.update(chunk)
            yield chunk

    repo.write_chunks("w/big.bin", stream())
    # Before the 11th chunk is asked for, two parts already sit in the bucket: the writer holds
    # one part in memory, never the whole stream.
    assert seen_parts[5] == 1
    assert seen_parts[10] == 2
    assert _etag_parts(s3, key) == 3
    assert hashlib.sha256(b"".join(repo.open_chunks("w/big.bin"))).hexdigest() == (
        digest.hexdigest()
    )
    assert client.list_multipart_uploads(Bucket=s3.bucket, Prefix=key).get("Uploads", []) == []


def test_write_chunks_failure_aborts_the_multipart_upload(
    repo: S3ArtifactRepository, s3: S3Server, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    key = f"{prefix}/w/broken.bin"

    def stream() -> Iterator[bytes]:
        for _ in range(7):
            yield os.urandom(MiB)
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        repo.write_chunks("w/broken.bin", stream())
    client = s3.client()
    assert client.list_multipart_uploads(Bucket=s3.bucket, Prefix=key).get("Uploads", []) == []
    assert s3.keys(key) == []


def test_delete_file_directory_and_missing(
    repo: S3ArtifactRepository, s3: S3Server, prefix: str, src: Path
) -> None:
    repo.log_artifacts(str(src))
    repo.delete_artifacts("a.txt")
    assert [f.path for f in repo.list_artifacts()] == ["sub"]
    repo.delete_artifacts("sub/deeper")
    assert repo.list_artifacts("sub") == [FileInfo("sub/b.txt", False, 2)]
    repo.delete_artifacts("not/there")  # missing keys are fine
    repo.delete_artifacts()
    assert s3.keys(prefix) == []


def test_missing_bucket_is_a_clear_error(s3: S3Server, src: Path, tmp_path: Path) -> None:
    repo = S3ArtifactRepository("s3://no-such-bucket-runyard/p")
    with pytest.raises(ResourceDoesNotExist, match="bucket 'no-such-bucket-runyard' does not"):
        repo.log_artifact(str(src / "a.txt"))
    with pytest.raises(ResourceDoesNotExist, match="bucket 'no-such-bucket-runyard' does not"):
        repo.list_artifacts()
    with pytest.raises(ResourceDoesNotExist, match="bucket 'no-such-bucket-runyard' does not"):
        repo.write_chunks("x.txt", [b"x"])
    with pytest.raises(ResourceDoesNotExist):
        repo.download_artifacts("a.txt", str(tmp_path / "dl"))


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_credentials_is_a_clear_error(s3_server: S3Server, tmp_path: Path) -> None:  # noqa: F811
    # A fresh process: clients are cached per process with the credentials they found.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "RUNYARD_"))}
    env |= {
        "MLFLOW_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = _run_python(
        f"""
        from runyard.errors import PermissionDenied
        from runyard.store.artifact import get_artifact_repository
        try:
            get_artifact_repository("s3://{s3_server.bucket}/p").list_artifacts()
        except PermissionDenied as exc:
            print("ERROR:", exc)
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR: Could not list" in done.stdout
    assert "no AWS credentials were found" in done.stdout
    assert "AWS_ACCESS_KEY_ID" in done.stdout


def test_missing_boto3_names_the_extra() -> None:
    done = _run_python(
        """
        import sys
        sys.modules["boto3"] = None  # as if it were not installed
        from runyard.errors import RunyardError
        from runyard.store.artifact import get_artifact_repository
        try:
            get_artifact_repository("s3://bucket/p").log_artifact("model.pkl")
        except RunyardError as exc:
            print("ERROR:", exc)
        """,
        dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'runyard[s3]'" in done.stdout


# -- the tracking client straight to the store, no tracking server ------------------------------


def test_client_logs_straight_to_s3(
    s3: S3Server, tracking_env: str, tmp_path: Path, prefix: str
) -> None:
    location = f"s3://{s3.bucket}/{prefix}/exp"
    experiment_id = runyard.create_experiment("s3-direct", artifact_location=location)
    (tmp_path / "model.txt").write_text("weights")
    with runyard.start_run(experiment_id=experiment_id) as run:
        runyard.log_artifact(str(tmp_path / "model.txt"), "models")
        runyard.log_text("hello", "notes/hello.txt")
    assert run.info.artifact_uri == f"{location}/{run.info.run_id}/artifacts"
    keys = sorted(s3.keys(f"{prefix}/exp/{run.info.run_id}"))
    assert keys == [
        f"{prefix}/exp/{run.info.run_id}/artifacts/models/model.txt",
        f"{prefix}/exp/{run.info.run_id}/artifacts/notes/hello.txt",
    ]
    files = runyard.Client().list_artifacts(run.info.run_id, "models")
    assert [(f.path, f.file_size) for f in files] == [("models/model.txt", 7)]
    local = runyard.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="models", dst_path=str(tmp_path / "dl")
    )
    assert (Path(local) / "model.txt").read_text() == "weights"
    uri = f"{run.info.artifact_uri}/notes/hello.txt"
    assert runyard.artifacts.load_text(uri) == "hello"


def test_client_logs_to_a_file_uri_location(tracking_env: str, tmp_path: Path) -> None:
    # A network mount is just a path: an absolute file:// URI as the experiment's location.
    mount = tmp_path / "mnt" / "shared store"
    location = mount.as_uri()
    experiment_id = runyard.create_experiment("file-uri", artifact_location=location)
    (tmp_path / "a.txt").write_text("a")
    with runyard.start_run(experiment_id=experiment_id) as run:
        runyard.log_artifact(str(tmp_path / "a.txt"), "d")
    assert (mount / run.info.run_id / "artifacts" / "d" / "a.txt").read_text() == "a"
    local = runyard.artifacts.download_artifacts(
        artifact_uri=f"{run.info.artifact_uri}/d", dst_path=str(tmp_path / "dl")
    )
    assert (Path(local) / "a.txt").read_text() == "a"
