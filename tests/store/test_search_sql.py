"""search_sql: compiled searches run against a real SQLite file and return exact ids in order."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert
from sqlalchemy.dialects import postgresql

from runyard.entities import ViewType
from runyard.errors import InvalidFilter, InvalidParameterValue
from runyard.store.sql import schema
from runyard.store.sql.search_sql import plan_runs, select_experiments, select_runs

MAX_DOUBLE = 1.7976931348623157e308
NAN = float("nan")


def make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    schema.metadata.create_all(engine)
    return engine


def add_metric(rows: list[dict[str, Any]], run: str, key: str, value: float) -> None:
    """A metric_summaries row as the store writes it: NaN as 0/is_nan, ±inf clamped."""
    is_nan = math.isnan(value)
    stored = 0.0 if is_nan else max(-MAX_DOUBLE, min(MAX_DOUBLE, value))
    rows.append(
        {
            "run_uuid": run,
            "key": key,
            "value": stored,
            "timestamp": 0,
            "step": 0,
            "is_nan": is_nan,
            "min_value": stored,
            "max_value": stored,
            "point_count": 1,
        }
    )


# (run id, experiment, name, status, user, start, end, stage, artifact uri)
RUNS = [
    ("r1", 1, "alpha", "FINISHED", "alice", 100, 200, "active", "s3://bucket/r1"),
    ("r2", 1, "Alpha", "FAILED", "bob", 200, None, "active", "file:///tmp/r2"),
    ("r3", 1, "beta", "RUNNING", "alice", 300, 400, "active", "s3://bucket/r3"),
    ("r4", 1, "gamma_1", "FINISHED", "carol", 300, 500, "active", "s3://Bucket/r4"),
    ("r5", 1, "deleted-run", "FINISHED", "alice", 500, 600, "deleted", "s3://bucket/r5"),
    ("r6", 1, "no-metrics", "KILLED", "dave", 50, 60, "active", "s3://bucket/r6"),
    ("r7", 2, "other", "FINISHED", "alice", 250, 260, "active", "s3://bucket/r7"),
]
METRICS = [
    ("r1", "m", 0.5),
    ("r1", "acc", 0.9),
    ("r2", "m", NAN),
    ("r2", "acc", 0.1),
    ("r3", "m", 1.5),
    ("r3", "acc", 0.9),
    ("r4", "m", -1.0),
    ("r4", "acc", math.inf),
    ("r5", "m", 2.0),
    ("r7", "m", 0.7),
]
PARAMS = [
    ("r1", "lr", "0.1"),
    ("r1", "opt", "Adam"),
    ("r2", "lr", "0.01"),
    ("r2", "opt", "adam"),
    ("r3", "lr", "0.1"),
    ("r3", "opt", "SGD"),
    ("r4", "opt", "a_b%c"),
    ("r5", "lr", "0.1"),
    ("r7", "lr", "0.1"),
]
TAGS = [
    ("r1", "mlflow.runName", "alpha"),
    ("r1", "team", "ml"),
    ("r1", "key with space", "v"),
    ("r2", "team", "ML"),
    ("r3", "team", "data"),
    ("r3", "note", "it's"),
    ("r3", "glob", "x*[y]?"),
    ("r4", "path", "C:\\dir\\file"),
]
# (dataset uuid, name, digest); (input uuid, run, dataset, context or None)
DATASETS = [("d1", "train-set", "abc123"), ("d2", "eval-set", "def456"), ("d3", "Train-Set", "ABC")]
INPUTS = [
    ("i1", "r1", "d1", "training"),
    ("i2", "r1", "d2", "eval"),
    ("i3", "r2", "d3", "Training"),
    ("i4", "r3", "d2", None),
]


@pytest.fixture(scope="module")
def runs_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(tmp_path_factory.mktemp("search") / "runs.db")
    metric_rows: list[dict[str, Any]] = []
    for run, key, value in METRICS:
        add_metric(metric_rows, run, key, value)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.experiments),
            [{"experiment_id": i, "name": f"e{i}", "lifecycle_stage": "active"} for i in (1, 2)],
        )
        columns = ("run_uuid", "experiment_id", "name", "status", "user_id", "start_time")
        columns += ("end_time", "lifecycle_stage", "artifact_uri")
        conn.execute(insert(schema.runs), [dict(zip(columns, row, strict=True)) for row in RUNS])
        conn.execute(insert(schema.metric_summaries), metric_rows)
        conn.execute(
            insert(schema.params), [{"run_uuid": r, "key": k, "value": v} for r, k, v in PARAMS]
        )
        conn.execute(
            insert(schema.run_tags), [{"run_uuid": r, "key": k, "value": v} for r, k, v in TAGS]
        )
        add_datasets(conn)
    yield engine
    engine.dispose()


def add_datasets(conn: Any) -> None:
    conn.execute(
        insert(schema.datasets),
        [
            {
                "dataset_uuid": uuid,
                "experiment_id": 1,
                "name": name,
                "digest": digest,
                "source_type": "local",
                "source": "{}",
            }
            for uuid, name, digest in DATASETS
        ],
    )
    conn.execute(
        insert(schema.dataset_inputs),
        [{"input_uuid": i, "run_uuid": r, "dataset_uuid": d} for i, r, d, _ in INPUTS],
    )
    conn.execute(
        insert(schema.input_tags),
        [
            {"input_uuid": i, "name": "mlflow.data.context", "value": context}
            for i, _, _, context in INPUTS
            if context is not None
        ],
    )


def search(
    engine: Engine,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    *,
    experiment_ids: list[Any] | None = None,
    view_type: int = ViewType.ACTIVE_ONLY,
    offset: int = 0,
    limit: int = 1000,
) -> list[str]:
    query = select_runs(
        [1] if experiment_ids is None else experiment_ids,
        filter_string,
        view_type,
        order_by,
        offset,
        limit,
    )
    with engine.connect() as conn:
        return [row.run_uuid for row in conn.execute(query)]


# --- Filters --------------------------------------------------------------------------------


def test_default_order_is_start_time_desc_then_run_id(runs_db: Engine) -> None:
    # r3 and r4 share start_time 300: run id ascending breaks the tie.
    assert search(runs_db) == ["r3", "r4", "r2", "r1", "r6"]


def test_selects_every_runs_column_in_order(runs_db: Engine) -> None:
    with runs_db.connect() as conn:
        result = conn.execute(select_runs([1], "run_id = 'r4'", ViewType.ALL, None, 0, 10))
        assert list(result.keys()) == list(schema.runs.c.keys())
        (row,) = result.all()
    assert tuple(row) == (
        "r4",
        1,
        "gamma_1",
        "carol",
        "FINISHED",
        300,
        500,
        "active",
        "s3://Bucket/r4",
        None,
    )


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.m > 0", ["r3", "r1"]),
        ("metrics.m >= 0.5", ["r3", "r1"]),
        ("metrics.m = 0.5", ["r1"]),
        ("metric.m < 0", ["r4"]),
        # NaN is stored as 0 with is_nan: the placeholder must never match...
        ("metrics.m <= 0", ["r4"]),
        ("metrics.m = 0", []),
        ("metrics.m > -5", ["r3", "r4", "r1"]),
        # ...except "!=", which NaN always satisfies (as in MLflow's SQL store).
        ("metrics.m != 0.5", ["r3", "r4", "r2"]),
        ("metrics.m != 0", ["r3", "r4", "r2", "r1"]),
        ("metrics.acc = 1e999", ["r4"]),
        ("metrics.acc > 1e308", ["r4"]),
        ("metrics.acc > 0.5 and metrics.acc < 1", ["r3", "r1"]),
        ("metrics.missing > 0", []),
        ("metrics.missing != 1", []),
        ("metrics.m > 0 and metrics.acc = 0.9", ["r3", "r1"]),
    ],
)
def test_metric_filters(runs_db: Engine, filter_string: str, expected: list[str]) -> None:
    assert search(runs_db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.lr = '0.1'", ["r3", "r1"]),
        ("params.lr != '0.1'", ["r2"]),
        ("params.opt = 'adam'", ["r2"]),
        ("params.opt = 'ADAM'", []),
        ("params.opt LIKE 'A%'", ["r1"]),
        ("params.opt LIKE '%A%'", ["r1"]),
        ("params.opt LIKE 'a_am'", ["r2"]),
        ("params.opt LIKE 'a?b%'", []),
        ("params.opt LIKE 'a_b%'", ["r4"]),
        ("params.opt ILIKE 'a%'", ["r4", "r2", "r1"]),
        ("params.opt ILIKE 'ADAM'", ["r2", "r1"]),
        ("params.opt ILIKE 's_d'", ["r3"]),
        ("params.lr IS NULL", ["r4", "r6"]),
        ("params.lr IS NOT NULL", ["r3", "r2", "r1"]),
        ("params.missing IS NULL", ["r3", "r4", "r2", "r1", "r6"]),
        ("params.missing != 'x'", []),
        ("parameters.lr = \"0.1\" and params.opt = 'SGD'", ["r3"]),
    ],
)
def test_param_filters(runs_db: Engine, filter_string: str, expected: list[str]) -> None:
    assert search(runs_db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("tags.team = 'ml'", ["r1"]),
        ("tags.team != 'ml'", ["r3", "r2"]),
        ("tags.team LIKE 'ML'", ["r2"]),
        ("tags.team ILIKE 'ML'", ["r2", "r1"]),
        ("tags.team LIKE '%a%'", ["r3"]),
        ("tags.team IS NULL", ["r4", "r6"]),
        ("tag.team IS NOT NULL", ["r3", "r2", "r1"]),
        ("tags.`key with space` = 'v'", ["r1"]),
        ("tags.`mlflow.runName` = 'alpha'", ["r1"]),
        ("tags.mlflow.runName = 'alpha'", ["r1"]),
        ("tags.note = 'it''s'", ["r3"]),
        ("tags.note LIKE 'it_s'", ["r3"]),
        # GLOB's own metacharacters are plain text in a LIKE pattern.
        ("tags.glob LIKE 'x*[y]?'", ["r3"]),
        ("tags.glob LIKE 'x_[y]_'", ["r3"]),
        ("tags.glob LIKE 'x%'", ["r3"]),
        ("tags.glob LIKE 'xx%'", []),
        ("tags.glob ILIKE 'X*[Y]?'", ["r3"]),
        # Backslashes are ordinary characters in patterns and strings.
        ("tags.path = 'C:\\dir\\file'", ["r4"]),
        ("tags.path LIKE 'C:\\dir%'", ["r4"]),
        ("tags.path ILIKE 'c:\\DIR\\%'", ["r4"]),
    ],
)
def test_tag_filters(runs_db: Engine, filter_string: str, expected: list[str]) -> None:
    assert search(runs_db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("run_id = 'r1'", ["r1"]),
        ("attributes.run_id != 'r1'", ["r3", "r4", "r2", "r6"]),
        ("run_id IN ('r1', 'r3', 'r7')", ["r3", "r1"]),
        ("run_id NOT IN ('r1', 'r3')", ["r4", "r2", "r6"]),
        ("run_id LIKE 'r%'", ["r3", "r4", "r2", "r1", "r6"]),
        ("run_name = 'alpha'", ["r1"]),
        ("run_name LIKE 'a%'", ["r1"]),
        ("run_name ILIKE 'a%'", ["r2", "r1"]),
        ("`Run name` != 'alpha'", ["r3", "r4", "r2", "r6"]),
        ("attributes.`Run Name` LIKE '%\\_1'", []),
        ("run_name LIKE 'gamma_1'", ["r4"]),
        ("status = 'FINISHED'", ["r4", "r1"]),
        ("status != 'FINISHED'", ["r3", "r2", "r6"]),
        ("status = 'finished'", []),
        ("status ILIKE 'finished'", ["r4", "r1"]),
        ("user_id = 'alice'", ["r3", "r1"]),
        ("artifact_uri LIKE 's3://bucket/%'", ["r3", "r1", "r6"]),
        ("artifact_uri ILIKE 's3://bucket/%'", ["r3", "r4", "r1", "r6"]),
        ("start_time > 100", ["r3", "r4", "r2"]),
        ("created >= 300", ["r3", "r4"]),
        ("attr.Created < 100", ["r6"]),
        ("start_time = 50", ["r6"]),
        ("start_time != 300", ["r2", "r1", "r6"]),
        ("start_time > 100 and start_time < 300", ["r2"]),
        ("start_time > 99.5", ["r3", "r4", "r2", "r1"]),
        ("end_time < 300", ["r1", "r6"]),
        # A run without an end time never matches a comparison on it.
        ("end_time != 200", ["r3", "r4", "r6"]),
    ],
)
def test_attribute_filters(runs_db: Engine, filter_string: str, expected: list[str]) -> None:
    assert search(runs_db, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("datasets.name = 'train-set'", ["r1"]),
        ("dataset.name LIKE 'train%'", ["r1"]),
        ("datasets.name ILIKE 'train%'", ["r2", "r1"]),
        ("datasets.name IN ('eval-set')", ["r3", "r1"]),
        # "Some input of the run" semantics: r1 also has an input outside the list.
        ("datasets.name NOT IN ('eval-set')", ["r2", "r1"]),
        ("datasets.name != 'eval-set'", ["r2", "r1"]),
        ("datasets.digest = 'abc123'", ["r1"]),
        ("datasets.digest ILIKE 'ABC%'", ["r2", "r1"]),
        ("datasets.context = 'training'", ["r1"]),
        ("datasets.context ILIKE 'training'", ["r2", "r1"]),
        # r3's input has no context tag, so it never matches a context comparison.
        ("datasets.context != 'eval'", ["r2", "r1"]),
        ("datasets.context IN ('eval', 'nothing')", ["r1"]),
        ("datasets.context NOT IN ('eval')", ["r2", "r1"]),
        ("datasets.name = 'eval-set' and datasets.context = 'eval'", ["r1"]),
        ("datasets.name = 'nope'", []),
    ],
)
def test_dataset_filters(runs_db: Engine, filter_string: str, expected: list[str]) -> None:
    assert search(runs_db, filter_string) == expected


def test_combined_filter(runs_db: Engine) -> None:
    filter_string = (
        "metrics.acc > 0.5 and params.lr = '0.1' and tags.team = 'data' "
        "and status = 'RUNNING' and datasets.name = 'eval-set' and start_time >= 300"
    )
    assert search(runs_db, filter_string) == ["r3"]


# --- Scope: experiments and lifecycle -------------------------------------------------------


@pytest.mark.parametrize(
    ("view_type", "expected"),
    [
        (ViewType.ACTIVE_ONLY, ["r3", "r4", "r2", "r1", "r6"]),
        (ViewType.DELETED_ONLY, ["r5"]),
        (ViewType.ALL, ["r5", "r3", "r4", "r2", "r1", "r6"]),
    ],
)
def test_view_types(runs_db: Engine, view_type: int, expected: list[str]) -> None:
    assert search(runs_db, view_type=view_type) == expected


@pytest.mark.parametrize(
    ("experiment_ids", "expected"),
    [
        ([1, 2], ["r3", "r4", "r7", "r2", "r1", "r6"]),
        (["2"], ["r7"]),
        ([2, 2], ["r7"]),
        ([3], []),
        ([], []),
    ],
)
def test_experiment_scope(runs_db: Engine, experiment_ids: list[Any], expected: list[str]) -> None:
    assert search(runs_db, experiment_ids=experiment_ids) == expected


def test_filter_across_experiments(runs_db: Engine) -> None:
    assert search(runs_db, "params.lr = '0.1'", experiment_ids=[1, 2]) == ["r3", "r7", "r1"]


# --- Ordering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        # Real values, then NaN, then runs without the metric - in both directions.
        (["metrics.m DESC"], ["r3", "r1", "r4", "r2", "r6"]),
        (["metrics.m ASC"], ["r4", "r1", "r3", "r2", "r6"]),
        (["metrics.m"], ["r4", "r1", "r3", "r2", "r6"]),
        # Equal values fall back to start_time DESC, then run id.
        (["metrics.acc DESC"], ["r4", "r3", "r1", "r2", "r6"]),
        (["metrics.acc ASC"], ["r2", "r3", "r1", "r4", "r6"]),
        (["params.lr ASC"], ["r2", "r3", "r1", "r4", "r6"]),
        (["params.lr DESC"], ["r3", "r1", "r2", "r4", "r6"]),
        (["tags.team"], ["r2", "r3", "r1", "r4", "r6"]),
        (["tags.team DESC"], ["r1", "r3", "r2", "r4", "r6"]),
        (["start_time ASC"], ["r6", "r1", "r2", "r3", "r4"]),
        (["start_time DESC"], ["r3", "r4", "r2", "r1", "r6"]),
        (["created DESC"], ["r3", "r4", "r2", "r1", "r6"]),
        (["end_time ASC"], ["r6", "r1", "r3", "r4", "r2"]),
        (["end_time DESC"], ["r4", "r3", "r1", "r6", "r2"]),
        (["run_name ASC"], ["r2", "r1", "r3", "r4", "r6"]),
        (["attributes.run_id DESC"], ["r6", "r4", "r3", "r2", "r1"]),
        (["status"], ["r2", "r4", "r1", "r6", "r3"]),
        (["user_id DESC"], ["r6", "r4", "r2", "r3", "r1"]),
        (["artifact_uri"], ["r2", "r4", "r1", "r3", "r6"]),
        (["params.lr DESC", "metrics.acc ASC"], ["r3", "r1", "r2", "r4", "r6"]),
        (["user_id ASC", "start_time ASC"], ["r1", "r3", "r2", "r4", "r6"]),
        (["metrics.acc DESC", "params.opt"], ["r4", "r1", "r3", "r2", "r6"]),
        (["metrics.missing DESC"], ["r3", "r4", "r2", "r1", "r6"]),
    ],
)
def test_order_by(runs_db: Engine, order_by: list[str], expected: list[str]) -> None:
    assert search(runs_db, order_by=order_by) == expected


def test_order_by_with_filter(runs_db: Engine) -> None:
    assert search(runs_db, "metrics.m != 0.5", ["metrics.m DESC"]) == ["r3", "r4", "r2"]


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 2, ["r3", "r4"]),
        (1, 2, ["r4", "r2"]),
        (4, 10, ["r6"]),
        (5, 10, []),
        (0, 0, []),
    ],
)
def test_paging(runs_db: Engine, offset: int, limit: int, expected: list[str]) -> None:
    assert search(runs_db, offset=offset, limit=limit) == expected


@pytest.mark.parametrize("order_by", [None, ["metrics.m DESC"], ["params.lr", "end_time DESC"]])
def test_pages_concatenate_to_the_full_result(runs_db: Engine, order_by: list[str] | None) -> None:
    full = search(runs_db, order_by=order_by, view_type=ViewType.ALL)
    pages = [
        search(runs_db, order_by=order_by, view_type=ViewType.ALL, offset=o, limit=2)
        for o in range(0, len(full), 2)
    ]
    assert [run for page in pages for run in page] == full


# --- Errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("metrics.m > 1 OR metrics.m < 0", None),
        ("params.p = unquoted", None),
        ("metrics.m IS NULL", None),
        (None, ["metrics.m DOWN"]),
        (None, ["metrics.m", "metrics.m DESC"]),
        (None, ["datasets.name"]),
    ],
)
def test_invalid_searches_raise_invalid_filter(
    filter_string: str | None, order_by: list[str] | None
) -> None:
    with pytest.raises(InvalidFilter):
        select_runs([1], filter_string, ViewType.ALL, order_by, 0, 10)


@pytest.mark.parametrize(
    ("experiment_ids", "offset", "limit"), [(["x"], 0, 1), ([1], -1, 1), ([1], 0, -1)]
)
def test_invalid_scope_or_page(experiment_ids: list[Any], offset: int, limit: int) -> None:
    with pytest.raises(InvalidParameterValue):
        select_runs(experiment_ids, None, ViewType.ALL, None, offset, limit)


# --- Compilation and plans ------------------------------------------------------------------


def test_statement_cache_keeps_patterns_apart(runs_db: Engine) -> None:
    # Statements differing only in the pattern share a cached compiled form; the pattern and its
    # GLOB translation must still be bound per execution.
    assert search(runs_db, "params.opt LIKE 'A%'") == ["r1"]
    assert search(runs_db, "params.opt LIKE 'a%'") == ["r4", "r2"]
    assert search(runs_db, "params.opt ILIKE 'S%'") == ["r3"]
    assert search(runs_db, "params.opt ILIKE 'a%'") == ["r4", "r2", "r1"]


def test_postgresql_uses_like_and_ilike_without_escape() -> None:
    query = select_runs([1], "params.a LIKE 'x%' and tags.b ILIKE 'y%'", 1, None, 0, 10)
    sql = str(query.compile(dialect=postgresql.dialect()))
    assert sql.count("ESCAPE ''") == 2
    assert " ILIKE " in sql
    assert "GLOB" not in sql
    assert "lower(" not in sql


def test_sqlite_uses_glob_for_case_sensitive_like(runs_db: Engine) -> None:
    query = select_runs([1], "params.a LIKE 'x%' and tags.b ILIKE 'y%'", 1, None, 0, 10)
    sql = str(query.compile(runs_db))
    assert " GLOB " in sql
    assert "lower(" in sql
    assert "= 1" not in sql


def test_example_query_plan_is_index_driven(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "plan.db")
    query = select_runs(
        [1],
        "metrics.m1 > 0.5 and params.p1 = 'x'",
        ViewType.ACTIVE_ONLY,
        ["metrics.m2 DESC"],
        0,
        100,
    )
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    engine.dispose()
    assert plan[0] == "SEARCH runs USING INDEX ix_runs_experiment_start (experiment_id=?)"
    searches = [line for line in plan if line.startswith("SEARCH")]
    assert len(searches) == 4
    assert all("(run_uuid=? AND key=?)" in line for line in searches[1:])
    assert not [line for line in plan if line.startswith("SCAN")]


def test_default_order_pages_are_read_off_the_index_unsorted(tmp_path: Path) -> None:
    """start_time DESC, run_uuid ASC is the index's own order: no sort of the experiment's
    runs, whatever the page (revision 0006_runs_newest_first)."""
    engine = make_engine(tmp_path / "plan.db")
    for offset in (0, 4000):
        query = select_runs([1], None, ViewType.ACTIVE_ONLY, None, offset, 1000)
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        assert plan == ["SEARCH runs USING INDEX ix_runs_experiment_start (experiment_id=?)"]
    engine.dispose()


# --- Against a reference ordering -----------------------------------------------------------


def reference_sort_key(value: float | None, start: int, run: str, ascending: bool) -> tuple:
    """MLflow's in-memory rule: values first, then NaN, then missing; ties by start DESC, id."""
    if value is None:
        group, number = 2, 0.0
    elif math.isnan(value):
        group, number = 1, 0.0
    else:
        group, number = 0, value if ascending else -value
    return (group, number, -start, run)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ascending", [True, False])
