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
    Float,
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, insert
from sqlalchemy.engine import Dialect

from runyard.store.sql import schema as t
from runyard.store.sql.prepared import Prepared

__all__ = [
    "LOG_BATCH_ARRAYS",
    "create_run_statement",
    "log_batch_args",
    "log_batch_statement",
    "tile_states_statement",
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


_TILE_STATES = """
SELECT ms.key, ms.point_count, root.first_step, root.last_step
FROM metric_summaries AS ms
JOIN metric_tiles AS root ON root.series_id = ms.series_id AND root.level = {root} AND root.tile = 0
WHERE ms.run_uuid = :run_uuid AND ms.key = ANY(CAST(:keys AS TEXT[])) AND ms.tiled
"""


def tile_states_statement(dialect: Dialect, root_level: int) -> Prepared | None:
    """``(key, point_count, first_step, last_step)`` of a run's tiled series among ``keys``
    (parameters ``run_uuid``, ``keys``): what :func:`log_batch_statement` needs to know to
    merge a batch into their tiles. PostgreSQL only."""
    if dialect.name != "postgresql":
        return None
    return Prepared(text(_TILE_STATES.format(root=int(root_level))), dialect)


def _array_kind(column_type: Any) -> Any:
    """The type of an array of a numeric column's values (as :data:`_SQL_TYPES` knows it)."""
    if isinstance(column_type, Boolean):
        return Boolean
    if isinstance(column_type, Float):
        return Double
    return Integer if type(column_type) is Integer else BigInteger


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
    # A point's series is the position (from 1) of its key among the summaries ``s``: psycopg
    # sends 1,000 repeated keys as text (~1 ms of client CPU), positions as a packed array.
    "pt": (
        ("series", Integer),
        ("step", BigInteger),
        ("timestamp", BigInteger),
        ("value", Double),
        ("is_nan", Boolean),
    ),
    # Tiled series the caller knows (key and point count once the batch is in), and the
    # batch's merge into their tiles: ``metric_tiles`` rows with the key for the series id.
    "x": (("key", Text), ("point_count", BigInteger)),
    "tl": (
        ("key", Text),
        *((c.name, _array_kind(c.type)) for c in t.metric_tiles.columns if c.name != "series_id"),
    ),
}


def _unnest(name: str, ordinality: str | None = None) -> Any:
    """``unnest(:name_a, :name_b, ..) AS name(a, b, ..)`` over :data:`LOG_BATCH_ARRAYS`, with
    the elements' positions (from 1) as column ``ordinality`` if given."""
    columns = LOG_BATCH_ARRAYS[name]
    arrays = [bindparam(f"{name}_{c}", type_=ARRAY(kind)) for c, kind in columns]
    return (
        func.unnest(*arrays)
        .table_valued(*(column(c, kind) for c, kind in columns), with_ordinality=ordinality)
        .render_derived(name=name)
    )


