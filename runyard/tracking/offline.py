"""Offline mode (``RUNYARD_OFFLINE=1``): runs are logged into a local store, pushed later.

On a machine that cannot reach the tracking server (an HPC compute node, an air-gapped box) every
tracking URI is replaced by a SQLite store under ``RUNYARD_OFFLINE_DIR`` (default
``~/.runyard/offline``: ``runyard.db`` and ``artifacts/``). The runs get their real ids,
timestamps and steps there; ``runyard sync --to http://server`` pushes them later, keeping all
of it (see :mod:`runyard.tracking.offline_sync`).
"""

from __future__ import annotations

import os
from pathlib import Path

from runyard.config import ENV

__all__ = [
    "OFFLINE_DB",
    "is_offline",
    "offline_artifact_root",
    "offline_dir",
    "offline_tracking_uri",
]

#: The store's file name inside the offline directory.
OFFLINE_DB = "runyard.db"


def is_offline() -> bool:
    """True when ``RUNYARD_OFFLINE`` is on."""
    return ENV.OFFLINE.get()


def offline_dir() -> Path:
    """The offline directory (``RUNYARD_OFFLINE_DIR``), absolute."""
    return Path(os.path.expanduser(ENV.OFFLINE_DIR.get())).absolute()


def offline_tracking_uri() -> str:
    """``sqlite:///<offline dir>/runyard.db`` (the directory is created)."""
    directory = offline_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / OFFLINE_DB}"


def offline_artifact_root() -> str:
    """Where offline runs keep their artifacts: ``<offline dir>/artifacts``."""
    return str(offline_dir() / "artifacts")
