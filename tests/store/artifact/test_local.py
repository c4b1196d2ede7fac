"""LocalArtifactRepository: files under one root, streamed, and never outside that root."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runyard.entities import FileInfo
from runyard.exceptions import MlflowException
from runyard.store.artifact import (
    LocalArtifactRepository,
    clean_artifact_path,
    get_artifact_repository,
)
from runyard.store.artifact.base import CHUNK_SIZE


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root" / "artifacts"


@pytest.fixture
def repo(root: Path) -> LocalArtifactRepository:
    return LocalArtifactRepository(str(root))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A local tree to upload: a.txt, sub/b.txt, sub/deeper/c.bin."""
    base = tmp_path / "src"
    (base / "sub" / "deeper").mkdir(parents=True)
    (base / "a.txt").write_text("a")
    (base / "sub" / "b.txt").write_text("bb")
    (base / "sub" / "deeper" / "c.bin").write_bytes(b"\x00\x01\x02")
    return base


def test_log_artifact_and_list(repo: LocalArtifactRepository, root: Path, src: Path) -> None:
    repo.log_artifact(str(src / "a.txt"))
    repo.log_artifact(str(src / "a.txt"), "x/y")
    assert (root / "a.txt").read_text() == "a"
    assert (root / "x" / "y" / "a.txt").read_text() == "a"
    assert repo.list_artifacts() == [FileInfo("a.txt", False, 1), FileInfo("x", True, None)]
    assert repo.list_artifacts("x") == [FileInfo("x/y", True, None)]
    assert repo.list_artifacts("x/y/") == [FileInfo("x/y/a.txt", False, 1)]
    assert repo.list_artifacts("x/y/a.txt") == []  # a file lists nothing
    assert repo.list_artifacts("missing") == []
    repo.log_artifact(str(src / "sub" / "b.txt"))
    repo.log_artifact(str(src / "a.txt"))  # overwrite is fine
    assert [f.path for f in repo.list_artifacts()] == ["a.txt", "b.txt", "x"]


def test_log_artifacts_tree(repo: LocalArtifactRepository, root: Path, src: Path) -> None:
    repo.log_artifacts(str(src))
    repo.log_artifacts(str(src), "copy")
    assert [f.path for f in repo.list_artifacts()] == ["a.txt", "copy", "sub"]
    assert repo.list_artifacts("sub") == [
        FileInfo("sub/b.txt", False, 2),
        FileInfo("sub/deeper", True, None),
    ]
    assert (root / "copy" / "sub" / "deeper" / "c.bin").read_bytes() == b"\x00\x01\x02"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "a.txt",
        "copy/a.txt",
        "copy/sub/b.txt",
        "copy/sub/deeper/c.bin",
        "sub/b.txt",
        "sub/deeper/c.bin",
    ]


def test_download(repo: LocalArtifactRepository, src: Path, tmp_path: Path) -> None:
    repo.log_artifacts(str(src))
    dst = tmp_path / "dst"
    one = Path(repo.download_artifacts("sub/b.txt", str(dst)))
    assert one == (dst / "sub" / "b.txt").resolve()
    assert one.read_text() == "bb"
    tree = Path(repo.download_artifacts("sub", str(tmp_path / "dst2")))
    assert (tree / "deeper" / "c.bin").read_bytes() == b"\x00\x01\x02"
    everything = Path(repo.download_artifacts("", str(tmp_path / "dst3")))
    assert sorted(p.name for p in everything.iterdir()) == ["a.txt", "sub"]
    temp = Path(repo.download_artifacts("a.txt"))  # no dst: a fresh temp dir
    assert temp.read_text() == "a"
    with pytest.raises(MlflowException) as info:
        repo.download_artifacts("nope.txt", str(dst))
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_open_chunks_streams(repo: LocalArtifactRepository, tmp_path: Path) -> None:
    payload = os.urandom(CHUNK_SIZE * 2 + 123)
    big = tmp_path / "big.bin"
    big.write_bytes(payload)
    repo.log_artifact(str(big), "data")
    chunks = list(repo.open_chunks("data/big.bin"))
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, 123]
    assert b"".join(chunks) == payload
    repo.write_chunks("empty.bin", [])
    assert list(repo.open_chunks("empty.bin")) == []
    for missing in ("nope.bin", "data"):
        with pytest.raises(MlflowException) as info:
            list(repo.open_chunks(missing))
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_write_chunks(repo: LocalArtifactRepository, root: Path) -> None:
    def gen() -> Iterator[bytes]:
        yield b"hello "
        yield b"world"

    repo.write_chunks("out/greeting.txt", gen())
    assert (root / "out" / "greeting.txt").read_bytes() == b"hello world"
    repo.write_chunks("out/greeting.txt", [b"replaced"])
    assert (root / "out" / "greeting.txt").read_bytes() == b"replaced"
    assert os.listdir(root / "out") == ["greeting.txt"]  # no temp files left behind