def log_batch_statement(
    dialect: Dialect,
    summary_merge: Callable[[Any], dict[str, Any]],
    tile_merge: Callable[[Any], dict[str, Any]] | None = None,
) -> Prepared | None:
    """``log_batch`` of one run in one statement (PostgreSQL), for batches whose series are
    short, or (with ``tile_merge``: the statement that also takes ``x_*`` and ``tl_*``) tiled
    with a merge the caller could work out without reading them (see
    :mod:`~runyard.store.sql.metric_tiles`). Small batches, the common ones, take the form
    without tiles: its 24 arrays fewer cost ~0.25 ms a batch.

    Parameters: ``run_uuid``, ``name`` (the batch's last ``mlflow.runName`` tag or NULL),
    ``threshold`` (``TILE_THRESHOLD``) and the arrays of :data:`LOG_BATCH_ARRAYS` (params
    ``p_*``, tags ``t_*``, one summary per key ``s_*``, points ``pt_*``, the tiled series the
    caller knows ``x_*`` and their tile rows ``tl_*``). Writes only when the run is active and
    each of the batch's series is either short (untiled, under ``threshold`` points with the
    batch) or one of ``x_key``, tiled and at ``x_point_count`` points with the batch, that is,
    no other writer has written to it since the caller last did. A param logged before with
    another value, a point stored already, or a series that is not as the caller knew it
    fails the statement (nothing written: the caller's transaction path then says why, keeps
    the stored points or reads the tiles). Returns one row ``(lifecycle_stage, long_keys)``
    when the run exists, where ``long_keys`` (series that need the transaction path) is NULL
    when the batch was written.
    """
    if dialect.name != "postgresql":
        return None
    runs, p, rt, ms, mp = t.runs, t.params, t.run_tags, t.metric_summaries, t.metric_points
    run_id = bindparam("run_uuid", type_=Text)
    run_row = select(runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id).cte("run")
    sx = select(_unnest("s", ordinality="ord")).cte("sx")
    threshold: Any = bindparam("threshold")
    needs_tiles = or_(ms.c.tiled, ms.c.point_count + sx.c.point_count >= threshold)
    if tile_merge is not None:
        known_keys = bindparam("x_key", type_=ARRAY(Text))
        needs_tiles = and_(needs_tiles, not_(and_(ms.c.tiled, ms.c.key == any_(known_keys))))
    long = (
        select(func.array_agg(ms.c.key).label("long_keys"))
        .select_from(ms.join(sx, ms.c.key == sx.c.key))
        .where(ms.c.run_uuid == run_id, needs_tiles)
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
    summary_columns = [sx.c[c] for c, _ in LOG_BATCH_ARRAYS["s"]]
    summary_source = select(run_id, *summary_columns).select_from(go).join(sx, true())
    summaries = insert(ms).from_select([c for c, _ in (("run_uuid", 0), *LOG_BATCH_ARRAYS["s"])],
                                       summary_source)  # fmt: skip
    # ``long`` read the series as they were when the statement began; the summary upsert may
    # have waited for another writer's transaction, which held the row. The upsert returns
    # the row as it now is: a series that another writer tiled or lengthened meanwhile fails
    # the statement (its points would miss the tiles, or the known merge would be wrong).
    as_known: Any = and_(not_(ms.c.tiled), ms.c.point_count < threshold)
    if tile_merge is not None:
        x = _unnest("x")
        # (RETURNING does not correlate a subquery to the target table: named by hand.)
        returned_key: Any = literal_column("metric_summaries.key")
        known_count = select(x.c.point_count).where(x.c.key == returned_key).scalar_subquery()
        as_known = or_(
            and_(known_count.is_(None), as_known),
            and_(ms.c.tiled, ms.c.point_count == known_count),
        )
    checked_id = case(
        (as_known, ms.c.series_id),
        else_=cast(literal_column("'series changed: '").op("||")(ms.c.key), BigInteger),
    )
    written = (
        summaries.on_conflict_do_update(
            index_elements=["run_uuid", "key"], set_=summary_merge(summaries.excluded)
        )
        .returning(ms.c.key, checked_id.label("series_id"))
        .cte("ws")
    )
    # The written series' ids in the order of the summaries, for the points to pick by index.
    ids = (
        select(func.array_agg(aggregate_order_by(written.c.series_id, sx.c.ord)).label("ids"))
        .select_from(written.join(sx, sx.c.key == written.c.key))
        .cte("ids")
    )
    pt = _unnest("pt")
    points = insert(mp).from_select(
        ["series_id", "step", "timestamp", "value", "is_nan"],
        select(ids.c.ids[pt.c.series], pt.c.step, pt.c.timestamp, pt.c.value, pt.c.is_nan)
        .select_from(pt)
        .join(ids, ids.c.ids.is_not(None)),  # NULL: nothing written (``go`` found no row)
    )
    writes = [params.cte("wp"), tags.cte("wt"), rename.cte("wn"), written, points.cte("wpt")]
    if tile_merge is not None:
        tl = _unnest("tl")
        tile_columns = [c.name for c in t.metric_tiles.columns]  # series_id first
        tiles = insert(t.metric_tiles).from_select(
            tile_columns,
            select(written.c.series_id, *(tl.c[c] for c in tile_columns[1:]))
            .select_from(tl)
            .join(written, written.c.key == tl.c.key),
        )
        tiles = tiles.on_conflict_do_update(
            index_elements=["series_id", "level", "tile"], set_=tile_merge(tiles.excluded)
        )
        writes.append(tiles.cte("wtl"))
    stmt = (
        select(run_row.c.lifecycle_stage, long.c.long_keys)
        .select_from(run_row, long)
        .add_cte(*writes)
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
    known: Sequence[tuple[str, int]] | None = None,
    tiles: Sequence[tuple[Any, ...]] = (),
) -> dict[str, Any]:
    """The parameters of :func:`log_batch_statement`: summaries and points as the write path
    lays them out (``(run_uuid, key, ...)``, see ``logging_ops``), and for the form with tiles
    (``known`` given) the known tiled series ``(key, point_count)`` and their tile rows
    (``metric_tiles`` columns, the key for the series id); numeric arrays packed
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
    arrays: list[tuple[str, Sequence[tuple[Any, ...]], int]] = [
        ("s", summaries, 1),
        ("pt", points, 1),
    ]
    if known is not None:
        arrays += [("x", known, 0), ("tl", tiles, 0)]
    for prefix, rows, skip in arrays:
        columns = LOG_BATCH_ARRAYS[prefix]
        values: list[Any] = [()] * len(columns)
        if rows:
            values = list(zip(*rows, strict=True))[skip:]
        if prefix == "pt" and rows:
            position = {row[1]: i for i, row in enumerate(summaries, start=1)}
            values[0] = list(map(position.__getitem__, values[0]))  # keys -> series
        for (col, kind), data in zip(columns, values, strict=True):
            pack = pg_arrays.packer(_SQL_TYPES.get(kind, ""))
            args[f"{prefix}_{col}"] = list(data) if pack is None else pack(list(data))
    return args


#: Type names of the numeric arrays, as :func:`~runyard.store.sql.pg_arrays.packer` takes.
_SQL_TYPES: dict[Any, str] = {
    BigInteger: "BIGINT",
    Integer: "INTEGER",
    Double: "DOUBLE PRECISION",
    Boolean: "BOOLEAN",
}