def test_metric_order_matches_reference(tmp_path: Path, seed: int, ascending: bool) -> None:
    rng = random.Random(seed)
    engine = make_engine(tmp_path / "random.db")
    runs, metrics, values = [], [], {}
    for i in range(60):
        run = f"run{i:03d}"
        runs.append(
            {
                "run_uuid": run,
                "experiment_id": 1,
                "status": "FINISHED",
                "start_time": rng.randint(0, 5),
                "lifecycle_stage": "active",
            }
        )
        value = rng.choice([None, NAN, math.inf, -math.inf, 0.0, 1.0, rng.uniform(-5, 5)])
        values[run] = value
        if value is not None:
            add_metric(metrics, run, "m", value)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.experiments),
            [{"experiment_id": 1, "name": "e", "lifecycle_stage": "active"}],
        )
        conn.execute(insert(schema.runs), runs)
        if metrics:
            conn.execute(insert(schema.metric_summaries), metrics)
    direction = "ASC" if ascending else "DESC"
    got = search(engine, order_by=[f"metrics.m {direction}"])
    engine.dispose()
    starts = {r["run_uuid"]: r["start_time"] for r in runs}
    expected = sorted(values, key=lambda r: reference_sort_key(values[r], starts[r], r, ascending))
    assert got == expected


