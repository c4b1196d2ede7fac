"""A selective metric range clause drives a SQLite search from the metric's value index (the
few candidate runs first) and the results are exactly those of the undriven plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.entities import Metric, Param, ViewType
from runyard.store.sql.search_sql import driving_clause, fetch_run_page, plan_runs
from runyard.store.sql.store import SqlTrackingStore


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[SqlTrackingStore, str]:
    store = SqlTrackingStore(f"sqlite:///{tmp_path}/d.db", str(tmp_path / "a"))
    exp = store.create_experiment("d")
    for i in range(120):
        run = store.create_run(exp, "u", 1000 + i, [], f"r{i}").info.run_id
        metrics = [Metric("rare", i / 120, 1, 0), Metric("m", (i * 37 % 120) / 120, 1, 0)]
        if i % 10 == 0:
            metrics.append(Metric("gappy", float("nan"), 1, 0))
        store.log_batch(run, metrics, [Param("p", "xyz"[i % 3])])
    return store, exp


def _names(store: SqlTrackingStore, exp: str, filter_string: str, order: list[str]) -> list[str]:
    runs = store.search_runs([exp], filter_string, ViewType.ACTIVE_ONLY, 1000, order)
    return [r.info.run_name for r in runs]


def test_the_fewest_selecting_range_clause_drives(seeded: tuple[SqlTrackingStore, str]) -> None:
    store, _ = seeded
    with store._read() as conn:
        assert driving_clause(conn, "metrics.m > 0.1 and metrics.rare >= 0.95", 50) == 1
        assert driving_clause(conn, "metrics.m > 0.1", 50) is None  # too many runs
        assert driving_clause(conn, "params.p = 'x' and metrics.rare != 0.5", 50) is None
        assert driving_clause(conn, "", 50) is None


@pytest.mark.parametrize(
    ("filter_string", "order"),
    [
        ("metrics.rare >= 0.95", ["params.p"]),
        ("metrics.rare >= 0.95 and params.p = 'y'", ["metrics.m DESC"]),
        ("metrics.rare < 0.05", ["metrics.gappy"]),  # NaN and missing values sort last
        ("metrics.rare = 0.5", []),
        ("metrics.rare > 2", ["metrics.m"]),  # nothing
    ],
)
def test_driven_and_undriven_plans_agree(
    seeded: tuple[SqlTrackingStore, str], filter_string: str, order: list[str]
) -> None:
    store, exp = seeded
    with store._read() as conn:
        driver = driving_clause(conn, filter_string, 1000)
        assert driver is not None
        driven = plan_runs([exp], filter_string, ViewType.ACTIVE_ONLY, order, driver)
        plain = plan_runs([exp], filter_string, ViewType.ACTIVE_ONLY, order)
        for offset, limit in ((0, 1000), (0, 3), (2, 4)):
            got = [r.run_uuid for r in fetch_run_page(conn, driven, offset, limit)]
            expected = [r.run_uuid for r in fetch_run_page(conn, plain, offset, limit)]
            assert got == expected
        sql = str(driven.single.compile(compile_kwargs={"literal_binds": True}))
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert plan.index("ix_metric_summaries_key_nan_value") < plan.index("runs")
    assert _names(store, exp, filter_string, order) == [
        name for name in _names(store, exp, "", order) if name in _reference(filter_string)
    ]


def _reference(filter_string: str) -> set[str]:
    """Run names the filter selects, computed from the seeding rule."""
    names = set()
    for i in range(120):
        rare, p = i / 120, "xyz"[i % 3]
        checks = {
            "metrics.rare >= 0.95": rare >= 0.95,
            "metrics.rare >= 0.95 and params.p = 'y'": rare >= 0.95 and p == "y",
            "metrics.rare < 0.05": rare < 0.05,
            "metrics.rare = 0.5": rare == 0.5,
            "metrics.rare > 2": False,
        }
        if checks[filter_string]:
            names.add(f"r{i}")
    return names
