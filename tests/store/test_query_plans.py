"""The hot queries use indexes: EXPLAIN them on a seeded database (SQLite and PostgreSQL).

2,000 runs in 10 experiments, each with 8 metrics (3 points each), 8 params and a tag, are
logged through the store; then the exact SQL the store runs is explained (``EXPLAIN QUERY PLAN``
on SQLite, ``EXPLAIN`` after ``ANALYZE`` on PostgreSQL): a search with a metric filter ordered by
a metric, a page ordered by start_time, a metric history read and a run read. None may scan
``runs``, ``metric_summaries``, ``metric_points`` or ``params`` in full, and each must name the
index it is expected to use.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.sql import Select

from runyard.entities import Metric, Param, RunTag, ViewType
from runyard.store.sql.prepared import Prepared
from runyard.store.sql.search_sql import plan_runs, select_runs
from runyard.store.sql.statements import Statements
from runyard.store.sql.store import SqlTrackingStore
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401  (session fixture)

RUNS, EXPERIMENTS = 2000, 10
METRIC_KEYS = [f"m{i}" for i in range(8)]
GUARDED_TABLES = ("runs", "metric_summaries", "metric_points", "params")

#: The index each kind of lookup must use, per dialect.
INDEXES = {
    "sqlite": {
        "runs by experiment": "ix_runs_experiment_start",
        "run by id": "sqlite_autoindex_runs_1",
        "summary by run and key": "sqlite_autoindex_metric_summaries_1",
        "points of a series": "PRIMARY KEY",
        "params of a run": "sqlite_autoindex_params_1",
    },
    "postgresql": {
        "runs by experiment": "ix_runs_experiment_start",
        "run by id": "runs_pkey",
        "summary by run and key": "uq_metric_summaries_run_key",
        "points of a series": "pk_metric_points",
        "params of a run": "pk_params",
    },
}


@dataclass
class Seeded:
    """A seeded store and what the queries need to know about its data."""

    store: SqlTrackingStore
    experiment_id: str
    run_id: str
    series_id: int

    @property
    def engine(self) -> Engine:
        """The store's engine."""
        return self.store.engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.store.engine.dialect.name


def _seed(store: SqlTrackingStore) -> Seeded:
    rng = random.Random(7)
    experiments = [store.create_experiment(f"plans-{i}") for i in range(EXPERIMENTS)]
    run_ids = []
    for i in range(RUNS):
        run_id = store.create_run(experiments[i % EXPERIMENTS], "u", 1000 + i, [], f"r{i}")
        metrics = [
            Metric(key, rng.random(), 1000 + step, step) for key in METRIC_KEYS for step in range(3)
        ]
        params = [Param(f"p{j}", str(rng.randint(0, 9))) for j in range(8)]
        store.log_batch(run_id.info.run_id, metrics, params, [RunTag("team", f"t{i % 3}")])
        run_ids.append(run_id.info.run_id)
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        series_id = conn.execute(
            text("SELECT series_id FROM metric_summaries WHERE run_uuid = :r AND key = 'm1'"),
            {"r": run_ids[500]},
        ).scalar_one()
    return Seeded(store, experiments[1], run_ids[500], int(series_id))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("plans")
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg_primary")
        uri = server.create_database()
    else:
        uri = f"sqlite:///{root / 'plans.db'}"
    store = SqlTrackingStore(uri, str(root / "artifacts"))
    try:
        yield _seed(store)
    finally:
        store.close()


def _explain_prefix(dialect: str) -> str:
    return "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "


def _plan_lines(rows: Any) -> list[str]:
    # SQLite: (id, parent, notused, detail); PostgreSQL: one text column per line.
    return [str(row[-1]) for row in rows]


def explain_select(seeded: Seeded, stmt: Select[Any]) -> list[str]:
    """The plan of a Core select, compiled exactly as the store executes it."""
    dialect = seeded.engine.dialect
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positiontup is not None:
        params = tuple(compiled.params[name] for name in compiled.positiontup)
    with seeded.engine.connect() as conn:
        rows = conn.exec_driver_sql(_explain_prefix(dialect.name) + str(compiled), params).all()
    return _plan_lines(rows)


def explain_prepared(seeded: Seeded, prepared: Prepared, **params: Any) -> list[str]:
    """The plan of one of the store's prepared statements with these parameters."""
    explained = copy.copy(prepared)
    explained.sql = _explain_prefix(seeded.dialect) + prepared.sql
    with seeded.engine.connect() as conn:
        rows = explained.run(conn, **params).fetchall()
    return _plan_lines(rows)


def assert_indexed(seeded: Seeded, plan: list[str], *lookups: str) -> None:
    """No full scan of a guarded table, and every expected index appears in ``plan``."""
    text_plan = "\n".join(plan)
    for line in plan:
        words = line.strip().lstrip("->").split()
        if seeded.dialect == "sqlite":
            full_scan = words[:1] == ["SCAN"]
            table = words[1] if len(words) > 1 else ""
        else:
            full_scan = words[:3] == ["Seq", "Scan", "on"]
            table = words[3] if len(words) > 3 else ""
        assert not (full_scan and table in GUARDED_TABLES), text_plan
        if seeded.dialect == "sqlite":
            assert not full_scan, text_plan  # an aliased guarded table (f0_metric, o0_param)
    for lookup in lookups:
        index = INDEXES[seeded.dialect][lookup]
        assert index in text_plan, f"{lookup}: expected {index} in\n{text_plan}"