# --- Experiments ----------------------------------------------------------------------------

# (id, name, stage, creation_time, last_update_time)
EXPERIMENTS = [
    (0, "Default", "active", 10, 10),
    (1, "exp-alpha", "active", 30, 40),
    (2, "Exp-Beta", "active", 20, 50),
    (3, "gone", "deleted", 40, 45),
    (4, "exp_gamma", "active", None, None),
    (5, "tie", "active", 30, 30),
]
EXPERIMENT_TAGS = [(1, "team", "ml"), (2, "team", "ML"), (2, "owner", "x"), (3, "team", "ml")]


@pytest.fixture(scope="module")
def experiments_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(tmp_path_factory.mktemp("search") / "experiments.db")
    columns = ("experiment_id", "name", "lifecycle_stage", "creation_time", "last_update_time")
    with engine.begin() as conn:
        conn.execute(
            insert(schema.experiments),
            [dict(zip(columns, row, strict=True)) for row in EXPERIMENTS],
        )
        conn.execute(
            insert(schema.experiment_tags),
            [{"experiment_id": e, "key": k, "value": v} for e, k, v in EXPERIMENT_TAGS],
        )
    yield engine
    engine.dispose()


def search_experiments(
    engine: Engine,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    *,
    view_type: int = ViewType.ACTIVE_ONLY,
    offset: int = 0,
    limit: int = 1000,
) -> list[int]:
    query = select_experiments(view_type, filter_string, order_by, offset, limit)
    with engine.connect() as conn:
        return [row.experiment_id for row in conn.execute(query)]


