"""Paged metric history (what the official client does for long series: 25,000 points a page)
reads only the page from the database and returns exactly the unpaged history, in order."""

from __future__ import annotations

import math
import sys

from runyard.entities import Metric
from runyard.store.search.paging import decode_keyset_token, encode_page_token
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


def test_next_pages_are_read_from_the_last_key(store: SqlTrackingStore, run_id: str) -> None:
    """A runyard token resumes after its last point's key (a range scan, not an OFFSET); an
    offset-only token (MLflow's) still resumes at its offset."""
    points = [Metric("m", float(i), 1000 + i, i) for i in range(10)]
    points += [Metric("m", math.inf, 2000, 0), Metric("m", -math.inf, 2000, 0)]
    store.log_batch(run_id, points)
    first = store.get_metric_history(run_id, "m", 4)
    assert first.token is not None
    offset, after = decode_keyset_token(first.token, 4)
    assert offset == 4
    assert after == [1003, 3, 3.0, False]  # timestamp, step, stored value, is_nan
    # The key decides, not the offset: a token claiming offset 0 after step 5 goes on at 6.
    crafted = encode_page_token(0, [1005, 5, 5.0, False])
    assert [m.step for m in store.get_metric_history(run_id, "m", 3, crafted)] == [6, 7, 8]
    mlflow_token = encode_page_token(8)
    rest = store.get_metric_history(run_id, "m", 10, mlflow_token)
    big = sys.float_info.max  # ±Inf is stored (and read back) as ±max double, as in MLflow
    assert [(m.step, m.value) for m in rest] == [(8, 8.0), (9, 9.0), (0, -big), (0, big)]
    # Pages of one point each across the ±Inf tie lose nothing.
    seen, token = [], None
    while True:
        page = store.get_metric_history(run_id, "m", 1, token)
        seen += [m.value for m in page]
        token = page.token
        if not token:
            break
    assert seen == [float(i) for i in range(10)] + [-big, big]
