"""The expiring map of the auth hot path."""

from __future__ import annotations

import time

from runyard.server.auth.cache import MISSING, ExpiringDict


def test_values_expire_after_the_ttl() -> None:
    cache: ExpiringDict[str, int] = ExpiringDict(ttl=0.05, max_size=10)
    cache.put("a", 1)
    assert cache.get("a") == 1
    time.sleep(0.06)
    assert cache.get("a") is MISSING
    assert len(cache) == 0


def test_a_full_map_drops_expired_entries_first_then_starts_over() -> None:
    cache: ExpiringDict[int, int] = ExpiringDict(ttl=60, max_size=3)
    for i in range(3):
        cache.put(i, i)
    cache.put(3, 3)  # full, nothing expired: starts over with the new entry
    assert [cache.get(i) for i in range(4)] == [MISSING, MISSING, MISSING, 3]
    cache.pop(3)
    assert cache.get(3) is MISSING


def test_a_zero_ttl_keeps_nothing() -> None:
    cache: ExpiringDict[str, int] = ExpiringDict(ttl=0, max_size=10)
    cache.put("a", 1)
    assert cache.get("a") is MISSING
    cache.put("b", 2)
    cache.clear()
    assert len(cache) == 0