def test_experiment_default_order(experiments_db: Engine) -> None:
    # creation_time DESC (missing last), experiment_id ASC.
    assert search_experiments(experiments_db) == [1, 5, 2, 0, 4]
    assert search_experiments(experiments_db, order_by=[]) == [1, 5, 2, 0, 4]


def test_experiment_columns(experiments_db: Engine) -> None:
    with experiments_db.connect() as conn:
        result = conn.execute(select_experiments(ViewType.ALL, "experiment_id = '3'", None, 0, 5))
        assert list(result.keys()) == list(schema.experiments.c.keys())
        assert [tuple(r) for r in result] == [(3, "gone", None, "deleted", 40, 45)]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'exp-alpha'", [1]),
        ("attribute.name != 'Default'", [1, 5, 2, 4]),
        ("name LIKE 'exp%'", [1, 4]),
        ("name ILIKE 'exp%'", [1, 2, 4]),
        ("name LIKE 'exp_gamma'", [4]),
        ("name LIKE 'exp-%'", [1]),
        ("experiment_id = '2'", [2]),
        ("experiment_id != '2'", [1, 5, 0, 4]),
        ("experiment_id IN ('0', '2', '3')", [2, 0]),
        ("experiment_id NOT IN ('0', '2')", [1, 5, 4]),
        ("creation_time > 15", [1, 5, 2]),
        ("creation_time = 30", [1, 5]),
        ("last_update_time >= 40", [1, 2]),
        ("last_update_time < 40", [5, 0]),
        ("tags.team = 'ml'", [1]),
        ("tags.team != 'ml'", [2]),
        ("tags.team LIKE 'M%'", [2]),
        ("tags.team ILIKE 'ml'", [1, 2]),
        ("tags.team IS NULL", [5, 0, 4]),
        ("tag.team IS NOT NULL", [1, 2]),
        ("name ILIKE 'exp%' and tags.owner = 'x'", [2]),
        ("tags.missing = 'x'", []),
    ],
)
def test_experiment_filters(
    experiments_db: Engine, filter_string: str, expected: list[int]
) -> None:
    assert search_experiments(experiments_db, filter_string) == expected