def test_write_chunks_failure_leaves_old_file(repo: LocalArtifactRepository, root: Path) -> None:
    repo.write_chunks("f.txt", [b"old"])

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        repo.write_chunks("f.txt", broken())
    assert (root / "f.txt").read_bytes() == b"old"
    assert os.listdir(root) == ["f.txt"]


def test_delete(repo: LocalArtifactRepository, root: Path, src: Path) -> None:
    repo.log_artifacts(str(src))
    repo.delete_artifacts("a.txt")
    assert not (root / "a.txt").exists()
    repo.delete_artifacts("sub")
    assert not (root / "sub").exists()
    repo.delete_artifacts("never-there")  # missing paths are fine
    repo.log_artifacts(str(src))
    repo.delete_artifacts()
    assert not root.exists() or list(root.iterdir()) == []


def test_file_uri_and_factory(tmp_path: Path, src: Path) -> None:
    spaced = tmp_path / "with space"
    repo = get_artifact_repository(f"file://{str(spaced).replace(' ', '%20')}")
    assert isinstance(repo, LocalArtifactRepository)
    repo.log_artifact(str(src / "a.txt"))
    assert (spaced / "a.txt").read_text() == "a"
    assert isinstance(get_artifact_repository(str(tmp_path)), LocalArtifactRepository)
    with pytest.raises(MlflowException) as info:
        get_artifact_repository("ftp://host/path")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, ""),
        ("", ""),
        (".", ""),
        ("a", "a"),
        ("a/b/", "a/b"),
        ("a//b", "a/b"),
        ("./a", "a"),
        ("a/../b", "b"),
        ("a\\b", "a/b"),
    ],
)
def test_clean_artifact_path(path: str | None, expected: str) -> None:
    assert clean_artifact_path(path) == expected


ESCAPES = ["../x", "/etc/passwd", "a/../../x", "..", "a/b/../../..", "..\\x", "C:/x", "a/\x00"]


@pytest.mark.parametrize("path", ESCAPES)
def test_path_traversal_refused(
    repo: LocalArtifactRepository, root: Path, src: Path, tmp_path: Path, path: str
) -> None:
    repo.log_artifact(str(src / "a.txt"))
    before = sorted(p.name for p in tmp_path.iterdir())
    operations: list[Callable[[], object]] = [
        lambda: clean_artifact_path(path),
        lambda: repo.log_artifact(str(src / "a.txt"), path),
        lambda: repo.log_artifacts(str(src), path),
        lambda: repo.list_artifacts(path),
        lambda: repo.download_artifacts(path, str(tmp_path / "dst")),
        lambda: list(repo.open_chunks(path)),
        lambda: repo.write_chunks(path, [b"evil"]),
        lambda: repo.delete_artifacts(path),
    ]
    for op in operations:
        with pytest.raises(MlflowException) as info:
            op()
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (root / "a.txt").read_text() == "a"
    assert not (root.parent / "x").exists()


