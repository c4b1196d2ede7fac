"""Paged metric history (what the official client does for long series: 25,000 points a page)
reads only the page from the database and returns exactly the unpaged history, in order."""

from __future__ import annotations

import math

from runyard.entities import Metric
from runyard.store.search.paging import encode_page_token
from runyard.store.sql.store import SqlTrackingStore


def _key(m: Metric) -> tuple[int, int, str]:
    return (m.timestamp, m.step, repr(m.value))


def test_pages_concatenate_to_the_whole_history(store: SqlTrackingStore, run_id: str) -> None:
    points = [Metric("loss", float(i % 7), 100 + i // 3, i) for i in range(2500)]
    points += [Metric("loss", math.nan, 400, 5), Metric("loss", 0.0, 400, 5)]  # a NaN/0.0 tie
    for start in range(0, len(points), 1000):
        store.log_batch(run_id, points[start : start + 1000])
    whole = store.get_metric_history(run_id, "loss")
    assert len(whole) == len(points)
    for size in (1, 999, 1000, 2501, 2502, 5000):
        paged: list[Metric] = []
        token = None
        pages = 0
        while True:
            page = store.get_metric_history(run_id, "loss", size, token)
            assert len(page) <= size
            paged += page
            pages += 1
            token = page.token
            if not token:
                break
        assert [_key(m) for m in paged] == [_key(m) for m in whole]
        assert pages == max(1, -(-len(points) // size))


def test_last_page_has_no_token_and_past_the_end_is_empty(
    store: SqlTrackingStore, run_id: str
) -> None:
    store.log_batch(run_id, [Metric("m", float(i), i, i) for i in range(10)])
    page = store.get_metric_history(run_id, "m", 10)
    assert len(page) == 10
    assert page.token is None
    beyond = store.get_metric_history(run_id, "m", 5, encode_page_token(50))
    assert list(beyond) == []
    assert beyond.token is None
    rest = store.get_metric_history(run_id, "m", None, encode_page_token(7))
    assert [m.step for m in rest] == [7, 8, 9]
    assert store.get_metric_history(run_id, "absent", 5) == []