def test_search_with_metric_filter_ordered_by_metric(seeded: Seeded) -> None:
    plan = plan_runs(
        [seeded.experiment_id], "metrics.m1 > 0.5", ViewType.ACTIVE_ONLY, ["metrics.m2 DESC"]
    )
    assert plan.leading is not None
    assert plan.rest is not None
    for stmt in (plan.leading, plan.rest, plan.single):
        lines = explain_select(seeded, stmt.offset(0).limit(101))
        assert_indexed(seeded, lines, "runs by experiment")
    page = seeded.store.search_runs(
        [seeded.experiment_id], "metrics.m1 > 0.5", max_results=50, order_by=["metrics.m2 DESC"]
    )
    values = [run.data.metrics["m2"] for run in page]
    assert values == sorted(values, reverse=True)
    assert all(run.data.metrics["m1"] > 0.5 for run in page)


def test_search_with_param_filter(seeded: Seeded) -> None:
    stmt = select_runs(
        [seeded.experiment_id], "params.p1 = '3'", ViewType.ACTIVE_ONLY, None, 0, 101
    )
    assert_indexed(seeded, explain_select(seeded, stmt), "runs by experiment")


def test_page_ordered_by_start_time(seeded: Seeded) -> None:
    stmt = select_runs(
        [seeded.experiment_id], None, ViewType.ACTIVE_ONLY, ["start_time DESC"], 100, 101
    )
    assert_indexed(seeded, explain_select(seeded, stmt), "runs by experiment")
    default = select_runs([seeded.experiment_id], None, ViewType.ACTIVE_ONLY, None, 100, 101)
    assert_indexed(seeded, explain_select(seeded, default), "runs by experiment")


def test_metric_history(seeded: Seeded) -> None:
    sql = Statements(seeded.engine.dialect)
    lookup = explain_prepared(seeded, sql.series_id, run_uuid=seeded.run_id, key="m1")
    assert_indexed(seeded, lookup, "summary by run and key")
    points = explain_prepared(seeded, sql.history, series_id=seeded.series_id)
    assert_indexed(seeded, points, "points of a series")
    after = {"ts": 0, "step": 0, "value": 0.0, "is_nan": False, "limit": 10, "offset": 0}
    page = explain_prepared(seeded, sql.history_after, series_id=seeded.series_id, **after)
    assert_indexed(seeded, page, "points of a series")  # the next page: a key range scan
    history = seeded.store.get_metric_history(seeded.run_id, "m1")
    assert [m.step for m in history] == [0, 1, 2]


def test_run_read(seeded: Seeded) -> None:
    sql = Statements(seeded.engine.dialect)
    row = explain_prepared(seeded, sql.run_row, run_uuid=seeded.run_id)
    assert_indexed(seeded, row, "run by id")
    if seeded.dialect == "postgresql":  # the run and its children in one statement
        read = explain_prepared(seeded, sql.run_read, run_uuid=seeded.run_id)
        assert_indexed(seeded, read, "run by id", "params of a run", "summary by run and key")
    children = explain_prepared(seeded, sql.run_children, run_uuid=seeded.run_id)
    assert_indexed(seeded, children, "params of a run", "summary by run and key")
    ids = {f"r{i}": run.info.run_id for i, run in enumerate(seeded.store.search_runs(
        [seeded.experiment_id], max_results=3))}  # fmt: skip
    if seeded.dialect == "postgresql":  # a page's children: one statement, ids as an array
        page = explain_prepared(seeded, sql.of_runs_any("children"), ids=list(ids.values()))
        assert_indexed(seeded, page, "params of a run", "summary by run and key")
    for what, lookup in (("metrics", "summary by run and key"), ("params", "params of a run")):
        page = explain_prepared(seeded, sql.of_runs(what, len(ids)), **ids)
        assert_indexed(seeded, page, lookup)
    run = seeded.store.get_run(seeded.run_id)
    assert set(run.data.metrics) == set(METRIC_KEYS)
    assert len(run.data.params) == 8


def test_page_children_by_index(seeded: Seeded) -> None:
    """A page of 100 runs reads its children by index. On PostgreSQL the ids travel as one
    array that the planner must not see: planned for 100 known ids, it chose sequential
    scans of params, tags and summaries (8 ms instead of 2 at 5,000 runs)."""
    sql = Statements(seeded.engine.dialect)
    page = seeded.store.search_runs([seeded.experiment_id], max_results=100)
    ids = [run.info.run_id for run in page]
    assert len(ids) == 100
    if seeded.dialect == "postgresql":
        plan = explain_prepared(seeded, sql.of_runs_any("children"), ids=ids)
    else:
        plan = explain_prepared(seeded, sql.of_runs("children", len(ids)), **{
            f"r{i}": run_id for i, run_id in enumerate(ids)})  # fmt: skip
    assert_indexed(seeded, plan, "params of a run", "summary by run and key")
    with seeded.engine.connect() as conn:
        rows = sql.rows_of_runs(conn, "children", ids)
    params = [row for row in rows if row[1] == "p"]
    assert {row[0] for row in params} == set(ids)
    assert len(params) == 8 * len(ids)