@pytest.fixture
def escaping_link(root: Path, tmp_path: Path) -> Path:
    """``<root>/link`` → a directory outside the root holding ``secret.txt``."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root.mkdir(parents=True)
    (root / "link").symlink_to(outside, target_is_directory=True)
    return outside


@pytest.mark.parametrize(
    "operation",
    [
        "download_file",
        "download_dir",
        "open_chunks",
        "list",
        "delete_file",
        "delete_dir",
        "log_into_link",
        "log_artifacts_into_link",
    ],
)
def test_symlink_escaping_root_refused_for_existing_paths(
    repo: LocalArtifactRepository,
    escaping_link: Path,
    src: Path,
    tmp_path: Path,
    operation: str,
) -> None:
    ops: dict[str, Callable[[], object]] = {
        "download_file": lambda: repo.download_artifacts("link/secret.txt", str(tmp_path / "d")),
        "download_dir": lambda: repo.download_artifacts("link", str(tmp_path / "d")),
        "open_chunks": lambda: list(repo.open_chunks("link/secret.txt")),
        "list": lambda: repo.list_artifacts("link"),
        "delete_file": lambda: repo.delete_artifacts("link/secret.txt"),
        "delete_dir": lambda: repo.delete_artifacts("link"),
        "log_into_link": lambda: repo.log_artifact(str(src / "a.txt"), "link"),
        "log_artifacts_into_link": lambda: repo.log_artifacts(str(src), "link"),
    }
    with pytest.raises(MlflowException):
        ops[operation]()
    assert sorted(p.name for p in escaping_link.iterdir()) == ["secret.txt"]
    assert (escaping_link / "secret.txt").read_text() == "secret"
    assert not (tmp_path / "d" / "link" / "secret.txt").exists()


@pytest.mark.parametrize(
    "operation", ["write_chunks", "log_artifact_new_dir", "log_artifacts_new_dir"]
)
def test_symlink_escaping_root_refused_for_new_paths(
    repo: LocalArtifactRepository,
    escaping_link: Path,
    src: Path,
    operation: str,
) -> None:
    # The target does not exist yet, but its parent is the escaping link: writing there
    # would create files outside the root.
    ops: dict[str, Callable[[], object]] = {
        "write_chunks": lambda: repo.write_chunks("link/new.txt", [b"evil"]),
        "log_artifact_new_dir": lambda: repo.log_artifact(str(src / "a.txt"), "link/newdir"),
        "log_artifacts_new_dir": lambda: repo.log_artifacts(str(src), "link/newdir"),
    }
    with pytest.raises(MlflowException):
        ops[operation]()
    assert sorted(p.name for p in escaping_link.iterdir()) == ["secret.txt"]


def test_downloading_a_tree_does_not_follow_an_escaping_symlink(
    repo: LocalArtifactRepository, escaping_link: Path, src: Path, tmp_path: Path
) -> None:
    repo.log_artifact(str(src / "a.txt"))
    dst = Path(repo.download_artifacts("", str(tmp_path / "all")))
    assert (dst / "a.txt").read_text() == "a"
    assert not (dst / "link" / "secret.txt").exists()


def test_symlink_inside_root_is_fine(repo: LocalArtifactRepository, root: Path, src: Path) -> None:
    repo.log_artifacts(str(src), "data")
    (root / "alias").symlink_to(root / "data", target_is_directory=True)
    assert b"".join(repo.open_chunks("alias/a.txt")) == b"a"
    assert [f.path for f in repo.list_artifacts("alias")] == [
        "alias/a.txt",
        "alias/sub",
    ]


# Found by the API fuzz run: the OS errors of these paths reached the server as 500s.
@pytest.mark.parametrize("path", ["a" * 256, "d/" + "é" * 128, "/".join(["d" * 200] * 21)])
def test_paths_beyond_filesystem_limits_are_refused(
    repo: LocalArtifactRepository, path: str
) -> None:
    with pytest.raises(MlflowException, match="too long") as error:
        repo.list_artifacts(path)
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="too long"):
        repo.write_chunks(path, [b"x"])


def test_longest_name_fits_with_its_temp_file(repo: LocalArtifactRepository) -> None:
    name = "n" * 255  # the temp file beside it must not be longer than the limit
    repo.write_chunks(name, [b"data"])
    assert b"".join(repo.open_chunks(name)) == b"data"


def test_writing_over_a_directory_or_under_a_file_is_refused(
    repo: LocalArtifactRepository,
) -> None:
    repo.write_chunks("dir/file.txt", [b"x"])
    with pytest.raises(MlflowException, match="is a directory") as error:
        repo.write_chunks("dir", [b"y"])
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="lies under a file"):
        repo.write_chunks("dir/file.txt/inner", [b"y"])
    assert b"".join(repo.open_chunks("dir/file.txt")) == b"x"
