"""The artifact repository interface and path-safety rules shared by every backend."""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from runyard.entities import FileInfo
from runyard.errors import InvalidParameterValue

__all__ = ["CHUNK_SIZE", "ArtifactRepository", "clean_artifact_path", "download_target"]

CHUNK_SIZE = 1024 * 1024


def clean_artifact_path(path: str | None) -> str:
    """A normalised relative POSIX path inside the artifact root; traversal is refused.

    ``None``/``""`` mean the root. Absolute paths, ``..`` segments and backslash tricks raise
    INVALID_PARAMETER_VALUE, so no caller can read or write outside a run's artifacts.
    """
    if not path:
        return ""
    candidate = path.replace("\\", "/")
    if candidate.startswith("/") or (len(candidate) > 1 and candidate[1] == ":"):
        raise InvalidParameterValue(
            f"Invalid artifact path: '{path}'. Artifact paths must be relative."
        )
    normal = posixpath.normpath(candidate)
    if normal == ".":
        return ""
    if normal == ".." or normal.startswith("../") or "\x00" in normal:
        raise InvalidParameterValue(
            f"Invalid artifact path: '{path}'. Paths must stay inside the artifact root."
        )
    return normal


class ArtifactRepository(Protocol):
    """Files under one artifact root URI (a run's or an experiment's)."""

    artifact_uri: str

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Copy one local file under ``artifact_path``."""
        ...

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Copy a local directory tree under ``artifact_path``."""
        ...

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path``, directories and files, sorted by path."""
        ...

    def download_artifacts(self, artifact_path: str = "", dst_path: str | None = None) -> str:
        """Copy a file or directory to ``dst_path`` (a temp dir by default); return its path."""
        ...

    def open_chunks(self, artifact_path: str) -> Iterator[bytes]:
        """Stream a file's bytes in chunks (no whole-file reads)."""
        ...

    def write_chunks(self, artifact_path: str, chunks: Iterable[bytes]) -> None:
        """Write a file from a stream of chunks."""
        ...

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Remove a file or directory tree."""
        ...


def download_target(artifact_path: str, dst_path: str | None) -> tuple[str, Path, Path]:
    """``(clean relative path, destination folder, local copy path)`` of a download: the copy
    lands at ``<dst_path>/<path>``; the folder is created (a new temporary one when None)."""
    rel = clean_artifact_path(artifact_path)
    dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="runyard-dl-"))
    dst.mkdir(parents=True, exist_ok=True)
    return rel, dst, (dst / rel if rel else dst)


def walk_files(local_dir: str) -> Iterator[tuple[str, str]]:
    """``(absolute_path, relative_posix_path)`` for every file under ``local_dir``."""
    for root, _dirs, files in os.walk(local_dir):
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, local_dir).replace(os.sep, "/")
            yield full, rel
