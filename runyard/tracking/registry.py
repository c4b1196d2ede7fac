"""One tracking store (and background writer) per tracking URI per process."""

from __future__ import annotations

import os
import threading
from urllib.parse import urlparse

from runyard.config import ENV, Settings
from runyard.errors import InvalidParameterValue
from runyard.store.base import TrackingStore
from runyard.tracking.offline import is_offline, offline_artifact_root, offline_tracking_uri
from runyard.tracking.writer import AsyncWriter

__all__ = ["get_store", "get_writer", "release", "resolve_tracking_uri"]

_lock = threading.Lock()
_stores: dict[str, TrackingStore] = {}
_writers: dict[str, AsyncWriter] = {}


def resolve_tracking_uri(uri: str) -> str:
    """Normalise a tracking URI: bare paths to a ``.db`` file become ``sqlite:///`` URIs; in
    offline mode (``RUNYARD_OFFLINE``) every URI means the local offline store."""
    if is_offline():
        return offline_tracking_uri()
    scheme = urlparse(uri).scheme
    if scheme == "" and uri.endswith(".db"):
        return f"sqlite:///{os.path.abspath(uri)}"
    return uri


def _artifact_root_for(uri: str) -> str:
    if is_offline() and uri == offline_tracking_uri():
        return offline_artifact_root()
    configured = ENV.ARTIFACT_ROOT.get()
    if configured:
        return configured
    return os.path.join(os.getcwd(), "runyard-artifacts")


def _open_store(uri: str) -> TrackingStore:
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in ("sqlite", "postgresql", "postgres"):
        from runyard.store.sql.store import SqlTrackingStore

        return SqlTrackingStore(
            uri,
            _artifact_root_for(uri),
            auto_upgrade=scheme == "sqlite",
            busy_timeout=ENV.SQLITE_BUSY_TIMEOUT.get(),
        )
    if scheme in ("http", "https"):
        from runyard.store.rest import RestStore

        return RestStore(uri)
    raise InvalidParameterValue(
        f"Unsupported tracking URI '{uri}'. Use sqlite:///path.db or postgresql://..."
    )


def get_store(uri: str) -> TrackingStore:
    """The shared store for ``uri``, opened (and migrated) on first use."""
    uri = resolve_tracking_uri(uri)
    store = _stores.get(uri)
    if store is None:
        with _lock:
            store = _stores.get(uri)
            if store is None:
                store = _stores[uri] = _open_store(uri)
    return store


def get_writer(uri: str) -> AsyncWriter:
    """The shared background writer for ``uri``."""
    uri = resolve_tracking_uri(uri)
    writer = _writers.get(uri)
    if writer is None:
        with _lock:
            writer = _writers.get(uri)
            if writer is None:
                settings = Settings.from_env()
                writer = _writers[uri] = AsyncWriter(
                    lambda: get_store(uri), settings.flush_interval, uri
                )
    return writer


def release(uri: str, flush: bool = True) -> None:
    """Forget the store and writer of ``uri`` and close the store's connections.

    With ``flush`` (the default) queued values are written first; without it they are dropped.
    The next use of ``uri`` opens a fresh store.
    """
    uri = resolve_tracking_uri(uri)
    with _lock:
        writer = _writers.pop(uri, None)
        store = _stores.pop(uri, None)
    if writer is not None:
        try:
            if flush:
                writer.flush()
        finally:
            writer.close()
    if store is not None:
        close = getattr(store, "close", None)
        if close is not None:
            close()
