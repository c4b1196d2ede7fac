"""Artifacts proxied by a tracking server: MLflow's ``mlflow-artifacts`` service (spec §2.7).

The repository root is a URL ``http(s)://host[:port][/prefix]/api/2.0/mlflow-artifacts/artifacts/
<root>``. Uploads are one streamed ``PUT`` per file, downloads a streamed ``GET`` per file, listings
``GET .../artifacts?path=<root>/<dir>`` (the server answers with base names, which are checked and
made relative to this repository's root, as the local repository returns them), deletes ``DELETE``.
Nothing is read into memory whole.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from runyard.entities import FileInfo
from runyard.errors import InvalidParameterValue
from runyard.store.artifact.base import (
    CHUNK_SIZE,
    clean_artifact_path,
    download_target,
    walk_files,
)
from runyard.store.http_session import HttpSession, shared_session

__all__ = ["ARTIFACTS_ENDPOINT", "HttpArtifactRepository", "split_artifacts_url"]

#: Where the ``mlflow-artifacts`` service lives below a server's base URL.
ARTIFACTS_ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"
# Parallel transfers for directories: enough to hide round trips, few enough to be polite.
_MAX_WORKERS = 8


def split_artifacts_url(url: str) -> tuple[str, str]:
    """``http://h/p/api/2.0/mlflow-artifacts/artifacts/1/abc`` → ``("http://h/p", "1/abc")``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidParameterValue(f"Not an http(s) URL: '{url}'")
    prefix, found, tail = parts.path.partition(ARTIFACTS_ENDPOINT)
    if not found or (tail and not tail.startswith("/")):
        raise InvalidParameterValue(
            f"'{url}' is not an artifact URL of a tracking server: expected "
            f"http(s)://host[:port][/prefix]{ARTIFACTS_ENDPOINT}/<path>."
        )
    base = f"{parts.scheme}://{parts.netloc}{prefix.rstrip('/')}"
    return base, clean_artifact_path(unquote(tail).strip("/"))


def _safe_name(name: str, listed: str) -> str:
    """A name from a server listing, refused unless it is a plain relative path: the names
    end up in local paths on download, and nothing may climb out of the destination."""
    try:
        safe = bool(name) and clean_artifact_path(name) == name
    except InvalidParameterValue:
        safe = False
    if not safe:
        raise InvalidParameterValue(
            f"The server listed an unsafe artifact name {name!r} under '{listed}'."
        )
    return name


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