@pytest.mark.parametrize(
    ("view_type", "expected"),
    [
        (ViewType.ACTIVE_ONLY, [1, 5, 2, 0, 4]),
        (ViewType.DELETED_ONLY, [3]),
        (ViewType.ALL, [3, 1, 5, 2, 0, 4]),
    ],
)
def test_experiment_view_types(experiments_db: Engine, view_type: int, expected: list[int]) -> None:
    assert search_experiments(experiments_db, view_type=view_type) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["name"], [0, 2, 1, 4, 5]),
        (["name DESC"], [5, 4, 1, 2, 0]),
        # Ties on creation_time fall back to experiment_id DESC, MLflow's tie-break.
        (["creation_time ASC"], [0, 2, 5, 1, 4]),
        (["creation_time DESC"], [5, 1, 2, 0, 4]),
        (["creation_time DESC", "experiment_id ASC"], [1, 5, 2, 0, 4]),
        (["experiment_id DESC"], [5, 4, 2, 1, 0]),
        (["attribute.experiment_id"], [0, 1, 2, 4, 5]),
        (["last_update_time DESC"], [2, 1, 5, 0, 4]),
        (["last_update_time"], [0, 5, 1, 2, 4]),
    ],
)
def test_experiment_order_by(
    experiments_db: Engine, order_by: list[str], expected: list[int]
) -> None:
    assert search_experiments(experiments_db, order_by=order_by) == expected


