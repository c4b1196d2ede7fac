"""Artifact repositories, chosen by the scheme of an artifact URI."""

from __future__ import annotations

from urllib.parse import urlparse

from runyard.errors import InvalidParameterValue
from runyard.store.artifact.base import ArtifactRepository, clean_artifact_path
from runyard.store.artifact.local import LocalArtifactRepository

__all__ = [
    "ArtifactRepository",
    "LocalArtifactRepository",
    "clean_artifact_path",
    "get_artifact_repository",
]


def get_artifact_repository(artifact_uri: str) -> ArtifactRepository:
    """The repository for an artifact URI: local paths and ``file://`` for now."""
    scheme = urlparse(artifact_uri).scheme
    # A one-letter "scheme" is a Windows drive letter, not a URI scheme.
    if scheme in ("", "file") or len(scheme) == 1:
        return LocalArtifactRepository(artifact_uri)
    raise InvalidParameterValue(
        f"Artifact URI scheme '{scheme}' is not supported yet ({artifact_uri}). "
        "Supported: local paths and file://."
    )