class HttpArtifactRepository:
    """Reads and writes artifacts through a tracking server's artifact proxy.

    Args:
        artifact_uri: ``http(s)://.../api/2.0/mlflow-artifacts/artifacts/<root>``.
        session: the HTTP session to use; by default one shared per server (connections stay
            warm across the many short-lived repositories a client creates).
    """

    def __init__(self, artifact_uri: str, session: HttpSession | None = None) -> None:
        base, root = split_artifacts_url(artifact_uri)
        self.artifact_uri = artifact_uri.rstrip("/")
        self.root = root
        # The service's parent is the base: files are ``artifacts/<path>`` and the listing is
        # ``artifacts?path=`` (no trailing slash, which a strict router would not match).
        self._http = session or shared_session(f"{base}{posixpath.dirname(ARTIFACTS_ENDPOINT)}/")

    # -- paths -------------------------------------------------------------------------------
    def _remote(self, artifact_path: str | None) -> str:
        """The path below the server's artifact destination (for ``?path=``)."""
        return _join(self.root, clean_artifact_path(artifact_path))

    def _url(self, artifact_path: str | None) -> str:
        """The URL of a file, relative to the session's base (percent-encoded)."""
        remote = self._remote(artifact_path)
        if not remote:
            raise InvalidParameterValue(
                "An artifact file path is needed here; the root of the artifact store is a "
                "directory."
            )
        return "artifacts/" + quote(remote, safe="/")

    # -- writes ------------------------------------------------------------------------------
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Upload one file to ``<root>/<artifact_path>/<basename>``."""
        rel = _join(clean_artifact_path(artifact_path), os.path.basename(local_file))
        self._upload(local_file, rel)

    def _upload(self, local_file: str, rel: str) -> None:
        mime = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        # The open file is streamed by httpx (Content-Length from its size) and rewound if the
        # PUT is retried; a PUT of a whole file is safe to repeat.
        with open(local_file, "rb") as handle:
            self._http.send("PUT", self._url(rel), content=handle, headers={"Content-Type": mime})

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload every file below ``local_dir`` to ``<root>/<artifact_path>/``."""
        dest = clean_artifact_path(artifact_path)
        jobs = [(full, _join(dest, rel)) for full, rel in walk_files(local_dir)]
        _run_parallel([partial(self._upload, full, rel) for full, rel in jobs])

    def write_chunks(self, artifact_path: str, chunks: Iterable[bytes]) -> None:
        """Upload a file from a stream of chunks (sent chunked; not retried once sending)."""
        mime = mimetypes.guess_type(artifact_path)[0] or "application/octet-stream"
        self._http.send(
            "PUT", self._url(artifact_path), content=chunks, headers={"Content-Type": mime}
        )

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Remove a file or a directory tree (the server deletes recursively)."""
        self._http.send("DELETE", self._url(artifact_path))

    # -- reads -------------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path``, as paths relative to this repository's root."""
        rel = clean_artifact_path(path)
        remote = self._remote(rel)
        doc = self._http.call("GET", "artifacts", params={"path": remote} if remote else None)
        infos = []
        for entry in doc.get("files", ()):
            name = _safe_name(str(entry.get("path", "")), remote)
            size = entry.get("file_size")
            is_dir = bool(entry.get("is_dir", False))
            infos.append(FileInfo(_join(rel, name), is_dir, None if size is None else int(size)))
        # Older servers list a file as itself; the contract is an empty listing for a file.
        if (
            rel
            and len(infos) == 1
            and not infos[0].is_dir
            and infos[0].path == _join(rel, posixpath.basename(rel))
        ):
            return []
        return sorted(infos, key=lambda info: info.path)

    def _tree(self, listing: list[FileInfo]) -> tuple[list[str], list[str]]:
        """``(directories, files)`` below a listing, by walking the sub-listings."""
        dirs: list[str] = []
        files: list[str] = []
        pending = list(listing)
        while pending:
            info = pending.pop()
            if info.is_dir:
                dirs.append(info.path)
                pending.extend(self.list_artifacts(info.path))
            else:
                files.append(info.path)
        return dirs, files

    def download_artifacts(self, artifact_path: str = "", dst_path: str | None = None) -> str:
        """Download a file or a directory tree into ``dst_path`` (a temp dir by default).

        The copy lands at ``<dst_path>/<artifact_path>``; its local path is returned.
        """
        rel, dst, out = download_target(artifact_path, dst_path)
        # A directory lists its children; a file (or nothing) lists empty, and then the GET
        # decides: bytes, or RESOURCE_DOES_NOT_EXIST.
        listing = self.list_artifacts(rel)
        if rel and not listing:
            self._download(rel, out)
            return str(out.resolve())
        dirs, files = self._tree(listing)
        out.mkdir(parents=True, exist_ok=True)
        for directory in dirs:
            (dst / directory).mkdir(parents=True, exist_ok=True)
        _run_parallel([partial(self._download, f, dst / f) for f in files])
        return str(out.resolve())

    def _download(self, rel: str, dest: Path) -> None:
        self._http.download(self._url(rel), str(dest))

    def open_chunks(self, artifact_path: str) -> Iterator[bytes]:
        """Stream a file's bytes in 1 MiB chunks."""
        yield from self._http.iter_bytes(self._url(artifact_path), CHUNK_SIZE)


def _run_parallel(tasks: list[Callable[[], None]]) -> None:
    """Run transfers on a few threads; the first failure is raised after all have ended."""
    if len(tasks) <= 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
    for future in futures:
        future.result()