@pytest.mark.parametrize(
    ("offset", "limit", "expected"), [(0, 2, [1, 5]), (2, 2, [2, 0]), (4, 2, [4]), (6, 2, [])]
)
def test_experiment_paging(
    experiments_db: Engine, offset: int, limit: int, expected: list[int]
) -> None:
    assert search_experiments(experiments_db, offset=offset, limit=limit) == expected


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("params.x = 'y'", None),
        ("experiment_id = 'abc'", None),
        ("name = 'a' OR name = 'b'", None),
        (None, ["tags.team"]),
        (None, ["start_time"]),
    ],
)
def test_invalid_experiment_searches(filter_string: str | None, order_by: list[str] | None) -> None:
    with pytest.raises(InvalidFilter):
        select_experiments(ViewType.ALL, filter_string, order_by, 0, 10)


def test_plans_are_kept_per_question() -> None:
    """The same search reuses its plan; any difference in the question builds another; a bad
    question is refused every time, never kept."""
    question = ("metrics.m1 > 0.5 and params.p1 = 'x'", ViewType.ACTIVE_ONLY, ["metrics.m2 DESC"])
    kept = plan_runs([1], *question)
    assert plan_runs(["1"], *question) is kept  # ids as the REST API sends them
    assert plan_runs([1, 2], *question) is not kept
    assert plan_runs([1], "metrics.m1 > 0.6 and params.p1 = 'x'", *question[1:]) is not kept
    assert plan_runs([1], question[0], ViewType.ALL, question[2]) is not kept
    assert plan_runs([1], question[0], question[1], ["metrics.m2 ASC"]) is not kept
    for _ in range(2):
        with pytest.raises(InvalidFilter):
            plan_runs([1], "metrics.m1 >", ViewType.ACTIVE_ONLY, None)
        with pytest.raises(InvalidParameterValue):
            plan_runs(["one"], None, ViewType.ACTIVE_ONLY, None)
