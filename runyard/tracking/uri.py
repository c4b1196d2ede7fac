"""The process-wide current tracking URI (``set_tracking_uri`` / ``get_tracking_uri``)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from runyard.config import ENV, default_tracking_uri

__all__ = [
    "configured_registry_uri",
    "get_registry_uri",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "set_registry_uri",
    "set_tracking_uri",
]

_tracking_uri: str | None = None


def set_tracking_uri(uri: str | Path) -> None:
    """Set where runs are tracked: ``sqlite:///runyard.db``, ``postgresql://...``, a path."""
    global _tracking_uri
    text = str(uri)
    if isinstance(uri, Path) or (urlparse(text).scheme == "" and text.endswith(".db")):
        text = f"sqlite:///{os.path.abspath(text)}"
    _tracking_uri = text


def get_tracking_uri() -> str:
    """The URI set by ``set_tracking_uri``, else the environment, else ``sqlite:///runyard.db``."""
    if _tracking_uri is not None:
        return _tracking_uri
    return ENV.TRACKING_URI.get() or default_tracking_uri()


def is_tracking_uri_set() -> bool:
    """True when a URI was set explicitly or through the environment."""
    return _tracking_uri is not None or ENV.TRACKING_URI.is_set()


_registry_uri: str | None = None


def set_registry_uri(uri: str) -> None:
    """Set the model registry URI (defaults to the tracking URI)."""
    global _registry_uri
    _registry_uri = uri


def get_registry_uri() -> str:
    """The registry URI: set explicitly, else ``RUNYARD_REGISTRY_URI``, else the tracking URI."""
    return _registry_uri or ENV.REGISTRY_URI.get() or get_tracking_uri()


def configured_registry_uri() -> str | None:
    """The registry URI when one was set (explicitly or in the environment), else None."""
    return _registry_uri or ENV.REGISTRY_URI.get() or None
