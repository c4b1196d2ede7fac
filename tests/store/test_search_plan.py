"""The metric-first split plan returns exactly the single query's rows, page by page."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from sqlalchemy import text

from runyard.entities import Metric, Param, ViewType
from runyard.store.sql.search_sql import fetch_run_page, plan_runs
from runyard.store.sql.store import SqlTrackingStore


def _seed(store: SqlTrackingStore) -> tuple[SqlTrackingStore, str]:
    exp = store.create_experiment("plan")
    rng = random.Random(7)
    for i in range(40):
        run_id = store.create_run(exp, "u", 1000 + i % 7, [], None).info.run_id
        kind = i % 5
        metrics = [Metric("m1", rng.random(), 1, 0)]
        if kind < 3:  # real values, with deliberate ties
            metrics.append(Metric("m2", float(i % 6), 1, 0))
        elif kind == 3:
            metrics.append(Metric("m2", float("nan"), 1, 0))
        store.log_batch(run_id, metrics, [Param("p", rng.choice("xyz"))])
    return store, exp


@pytest.fixture
def seeded(store: SqlTrackingStore) -> tuple[SqlTrackingStore, str]:
    return _seed(store)


ORDERS = [
    ["metrics.m2 DESC"],
    ["metrics.m2 ASC"],
    ["metrics.m2 DESC", "params.p ASC"],
    ["metrics.m2", "attributes.start_time ASC"],
    ["metrics.m2 DESC", "metrics.m1 ASC"],
]
FILTERS = [None, "params.p = 'x'", "metrics.m1 > 0.3"]


@pytest.mark.parametrize(("order_by", "filter_string"), list(itertools.product(ORDERS, FILTERS)))
def test_pages_match_single_query(
    seeded: tuple[SqlTrackingStore, str], order_by: list[str], filter_string: str | None
) -> None:
    store, exp = seeded
    plan = plan_runs([exp], filter_string, ViewType.ACTIVE_ONLY, order_by)
    assert plan.leading is not None
    with store.engine.connect() as conn:
        expected = [r.run_uuid for r in conn.execute(plan.single).all()]
        for limit in (1, 4, 7, 50):
            for offset in range(0, len(expected) + 2, 3):
                page = fetch_run_page(conn, plan, offset, limit)
                assert [r.run_uuid for r in page] == expected[offset : offset + limit]


def test_leading_part_walks_the_metric_index(tmp_path: Path) -> None:
    """On SQLite (whose planner this shape is for) the index is walked in order."""
    store, exp = _seed(SqlTrackingStore(f"sqlite:///{tmp_path / 'p.db'}", str(tmp_path)))
    plan = plan_runs([exp], "params.p = 'x'", ViewType.ACTIVE_ONLY, ["metrics.m2 DESC"])
    assert plan.leading is not None
    compiled = plan.leading.limit(10).compile(
        dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    with store.engine.connect() as conn:
        steps = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    assert any("ix_metric_summaries_key_nan_value" in step for step in steps), steps
    assert any("RIGHT PART OF ORDER BY" in step for step in steps), steps


def test_search_runs_uses_the_plan(seeded: tuple[SqlTrackingStore, str]) -> None:
    store, exp = seeded
    all_runs = store.search_runs([exp], order_by=["metrics.m2 DESC"], max_results=1000)
    seen = []
    token = None
    while True:
        page = store.search_runs(
            [exp], order_by=["metrics.m2 DESC"], max_results=6, page_token=token
        )
        seen.extend(r.info.run_id for r in page)
        token = page.token
        if not token:
            break
    assert seen == [r.info.run_id for r in all_runs]
    assert len(seen) == 40
