"""Artifacts on the local (or a mounted network) filesystem."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from runyard.entities import FileInfo
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.artifact.base import (
    CHUNK_SIZE,
    clean_artifact_path,
    download_target,
    walk_files,
)

__all__ = ["LocalArtifactRepository", "local_path_from_uri"]

#: The usual filesystem limits (bytes of one name, of a whole path): a longer artifact path is
#: the caller's mistake (INVALID_PARAMETER_VALUE), not the OS error ENAMETOOLONG.
_NAME_MAX = 255
_PATH_MAX = 4096


def local_path_from_uri(uri: str) -> str:
    """``file:///a/b`` or ``/a/b`` → ``/a/b``."""
    if uri.startswith("file:"):
        parsed = urlparse(uri)
        return unquote(parsed.path)
    return uri


def _check_length(artifact_path: str | None, rel: str, target: Path) -> None:
    def size(text: str) -> int:
        return len(text.encode("utf-8", "surrogatepass"))

    if any(size(part) > _NAME_MAX for part in rel.split("/")) or size(str(target)) >= _PATH_MAX:
        shown = (artifact_path or "")[:200]
        raise InvalidParameterValue(
            f"Artifact path '{shown}...' is too long: a name may have at most {_NAME_MAX} bytes "
            f"and a whole path fewer than {_PATH_MAX}."
        )


class LocalArtifactRepository:
    """Reads and writes under ``artifact_uri``, streamed, never outside it."""

    def __init__(self, artifact_uri: str) -> None:
        self.artifact_uri = artifact_uri
        self.root = Path(os.path.abspath(local_path_from_uri(artifact_uri)))

    def _resolve(self, artifact_path: str | None) -> Path:
        rel = clean_artifact_path(artifact_path)
        target = self.root / rel if rel else self.root
        _check_length(artifact_path, rel, target)
        # ``..`` is refused above, but a symlink inside the root could still lead outside it.
        # The deepest part of the path that exists decides where a read or a write lands.
        probe = target
        while not os.path.lexists(probe) and probe != self.root:
            probe = probe.parent
        if os.path.lexists(probe) and not self._inside(probe):
            raise InvalidParameterValue(
                f"Artifact path '{artifact_path}' leads outside the artifact root."
            )
        return target

    def local_path(self, artifact_path: str | None) -> Path:
        """Where ``artifact_path`` lives on disk (checked to stay inside the root)."""
        return self._resolve(artifact_path)

    def writable_path(self, artifact_path: str) -> Path:
        """Where the file ``artifact_path`` is written, its folder created.

        Raises:
            InvalidParameterValue: If the path is a directory, or lies under a file: the
                caller's mistake, not an I/O error.
        """
        target = self._resolve(artifact_path)
        if target.is_dir():
            raise InvalidParameterValue(
                f"Artifact path '{artifact_path}' is a directory; a file cannot replace it."
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidParameterValue(
                f"Artifact path '{artifact_path}' lies under a file, not a directory."
            ) from None
        return target

    def _inside(self, path: Path) -> bool:
        real_root = self.root.resolve()
        real = path.resolve()
        return real == real_root or real_root in real.parents

    def _copy_tree(self, source: Path, dest: Path, seen: frozenset[Path] = frozenset()) -> None:
        """Copy a tree, skipping symlinks that lead outside the root or back up the tree."""
        real = source.resolve()
        if real in seen:
            return
        seen = seen | {real}
        dest.mkdir(parents=True, exist_ok=True)
        for entry in os.scandir(source):
            path = Path(entry.path)
            if entry.is_symlink() and not self._inside(path):
                continue
            if entry.is_dir():
                self._copy_tree(path, dest / entry.name, seen)
            else:
                shutil.copyfile(path, dest / entry.name)

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
        _, _, out = download_target(artifact_path, dst_path)
        if source.is_dir():
            self._copy_tree(source, out)
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
        target = self.writable_path(artifact_path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:64]}.")
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
        """Every file below ``artifact_path`` as (absolute path, path relative to it)."""
        target = self._resolve(artifact_path)
        if target.is_dir():
            yield from walk_files(str(target))
