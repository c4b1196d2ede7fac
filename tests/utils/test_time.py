"""Millisecond times: now_ms and the durations the CLI and the UI print."""

from __future__ import annotations

import time

import pytest

from runyard.utils.time import format_duration, now_ms


def test_now_ms_is_epoch_milliseconds() -> None:
    assert abs(now_ms() - time.time() * 1000) < 1000


@pytest.mark.parametrize(
    ("elapsed_ms", "text"),
    [
        (0, "0ms"),
        (850, "850ms"),
        (12_345, "12.3s"),
        (245_000, "4m 05s"),
        (2 * 3_600_000 + 3 * 60_000, "2h 03m"),
        (3 * 86_400_000 + 4 * 3_600_000, "3d 4h"),
    ],
)
def test_format_duration(elapsed_ms: int, text: str) -> None:
    assert format_duration(1_000, 1_000 + elapsed_ms) == text


def test_unknown_ends_and_clock_skew() -> None:
    assert format_duration(None, 5) == ""
    assert format_duration(5, None) == ""
    assert format_duration(2_000, 1_000) == "0ms"  # an end before the start (clock skew)
