"""Millisecond timestamps, the unit of every time in the tracking API."""

from __future__ import annotations

import time

__all__ = ["format_duration", "now_ms"]


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def format_duration(start_ms: int | None, end_ms: int | None) -> str:
    """The time between two epoch-millisecond times as people read it: ``850ms``, ``12.3s``,
    ``4m 05s``, ``2h 03m``, ``3d 4h``; "" when either is unknown (an unfinished run)."""
    if start_ms is None or end_ms is None:
        return ""
    ms = max(end_ms - start_ms, 0)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
