"""Artifact repositories, chosen by the scheme of an artifact URI.

``REPOSITORIES`` maps a URI scheme to a factory ``(artifact_uri, tracking_uri) -> repository``;
a new backend (``s3``, ...) is one entry, added with :func:`register_artifact_repository`.
Factories import their backend lazily, so ``import runyard`` does not pay for httpx or boto3.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from runyard.config import ENV
from runyard.errors import InvalidParameterValue
from runyard.store.artifact.base import ArtifactRepository, clean_artifact_path
from runyard.store.artifact.local import LocalArtifactRepository

__all__ = [
    "REPOSITORIES",
    "ArtifactRepository",
    "LocalArtifactRepository",
    "clean_artifact_path",
    "get_artifact_repository",
    "register_artifact_repository",
    "resolve_mlflow_artifacts_uri",
]

#: ``(artifact_uri, tracking_uri) -> repository`` for one URI scheme.
RepositoryFactory = Callable[[str, str | None], ArtifactRepository]

_ARTIFACTS_ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"


def _local(artifact_uri: str, tracking_uri: str | None) -> ArtifactRepository:
    return LocalArtifactRepository(artifact_uri)


def _http(artifact_uri: str, tracking_uri: str | None) -> ArtifactRepository:
    from runyard.store.artifact.http import HttpArtifactRepository

    return HttpArtifactRepository(artifact_uri)


def _s3(artifact_uri: str, tracking_uri: str | None) -> ArtifactRepository:
    from runyard.store.artifact.s3 import S3ArtifactRepository

    return S3ArtifactRepository(artifact_uri)


def _mlflow_artifacts(artifact_uri: str, tracking_uri: str | None) -> ArtifactRepository:
    return _http(resolve_mlflow_artifacts_uri(artifact_uri, tracking_uri), tracking_uri)


REPOSITORIES: dict[str, RepositoryFactory] = {
    "": _local,
    "file": _local,
    "http": _http,
    "https": _http,
    "mlflow-artifacts": _mlflow_artifacts,
    "s3": _s3,
}


def register_artifact_repository(scheme: str, factory: RepositoryFactory) -> None:
    """Make ``scheme://...`` artifact URIs open with ``factory``."""
    REPOSITORIES[scheme.lower()] = factory


def resolve_mlflow_artifacts_uri(artifact_uri: str, tracking_uri: str | None = None) -> str:
    """The HTTP URL an ``mlflow-artifacts:`` URI stands for, against a tracking server.

    ``mlflow-artifacts:/1/abc`` with tracking URI ``http://h:5000/prefix`` →
    ``http://h:5000/prefix/api/2.0/mlflow-artifacts/artifacts/1/abc``;
    ``mlflow-artifacts://other:6000/1/abc`` keeps the scheme and prefix but uses that host.
    Without ``tracking_uri`` the tracking URI of the environment is used.
    """
    tracking = tracking_uri or ENV.TRACKING_URI.get() or ""
    track = urlsplit(tracking)
    if track.scheme not in ("http", "https") or not track.netloc:
        shown = f"'{track.scheme}://...'" if track.scheme else repr(tracking or "unset")
        raise InvalidParameterValue(
            f"The artifact URI '{artifact_uri}' is served by a tracking server, but the tracking "
            f"URI is {shown}: an mlflow-artifacts: URI needs an http(s):// tracking URI. Set it "
            "with runyard.set_tracking_uri('http://host:5000') or MLFLOW_TRACKING_URI."
        )
    parts = urlsplit(artifact_uri)
    # ``mlflow-artifacts://5000/x`` parses 5000 as a host name: a port without a host.
    if parts.hostname and re.fullmatch(r"[0-9.]+", parts.hostname) and parts.port is None:
        raise InvalidParameterValue(
            f"The artifact URI '{artifact_uri}' has a port number ({parts.hostname}) but no host."
        )
    netloc = parts.netloc or track.netloc
    path = re.sub(r"/+", "/", f"{track.path.rstrip('/')}{_ARTIFACTS_ENDPOINT}/{parts.path}")
    return f"{track.scheme}://{netloc}{path.rstrip('/')}"


def get_artifact_repository(
    artifact_uri: str, tracking_uri: str | None = None
) -> ArtifactRepository:
    """The repository for an artifact URI.

    Args:
        artifact_uri: a local path, ``file://``, ``mlflow-artifacts:`` (proxied by the tracking
            server) or an ``http(s)://.../api/2.0/mlflow-artifacts/artifacts/...`` URL.
        tracking_uri: the tracking server ``mlflow-artifacts:`` URIs resolve against (default:
            the tracking URI of the environment).
    """
    scheme = urlsplit(artifact_uri).scheme.lower()
    # A one-letter "scheme" is a Windows drive letter, not a URI scheme.
    if len(scheme) == 1:
        scheme = ""
    factory = REPOSITORIES.get(scheme)
    if factory is None:
        supported = ", ".join(f"{s}:" for s in sorted(REPOSITORIES) if s)
        raise InvalidParameterValue(
            f"Artifact URI scheme '{scheme}' is not supported ({artifact_uri}). "
            f"Supported: local paths, {supported}"
        )
    return factory(artifact_uri, tracking_uri)
