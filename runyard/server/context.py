"""What handlers share: the settings, the tracking store and the artifact locations."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from typing import Any

from runyard.errors import InvalidParameterValue
from runyard.server.settings import PROXY_ROOT, ServerSettings
from runyard.store.artifact import ArtifactRepository, clean_artifact_path, get_artifact_repository
from runyard.store.base import TrackingStore

__all__ = ["ServerContext"]


@dataclass
class ServerContext:
    """Built once per process by ``create_app``."""

    settings: ServerSettings
    store: TrackingStore | None
    #: A separate registry database (``--registry-store-uri``); None: the tracking store's.
    registry_store: Any = None
    #: A read-only store on a database replica (``--read-replica-backend-store-uri``); None: none.
    read_store: TrackingStore | None = None
    #: The auth layer (``--app-name basic-auth``); None: auth is off.
    auth: Any = None

    def for_reads(self) -> ServerContext:
        """The context of endpoints flagged ``reads_replica``: the replica as tracking store
        (and registry, unless the registry has its own database); this context when none."""
        if self.read_store is None:
            return self
        return replace(self, store=self.read_store, read_store=None)

    def tracking(self) -> TrackingStore:
        """The tracking store; an artifacts-only server has none."""
        if self.store is None:
            raise InvalidParameterValue("This server only serves artifacts (--artifacts-only).")
        return self.store

    def registry(self) -> Any:
        """The store that holds the model registry."""
        if self.registry_store is not None:
            return self.registry_store
        return self.tracking()

    def proxy_repo(self, path: str = "") -> ArtifactRepository:
        """The repository for ``mlflow-artifacts:/<path>``, under ``--artifacts-destination``."""
        rel = clean_artifact_path(path)
        root = self.settings.artifacts_destination.rstrip("/")
        return get_artifact_repository(f"{root}/{rel}" if rel else root)

    def repo_for(self, artifact_uri: str) -> ArtifactRepository:
        """The repository behind an artifact URI the store handed out (proxied or direct)."""
        if artifact_uri.startswith(PROXY_ROOT):
            path = artifact_uri[len(PROXY_ROOT) :]
            if path.startswith("//"):  # mlflow-artifacts://host:port/path: the host is ours
                path = "/" + path[2:].partition("/")[2]
            return self.proxy_repo(posixpath.normpath(path.lstrip("/")) if path else "")
        return get_artifact_repository(artifact_uri)
