"""Artifacts through a tracking server's ``mlflow-artifacts`` proxy: URI resolution and the
protocol rules on a mock transport, then uploads and downloads against a real server process
(the session's shared one from ``tests/store/test_rest.py``)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.store.artifact import (
    REPOSITORIES,
    LocalArtifactRepository,
    get_artifact_repository,
    register_artifact_repository,
    resolve_mlflow_artifacts_uri,
)
from runyard.store.artifact.http import HttpArtifactRepository, split_artifacts_url
from runyard.store.http_session import HttpConfig, HttpSession
from tests.live_server import TrackingServer

Handler = Callable[[httpx.Request], httpx.Response]
ROOT_URL = "http://art.test/pre/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts"


def make_repo(handler: Handler, url: str = ROOT_URL) -> tuple[HttpArtifactRepository, list[float]]:
    """A repository on a MockTransport; returns it and the retry waits it slept."""
    sleeps: list[float] = []
    base, _ = split_artifacts_url(url)
    session = HttpSession(
        f"{base}/api/2.0/mlflow-artifacts/",
        HttpConfig(max_retries=3, backoff_factor=0.5, backoff_jitter=0.0),
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    )
    return HttpArtifactRepository(url, session), sleeps


def listing(*files: dict[str, object]) -> httpx.Response:
    return httpx.Response(200, json={"files": list(files)} if files else {})


# -- URIs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("artifact_uri", "tracking_uri", "expected"),
    [
        (
            "mlflow-artifacts:/1/abc/artifacts",
            "http://h:5000",
            "http://h:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts",
        ),
        (
            "mlflow-artifacts:/1",
            "https://h/prefix/",
            "https://h/prefix/api/2.0/mlflow-artifacts/artifacts/1",
        ),
        (
            "mlflow-artifacts://other:6000/1/x",
            "http://h/p",
            "http://other:6000/p/api/2.0/mlflow-artifacts/artifacts/1/x",
        ),
        ("mlflow-artifacts:/", "http://h", "http://h/api/2.0/mlflow-artifacts/artifacts"),
    ],
)
def test_mlflow_artifacts_uris_resolve_against_the_tracking_server(
    artifact_uri: str, tracking_uri: str, expected: str
) -> None:
    assert resolve_mlflow_artifacts_uri(artifact_uri, tracking_uri) == expected
    repo = get_artifact_repository(artifact_uri, tracking_uri)
    assert isinstance(repo, HttpArtifactRepository)
    assert repo.artifact_uri == expected


def test_mlflow_artifacts_needs_an_http_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("RUNYARD", "MLFLOW"):
        monkeypatch.delenv(f"{prefix}_TRACKING_URI", raising=False)
    with pytest.raises(InvalidParameterValue, match="http"):
        get_artifact_repository("mlflow-artifacts:/1/x", "sqlite:///t.db")
    with pytest.raises(InvalidParameterValue, match="unset"):
        get_artifact_repository("mlflow-artifacts:/1/x")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env-host:5000")
    assert get_artifact_repository("mlflow-artifacts:/1/x").artifact_uri == (
        "http://env-host:5000/api/2.0/mlflow-artifacts/artifacts/1/x"
    )


def test_a_port_without_a_host_is_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="no host"):
        resolve_mlflow_artifacts_uri("mlflow-artifacts://5000/1/x", "http://h")


def test_scheme_registry(tmp_path: Path) -> None:
    assert isinstance(get_artifact_repository(str(tmp_path)), LocalArtifactRepository)
    assert isinstance(get_artifact_repository(tmp_path.as_uri()), LocalArtifactRepository)
    repo = get_artifact_repository(f"{ROOT_URL}/")
    assert isinstance(repo, HttpArtifactRepository)
    assert repo.root == "1/run/artifacts"
    with pytest.raises(InvalidParameterValue, match="not an artifact URL"):
        get_artifact_repository("http://h/some/page")
    with pytest.raises(InvalidParameterValue, match="'gopher' is not supported"):
        get_artifact_repository("gopher://h/x")
    register_artifact_repository(
        "Mem", lambda uri, tracking: LocalArtifactRepository(str(tmp_path))
    )
    try:
        assert isinstance(get_artifact_repository("mem://x"), LocalArtifactRepository)
    finally:
        REPOSITORIES.pop("mem")


def test_artifact_urls_are_split_and_checked() -> None:
    assert split_artifacts_url("https://h:1/p/api/2.0/mlflow-artifacts/artifacts/a%20b/c") == (
        "https://h:1/p",
        "a b/c",
    )
    assert split_artifacts_url("http://h/api/2.0/mlflow-artifacts/artifacts") == ("http://h", "")
    with pytest.raises(InvalidParameterValue):
        split_artifacts_url("http://h/api/2.0/mlflow-artifacts/artifacts/../../etc")
    with pytest.raises(InvalidParameterValue):
        split_artifacts_url("http://h/api/2.0/mlflow-artifacts/artifactsXYZ")


# -- the protocol on a mock transport --------------------------------------------------------
def test_listing_paths_are_relative_to_the_repository_root() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return listing(
            {"path": "z.txt", "is_dir": False, "file_size": 3},
            {"path": "a", "is_dir": True},
        )

    repo, _ = make_repo(handler)
    assert [(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts("sub")] == [
        ("sub/a", True, None),
        ("sub/z.txt", False, 3),
    ]
    assert seen[0].method == "GET"
    assert seen[0].url.path == "/pre/api/2.0/mlflow-artifacts/artifacts"
    assert seen[0].url.params["path"] == "1/run/artifacts/sub"
    assert [f.path for f in repo.list_artifacts()] == ["a", "z.txt"]


def test_a_file_listed_as_itself_lists_empty() -> None:
    repo, _ = make_repo(lambda r: listing({"path": "f.txt", "is_dir": False, "file_size": 1}))
    assert repo.list_artifacts("d/f.txt") == []


@pytest.mark.parametrize("name", ["..", "../x", "/etc/passwd", "a/../../b", "", ".", "a\\..\\b"])
def test_unsafe_names_from_the_server_are_refused(name: str) -> None:
    repo, _ = make_repo(lambda r: listing({"path": name, "is_dir": False}))
    with pytest.raises(InvalidParameterValue, match="unsafe"):
        repo.list_artifacts("d")


def test_traversal_in_local_arguments_is_refused(tmp_path: Path) -> None:
    repo, _ = make_repo(lambda r: httpx.Response(500))
    with pytest.raises(InvalidParameterValue):
        repo.log_artifact(__file__, "../elsewhere")
    with pytest.raises(InvalidParameterValue):
        repo.download_artifacts("/abs", str(tmp_path))
    root_repo, _ = make_repo(
        lambda r: httpx.Response(500), "http://h/api/2.0/mlflow-artifacts/artifacts"
    )
    with pytest.raises(InvalidParameterValue, match="root of the artifact store"):
        root_repo.delete_artifacts()


def test_upload_streams_the_file_and_rewinds_on_retry(tmp_path: Path) -> None:
    bodies: list[bytes] = []
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        bodies.append(request.read())
        return httpx.Response(503 if len(requests) == 1 else 200)

    data = os.urandom(200_000)
    local = tmp_path / "a b#c.json"
    local.write_bytes(data)
    repo, sleeps = make_repo(handler)
    repo.log_artifact(str(local), "dir")
    assert bodies == [data, data]
    assert sleeps == [0.5]
    put = requests[1]
    assert put.method == "PUT"
    assert (
        put.url.raw_path
        == b"/pre/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/dir/a%20b%23c.json"
    )
    assert put.headers["Content-Length"] == str(len(data))
    assert put.headers["Content-Type"] == "application/json"


def test_chunk_uploads_are_chunked_and_not_replayed() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        request.read()
        return httpx.Response(503, text="busy")

    repo, _ = make_repo(handler)
    with pytest.raises(RunyardError) as info:
        repo.write_chunks("x.bin", iter([b"ab", b"cd"]))
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert len(requests) == 1
    assert requests[0].headers["Transfer-Encoding"] == "chunked"
    assert requests[0].content == b"abcd"


class BrokenStream(httpx.SyncByteStream):
    """A body that breaks off after its first chunk."""

    def __iter__(self) -> Iterator[bytes]:
        yield b"partial"
        raise httpx.ReadError("connection reset")


def test_a_broken_download_starts_over_and_leaves_no_partial_file(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if "path" in request.url.params:
            return listing()  # a file lists empty
        if len(calls) == 2:
            return httpx.Response(200, stream=BrokenStream())
        return httpx.Response(200, content=b"complete")

    repo, sleeps = make_repo(handler)
    local = repo.download_artifacts("m/f.bin", str(tmp_path))
    assert Path(local).read_bytes() == b"complete"
    assert sleeps == [0.5]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["f.bin"]


def test_a_failed_download_leaves_nothing(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "path" in request.url.params:
            return listing()
        return httpx.Response(
            404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No such artifact"}
        )

    repo, _ = make_repo(handler)
    with pytest.raises(ResourceDoesNotExist):
        repo.download_artifacts("m/f.bin", str(tmp_path))
    assert list((tmp_path / "m").iterdir()) == []


# -- against a real server -------------------------------------------------------------------
@pytest.fixture
def server_repo(
    tracking_server: TrackingServer,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> HttpArtifactRepository:
    """A repository under a fresh root on the shared server (failures surface quickly)."""
    monkeypatch.setenv("RUNYARD_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("RUNYARD_HTTP_REQUEST_BACKOFF_FACTOR", "0.1")
    repo = get_artifact_repository(
        f"mlflow-artifacts:/tests/{uuid.uuid4().hex}/artifacts", tracking_server.url
    )
    assert isinstance(repo, HttpArtifactRepository)
    return repo


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_files_and_directories_round_trip(
    server_repo: HttpArtifactRepository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (src / "empty.txt").write_bytes(b"")
    (src / "with space.txt").write_text("spaces")
    (src / "ünï.txt").write_text("unicode")
    (src / "deep" / "er" / "leaf.json").write_text('{"a": 1}')
    server_repo.log_artifacts(str(src), "tree")
    single = tmp_path / "single.txt"
    single.write_text("one file")
    server_repo.log_artifact(str(single))

    top = server_repo.list_artifacts()
    assert [(f.path, f.is_dir) for f in top] == [("single.txt", False), ("tree", True)]
    sizes = {f.path: f.file_size for f in server_repo.list_artifacts("tree")}
    # MLflow's server leaves out a size of 0 (proto2 default), so an empty file has none.
    assert sizes.pop("tree/empty.txt") in (0, None)
    assert sizes == {
        "tree/big.bin": 3 * 1024 * 1024 + 17,
        "tree/deep": None,
        "tree/with space.txt": 6,
        "tree/ünï.txt": 7,
    }
    assert server_repo.list_artifacts("tree/big.bin") == []
    assert server_repo.list_artifacts("nothing/here") == []

    out = Path(server_repo.download_artifacts("tree", str(tmp_path / "dl")))
    assert out == (tmp_path / "dl" / "tree").resolve()
    assert _tree(out) == _tree(src)
    whole = Path(server_repo.download_artifacts("", str(tmp_path / "all")))
    assert _tree(whole / "tree") == _tree(src)
    assert (whole / "single.txt").read_text() == "one file"
    leaf = server_repo.download_artifacts("tree/deep/er/leaf.json", str(tmp_path / "one"))
    assert Path(leaf).read_text() == '{"a": 1}'
    assert b"".join(server_repo.open_chunks("tree/big.bin")) == (src / "big.bin").read_bytes()


@pytest.mark.slow
def test_chunk_writes_and_deletes(server_repo: HttpArtifactRepository, tmp_path: Path) -> None:
    server_repo.write_chunks("streamed/data.bin", (bytes([i]) * 1000 for i in range(50)))
    assert b"".join(server_repo.open_chunks("streamed/data.bin")) == b"".join(
        bytes([i]) * 1000 for i in range(50)
    )
    server_repo.write_chunks("streamed/other.txt", [b"x"])
    server_repo.delete_artifacts("streamed/data.bin")
    assert [f.path for f in server_repo.list_artifacts("streamed")] == ["streamed/other.txt"]
    server_repo.delete_artifacts("streamed")
    assert server_repo.list_artifacts() == []
    with pytest.raises(ResourceDoesNotExist):
        server_repo.download_artifacts("streamed/other.txt", str(tmp_path))
    with pytest.raises(ResourceDoesNotExist):
        b"".join(server_repo.open_chunks("missing.bin"))
