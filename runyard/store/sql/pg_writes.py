"""Writes that PostgreSQL does in one statement, outside any explicit transaction.

A write transaction costs psycopg a ``BEGIN`` and a ``COMMIT`` besides its statements, and each
statement ~70 µs of client CPU and a round trip: creating a run (check the experiment, insert
the run, insert its tags) took ~1 ms, finishing it ~0.55 ms and logging 5 params, 5 metrics and
3 tags ~1.6 ms (seven round trips), most of it in the client, against ~0.3 ms of work in the
server for all three. A single statement run on an autocommit connection is its own
transaction, atomic like the one it replaces: the checks gate the writes inside it (a
data-modifying ``WITH``), and the statement returns what the caller needs to tell success from
the error to raise. Anything unusual (an error to explain, points stored already, series long
enough for tiles) writes nothing here and goes the generic transaction way.

SQLite keeps the transactions of the generic code (it has no data-modifying ``WITH``, and no
round trips to save).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Integer,
    Text,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import Dialect

from runyard.store.sql import schema as t
from runyard.store.sql.prepared import Prepared

__all__ = [
    "LOG_BATCH_ARRAYS",
    "create_run_statement",
    "log_batch_args",
    "log_batch_statement",
    "update_run_statement",
]

_CREATE_RUN = """
WITH e AS (
    SELECT experiment_id, lifecycle_stage, artifact_location FROM experiments
    WHERE experiment_id = :experiment_id
), r AS (
    INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,
                      lifecycle_stage, artifact_uri, deleted_time)
    SELECT CAST(:run_uuid AS TEXT), e.experiment_id, CAST(:name AS TEXT),
           CAST(:user_id AS TEXT), 'RUNNING', CAST(:start_time AS BIGINT), NULL,
           e.lifecycle_stage,
           rtrim(coalesce(e.artifact_location, ''), '/') || '/' || CAST(:run_uuid AS TEXT)
           || '/artifacts',
           NULL
    FROM e WHERE e.lifecycle_stage = 'active'
    RETURNING run_uuid, artifact_uri
), t AS (
    INSERT INTO run_tags (run_uuid, key, value)
    SELECT r.run_uuid, x.key, x.value
    FROM r, unnest(CAST(:keys AS TEXT[]), CAST(:tag_values AS TEXT[])) AS x(key, value)
)
SELECT e.lifecycle_stage, r.artifact_uri FROM e LEFT JOIN r ON true
"""

_UPDATE_RUN = """
WITH u AS (
    UPDATE runs SET
        status = coalesce(CAST(:status AS TEXT), status),
        end_time = coalesce(CAST(:end_time AS BIGINT), end_time),
        name = coalesce(CAST(:name AS TEXT), name)
    WHERE run_uuid = :run_uuid AND lifecycle_stage = 'active'
    RETURNING {columns}
), t AS (
    INSERT INTO run_tags (run_uuid, key, value)
    SELECT u.run_uuid, 'mlflow.runName', u.name FROM u WHERE CAST(:name AS TEXT) IS NOT NULL
    ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value
)
SELECT * FROM u
"""


def create_run_statement(dialect: Dialect) -> Prepared | None:
    """Create a RUNNING run and its tags if its experiment is active (PostgreSQL).

    Parameters: ``experiment_id``, ``run_uuid``, ``name``, ``user_id``, ``start_time``,
    ``keys`` and ``tag_values`` (lists). One row ``(lifecycle_stage, artifact_uri)`` when the
    experiment exists; ``artifact_uri`` is NULL when it is not active (nothing was written).
    """
    if dialect.name != "postgresql":
        return None
    return Prepared(text(_CREATE_RUN), dialect)


def update_run_statement(dialect: Dialect, columns: tuple[str, ...]) -> Prepared | None:
    """Update an active run's status, end time and name (a new name also rewrites the
    ``mlflow.runName`` tag) and return its row (``columns``), or no row when the run is
    unknown or not active (nothing was written). PostgreSQL only."""
    if dialect.name != "postgresql":
        return None
    return Prepared(text(_UPDATE_RUN.format(columns=", ".join(columns))), dialect)


#: Columns of the arrays :func:`log_batch_statement` takes, by array name.
LOG_BATCH_ARRAYS: dict[str, tuple[tuple[str, Any], ...]] = {
    "p": (("key", Text), ("value", Text)),
    "t": (("key", Text), ("value", Text)),
    "s": (
        ("key", Text),
        ("step", BigInteger),
        ("timestamp", BigInteger),
        ("value", Double),
        ("is_nan", Boolean),
        ("min_value", Double),
        ("max_value", Double),
        ("point_count", BigInteger),
    ),
    "pt": (
        ("key", Text),
        ("step", BigInteger),
        ("timestamp", BigInteger),
        ("value", Double),
        ("is_nan", Boolean),
    ),
}


def _unnest(name: str) -> Any:
    """``unnest(:name_a, :name_b, ..) AS name(a, b, ..)`` over :data:`LOG_BATCH_ARRAYS`."""
    columns = LOG_BATCH_ARRAYS[name]
    arrays = [bindparam(f"{name}_{c}", type_=ARRAY(kind)) for c, kind in columns]
    return (
        func.unnest(*arrays)
        .table_valued(*(column(c, kind) for c, kind in columns))
        .render_derived(name=name)
    )


def log_batch_statement(
    dialect: Dialect, summary_merge: Callable[[Any], dict[str, Any]]
) -> Prepared | None:
    """``log_batch`` of one run in one statement (PostgreSQL), for batches whose series are
    short (no metric tiles to write, see :mod:`~runyard.store.sql.metric_tiles`).

    Parameters: ``run_uuid``, ``name`` (the batch's last ``mlflow.runName`` tag or NULL),
    ``threshold`` (``TILE_THRESHOLD``) and the arrays of :data:`LOG_BATCH_ARRAYS` (params
    ``p_*``, tags ``t_*``, one summary per key ``s_*``, points ``pt_*``). Writes only when the
    run is active and none of the batch's series is tiled or reaches ``threshold`` points; a
    param logged before with another value, or a point stored already, fails the statement
    (nothing written: the caller's transaction path then says why, or keeps the stored
    points). Returns one row ``(lifecycle_stage, long_keys)`` when the run exists, where
    ``long_keys`` (the series that need tiles) is NULL when the batch was written.
    """
    if dialect.name != "postgresql":
        return None
    runs, p, rt, ms, mp = t.runs, t.params, t.run_tags, t.metric_summaries, t.metric_points
    run_id = bindparam("run_uuid", type_=Text)
    run_row = select(runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id).cte("run")
    sx = select(_unnest("s")).cte("sx")
    long = (
        select(func.array_agg(ms.c.key).label("long_keys"))
        .select_from(ms.join(sx, ms.c.key == sx.c.key))
        .where(
            ms.c.run_uuid == run_id,
            or_(ms.c.tiled, ms.c.point_count + sx.c.point_count >= bindparam("threshold")),
        )
        .cte("long")
    )
    go = (
        select(literal_column("1").label("one"))
        .select_from(run_row, long)
        .where(run_row.c.lifecycle_stage == literal_column("'active'"), long.c.long_keys.is_(None))
        .cte("go")
    )

    def rows_of(name: str, *first: Any) -> Any:
        src = _unnest(name)
        return select(*first, *src.c).select_from(go).join(src, true())

    params = insert(p).from_select(["run_uuid", "key", "value"], rows_of("p", run_id))
    # A param logged before with another value must fail the whole statement: the update
    # that would change it casts text that is never an integer (evaluated for such rows only).
    refuse = cast(cast(literal_column("'param changed: '").op("||")(params.excluded.value),
                       Integer), Text)  # fmt: skip
    params = params.on_conflict_do_update(
        index_elements=["run_uuid", "key"],
        set_={"value": refuse},
        where=p.c.value != params.excluded.value,
    )
    tags = insert(rt).from_select(["run_uuid", "key", "value"], rows_of("t", run_id))
    tags = tags.on_conflict_do_update(
        index_elements=["run_uuid", "key"], set_={"value": tags.excluded.value}
    )
    name = bindparam("name", type_=Text)
    rename = (
        update(runs)
        .where(runs.c.run_uuid == run_id, name.is_not(None), exists(select(go.c.one)))
        .values(name=name)
    )
    summary_source = select(run_id, *sx.c).select_from(go).join(sx, true())
    summaries = insert(ms).from_select([c for c, _ in (("run_uuid", 0), *LOG_BATCH_ARRAYS["s"])],
                                       summary_source)  # fmt: skip
    # ``long`` read the series as they were when the statement began. A writer that tiled one
    # since (its transaction held the summary row, which this upsert waited for) would leave
    # this batch's points out of the tiles: the upsert returns the row as it now is, and a
    # series that is tiled or long by then fails the statement (the transaction path, which
    # writes tiles, takes the batch).
    checked_id = case(
        (
            or_(ms.c.tiled, ms.c.point_count >= bindparam("threshold")),
            cast(literal_column("'series needs tiles: '").op("||")(ms.c.key), BigInteger),
        ),
        else_=ms.c.series_id,
    )
    written = (
        summaries.on_conflict_do_update(
            index_elements=["run_uuid", "key"], set_=summary_merge(summaries.excluded)
        )
        .returning(ms.c.key, checked_id.label("series_id"))
        .cte("ws")
    )
    pt = _unnest("pt")
    points = insert(mp).from_select(
        ["series_id", "step", "timestamp", "value", "is_nan"],
        select(written.c.series_id, pt.c.step, pt.c.timestamp, pt.c.value, pt.c.is_nan)
        .select_from(pt)
        .join(written, written.c.key == pt.c.key),
    )
    stmt = (
        select(run_row.c.lifecycle_stage, long.c.long_keys)
        .select_from(run_row, long)
        .add_cte(params.cte("wp"), tags.cte("wt"), rename.cte("wn"), written, points.cte("wpt"))
    )
    return Prepared(stmt, dialect, packed_params=True)


def log_batch_args(
    run_id: str,
    name: str | None,
    threshold: int,
    params: dict[str, str],
    tags: dict[str, str],
    summaries: Sequence[tuple[Any, ...]],
    points: Sequence[tuple[Any, ...]],
) -> dict[str, Any]:
    """The parameters of :func:`log_batch_statement`: summaries and points as the write path
    lays them out (``(run_uuid, key, ...)``, see ``logging_ops``), numeric arrays packed
    (:mod:`~runyard.store.sql.pg_arrays`)."""
    from runyard.store.sql import pg_arrays  # imports psycopg: PostgreSQL only

    args: dict[str, Any] = {
        "run_uuid": run_id,
        "name": name,
        "threshold": threshold,
        "p_key": list(params),
        "p_value": list(params.values()),
        "t_key": list(tags),
        "t_value": list(tags.values()),
    }
    for prefix, rows in (("s", summaries), ("pt", points)):
        columns = LOG_BATCH_ARRAYS[prefix]
        values = list(zip(*rows, strict=True))[1:] if rows else [()] * len(columns)
        for (col, kind), data in zip(columns, values, strict=True):
            pack = pg_arrays.packer(_SQL_TYPES.get(kind, ""))
            args[f"{prefix}_{col}"] = list(data) if pack is None else pack(list(data))
    return args


#: Type names of the numeric arrays, as :func:`~runyard.store.sql.pg_arrays.packer` takes.
_SQL_TYPES: dict[Any, str] = {
    BigInteger: "BIGINT",
    Double: "DOUBLE PRECISION",
    Boolean: "BOOLEAN",
}
