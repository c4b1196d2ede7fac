"""Where the ``local`` target keeps its deployments: one directory per deployment under the
state root, holding ``deployment.json`` (written atomically) and one ``rev-<n>/`` directory per
revision (``model/`` copy and ``server.log``).

The state root is the target URI's suffix (``local:/srv/deployments``) or
``RUNYARD_DEPLOYMENTS_DIR`` (default ``~/.local/state/runyard/deployments``). Changes to one
deployment are serialised across processes with an advisory lock on ``<dir>/.lock``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runyard.config import ENV
from runyard.errors import InvalidParameterValue

if sys.platform != "win32":
    import fcntl

__all__ = [
    "STATE_FILE",
    "deployment_dir",
    "list_names",
    "locked",
    "now",
    "read_state",
    "state_root",
    "validate_name",
    "write_state",
]

STATE_FILE = "deployment.json"
_LOCK_FILE = ".lock"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def validate_name(name: str) -> str:
    """``name`` when it is a valid deployment name (letters, digits, ``_`` and ``-``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterValue(
            f"Invalid deployment name {name!r}: use only letters, digits, '_' and '-'."
        )
    return name


def state_root(target_uri: str) -> Path:
    """The directory holding every deployment of ``target_uri`` (``local`` or ``local:<dir>``)."""
    suffix = target_uri.partition(":")[2]
    raw = suffix if suffix.strip() else ENV.DEPLOYMENTS_DIR.get()
    return Path(os.path.abspath(os.path.expanduser(raw)))


def deployment_dir(root: Path, name: str) -> Path:
    """The directory of the deployment ``name`` (which is validated first)."""
    return root / validate_name(name)


def read_state(directory: Path) -> dict[str, Any] | None:
    """The saved state of the deployment in ``directory``, or None when there is none."""
    try:
        text = (directory / STATE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    state = json.loads(text)
    if not isinstance(state, dict):
        raise ValueError(f"{directory / STATE_FILE} does not hold a JSON object")
    return state


def write_state(directory: Path, state: dict[str, Any]) -> None:
    """Save ``state`` so that readers see either the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, directory / STATE_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def list_names(root: Path) -> list[str]:
    """Names of the deployments under ``root`` that have a saved state, sorted."""
    if not root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in root.iterdir()
        if _NAME.match(entry.name) and (entry / STATE_FILE).is_file()
    )


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the deployment's advisory lock (other runyard processes wait for it)."""
    if sys.platform == "win32":  # pragma: no cover - no flock; Windows runs unserialised
        yield
        return
    with open(directory / _LOCK_FILE, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def now() -> str:
    """The current UTC time as ISO 8601 with seconds (``2026-01-31T12:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
