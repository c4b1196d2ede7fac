"""A small expiring map for the per-request hot path.

Every authenticated request looks up its credential and its permission here, so a lookup must
cost a dict access and a clock read, no lock and no bookkeeping (cachetools' TTLCache costs
several times that per access). Entries expire ``ttl`` seconds after they are stored; when the
map reaches ``max_size`` the expired entries are dropped, and if that frees nothing the map
starts over. Single dict operations are atomic under the GIL, so threads may share it.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

__all__ = ["MISSING", "ExpiringDict"]

K = TypeVar("K")
V = TypeVar("V")
#: What :meth:`ExpiringDict.get` returns for an absent or expired key.
MISSING = object()


class ExpiringDict(Generic[K, V]):
    """``key → value`` for ``ttl`` seconds (ttl ≤ 0: nothing is kept)."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self._ttl = ttl
        self._max = max(1, max_size)
        self._data: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | object:
        """The value, or :data:`MISSING`."""
        found = self._data.get(key)
        if found is None:
            return MISSING
        if found[1] < time.monotonic():
            self._data.pop(key, None)
            return MISSING
        return found[0]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``ttl`` seconds."""
        if self._ttl <= 0:
            return
        now = time.monotonic()
        if len(self._data) >= self._max:
            self._data = {k: v for k, v in list(self._data.items()) if v[1] >= now}
            if len(self._data) >= self._max:
                self._data = {}
        self._data[key] = (value, now + self._ttl)

    def pop(self, key: K) -> None:
        """Forget one key."""
        self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._data = {}

    def __len__(self) -> int:
        return len(self._data)
