"""``runyard.artifacts``: download and read artifacts by URI (``runs:/<run_id>/path`` or a path).

Example::

    text = runyard.artifacts.load_text(f"runs:/{run_id}/notes.txt")
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from typing import Any

from runyard.entities import FileInfo
from runyard.errors import InvalidParameterValue
from runyard.store.artifact import get_artifact_repository
from runyard.tracking.client import Client
from runyard.tracking.uri import get_tracking_uri

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_image", "load_text"]


def _split_runs_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("runs:/") :].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise InvalidParameterValue(f"Invalid runs URI '{uri}': expected runs:/<run_id>/<path>.")
    return run_id, path


def _root_and_path(artifact_uri: str) -> tuple[str, str]:
    if artifact_uri.startswith("runs:"):
        run_id, path = _split_runs_uri(artifact_uri)
        return Client().get_run(run_id).info.artifact_uri, path
    trimmed = artifact_uri.rstrip("/")
    return posixpath.dirname(trimmed), posixpath.basename(trimmed)


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | None = None,
    tracking_uri: str | None = None,
    path: str | None = None,
) -> str:
    """Download a file or directory; give ``artifact_uri``, or ``run_id`` (+ ``artifact_path``).

    ``path`` is accepted as another name for ``artifact_path`` (older examples use it).
    """
    if path is not None:
        if artifact_path is not None:
            raise InvalidParameterValue("Pass artifact_path or path, not both.")
        artifact_path = path
    if (artifact_uri is None) == (run_id is None):
        raise InvalidParameterValue("Pass either artifact_uri or run_id, not both.")
    if run_id is not None:
        return Client(tracking_uri).download_artifacts(run_id, artifact_path or "", dst_path)
    if artifact_path is not None:
        raise InvalidParameterValue("artifact_path goes with run_id; put it in artifact_uri.")
    assert artifact_uri is not None
    if artifact_uri.startswith("runs:"):
        rid, path = _split_runs_uri(artifact_uri)
        return Client(tracking_uri).download_artifacts(rid, path, dst_path)
    root, path = _root_and_path(artifact_uri)
    repo = get_artifact_repository(root, tracking_uri or get_tracking_uri())
    return repo.download_artifacts(path, dst_path)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    """The files and directories directly under an artifact location."""
    if run_id is not None:
        return Client(tracking_uri).list_artifacts(run_id, artifact_path)
    if artifact_uri is None:
        raise InvalidParameterValue("Pass either artifact_uri or run_id.")
    if artifact_uri.startswith("runs:"):
        rid, path = _split_runs_uri(artifact_uri)
        return Client(tracking_uri).list_artifacts(rid, path or None)
    repo = get_artifact_repository(artifact_uri, tracking_uri or get_tracking_uri())
    return repo.list_artifacts(None)


def _read(artifact_uri: str) -> str:
    with tempfile.TemporaryDirectory(prefix="runyard-read-") as tmp:
        local = download_artifacts(artifact_uri=artifact_uri, dst_path=tmp)
        if os.path.isdir(local):
            raise InvalidParameterValue(f"'{artifact_uri}' is a directory, not a file.")
        with open(local, encoding="utf-8") as handle:
            return handle.read()


def load_text(artifact_uri: str) -> str:
    """The text of an artifact file."""
    return _read(artifact_uri)


def load_dict(artifact_uri: str) -> Any:
    """A JSON or YAML artifact as a dict."""
    text = _read(artifact_uri)
    if artifact_uri.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameterValue(f"'{artifact_uri}' is not valid JSON: {exc}") from None


def load_image(artifact_uri: str) -> Any:
    """An image artifact as a PIL image (needs Pillow)."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="runyard-read-") as tmp:
        local = download_artifacts(artifact_uri=artifact_uri, dst_path=tmp)
        with Image.open(local) as img:
            img.load()
            return img.copy()
