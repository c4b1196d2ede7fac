"""The library versions each autolog integration is tested against.

A version outside its range is not refused: autologging logs one warning (through ``logging``,
never ``warnings.warn``, which would break programs that turn warnings into errors) and carries on,
unless the user asked for ``disable_for_unsupported_versions``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

__all__ = [
    "SUPPORTED_VERSIONS",
    "VersionRange",
    "check_version",
    "installed_version",
    "is_supported",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionRange:
    """Versions ``minimum`` .. ``maximum`` (any patch release of it) of a library's distribution.

    ``module`` is the import name whose presence makes the integration available.
    """

    distribution: str
    module: str
    minimum: str
    maximum: str


#: Integration name → the library versions it supports (inclusive; ``maximum`` covers its
#: patch releases: "1.9" admits 1.9.4).
SUPPORTED_VERSIONS: dict[str, VersionRange] = {
    "sklearn": VersionRange("scikit-learn", "sklearn", "1.3", "1.9"),
    "xgboost": VersionRange("xgboost", "xgboost", "2.0", "3.2"),
    "lightgbm": VersionRange("lightgbm", "lightgbm", "4.0", "4.7"),
    "pytorch": VersionRange("torch", "torch", "2.1", "2.13"),
}

_warned: set[tuple[str, str]] = set()


def _release(version: str) -> tuple[int, ...]:
    """The numeric release part: ``"2.13.0+cpu"`` → (2, 13, 0), ``"1.4rc1"`` → (1, 4)."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    if match is None:
        return ()
    return tuple(int(part) for part in match.group(0).split("."))


def is_supported(integration: str, version: str) -> bool:
    """Whether ``version`` of the integration's library lies in its supported range."""
    rng = SUPPORTED_VERSIONS.get(integration)
    if rng is None:
        return True
    release = _release(version)
    maximum = _release(rng.maximum)
    return _release(rng.minimum) <= release and release[: len(maximum)] <= maximum


def installed_version(integration: str) -> str | None:
    """The installed version of the integration's library, or None when it is not installed."""
    import importlib.metadata  # only when autolog is enabled: it costs ~13 ms at import

    rng = SUPPORTED_VERSIONS.get(integration)
    if rng is None:
        return None
    try:
        return importlib.metadata.version(rng.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_version(integration: str, silent: bool = False) -> bool:
    """True when the installed library version is supported (or unknown).

    An unsupported version logs one warning per process (none when ``silent``) and returns False.
    """
    version = installed_version(integration)
    if version is None or is_supported(integration, version):
        return True
    key = (integration, version)
    if not silent and key not in _warned:
        _warned.add(key)
        rng = SUPPORTED_VERSIONS[integration]
        log.warning(
            "You are using an unsupported version of %s (%s; autologging supports %s to %s.x). "
            "If you encounter errors during autologging, try upgrading / downgrading %s to a "
            "supported version, or try upgrading runyard.",
            rng.distribution,
            version,
            rng.minimum,
            rng.maximum,
            rng.distribution,
        )
    return False
