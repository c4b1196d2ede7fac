"""Artifacts on the local (or a mounted network) filesystem."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from runyard.entities import FileInfo
from runyard.errors import ResourceDoesNotExist
from runyard.store.artifact.base import CHUNK_SIZE, clean_artifact_path, walk_files

__all__ = ["LocalArtifactRepository", "local_path_from_uri"]


def local_path_from_uri(uri: str) -> str:
    """``file:///a/b`` or ``/a/b`` → ``/a/b``."""
    if uri.startswith("file:"):
        parsed = urlparse(uri)
        return unquote(parsed.path)
    return uri


class LocalArtifactRepository:
    """Reads and writes under ``artifact_uri``, streamed, never outside it."""

    def __init__(self, artifact_uri: str) -> None:
        self.artifact_uri = artifact_uri
        self.root = Path(os.path.abspath(local_path_from_uri(artifact_uri)))

    def _resolve(self, artifact_path: str | None) -> Path:
        rel = clean_artifact_path(artifact_path)
        target = self.root / rel if rel else self.root
        # Symlinks inside the root could still point outside it; refuse those too.
        if self.root.exists() and target.exists():
            real_root = self.root.resolve()
            real = target.resolve()
            if real != real_root and real_root not in real.parents:
                raise ResourceDoesNotExist(f"Artifact path '{artifact_path}' is outside the root")
        return target

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Copy one file to ``<root>/<artifact_path>/<basename>``."""
        dest_dir = self._resolve(artifact_path)
        dest_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_file, dest_dir / os.path.basename(local_file))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Copy a directory's contents to ``<root>/<artifact_path>/``."""
        dest_dir = self._resolve(artifact_path)
        dest_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(local_dir, dest_dir, dirs_exist_ok=True)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path``; a file path or missing path lists nothing."""
        rel = clean_artifact_path(path)
        target = self._resolve(rel)
        if not target.is_dir():
            return []
        infos = []
        for entry in sorted(os.scandir(target), key=lambda e: e.name):
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir():
                infos.append(FileInfo(child, True, None))
            else:
                infos.append(FileInfo(child, False, entry.stat().st_size))
        return infos

    def download_artifacts(self, artifact_path: str = "", dst_path: str | None = None) -> str:
        """Copy a file or a tree into ``dst_path``; return the local path of the copy."""
        source = self._resolve(artifact_path)
        if not source.exists():
            raise ResourceDoesNotExist(
                f"No such file or directory: '{artifact_path}' in {self.artifact_uri}"
            )
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="runyard-dl-"))
        dst.mkdir(parents=True, exist_ok=True)
        rel = clean_artifact_path(artifact_path)
        out = dst / rel if rel else dst
        if source.is_dir():
            shutil.copytree(source, out, dirs_exist_ok=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out)
        return str(out.resolve())

    def open_chunks(self, artifact_path: str) -> Iterator[bytes]:
        """Yield the file's bytes in 1 MiB chunks."""
        source = self._resolve(artifact_path)
        if not source.is_file():
            raise ResourceDoesNotExist(f"No such file: '{artifact_path}' in {self.artifact_uri}")
        with open(source, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    def write_chunks(self, artifact_path: str, chunks: Iterable[bytes]) -> None:
        """Write a file from chunks via a temp file + rename, so readers never see half."""
        target = self._resolve(artifact_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Remove a file or directory tree (missing paths are fine)."""
        target = self._resolve(artifact_path)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def iter_files(self, artifact_path: str | None = None) -> Iterator[tuple[str, str]]:
        """Every file below ``artifact_path`` as (absolute path, relative path)."""
        target = self._resolve(artifact_path)
        if target.is_dir():
            yield from walk_files(str(target))
