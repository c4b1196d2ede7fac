"""The fixed statements of the hot paths, compiled once per store (see ``prepared.py``)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from runyard.store.sql import schema as t
from runyard.store.sql.metric_tiles import ROOT_LEVEL
from runyard.store.sql.pg_writes import (
    create_run_statement,
    log_batch_statement,
    tile_states_statement,
    update_run_statement,
)
from runyard.store.sql.prepared import Prepared

__all__ = [
    "POINT_COLUMNS",
    "RUN_COLUMNS",
    "SUMMARY_COLUMNS",
    "TILE_COLUMNS",
    "RunRecord",
    "Statements",
]

POINT_COLUMNS = ("series_id", "step", "timestamp", "value", "is_nan")
MODEL_METRIC_COLUMNS = (
    "model_id",
    "key",
    "timestamp",
    "step",
    "run_id",
    "value",
    "is_nan",
    "dataset_name",
    "dataset_digest",
)
SUMMARY_COLUMNS = (
    "run_uuid",
    "key",
    "step",
    "timestamp",
    "value",
    "is_nan",
    "min_value",
    "max_value",
    "point_count",
)
TILE_COLUMNS = tuple(c.name for c in t.metric_tiles.columns)
RUN_COLUMNS = tuple(c.name for c in t.runs.columns)
#: A ``runs`` row read through a prepared statement, with attribute access like a Core Row.
RunRecord = namedtuple("RunRecord", RUN_COLUMNS)  # type: ignore[misc]


def _insert(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> Any:
    module = postgresql if dialect.name == "postgresql" else sqlite
    return module.insert(table).values({c: bindparam(c) for c in columns})


def _pick(cond: Any, new: Any, old: Any) -> Any:
    return case((cond, new), else_=old)


def _summary_upsert(dialect: Dialect) -> Any:
    stmt = _insert(dialect, t.metric_summaries, SUMMARY_COLUMNS)
    return stmt.on_conflict_do_update(
        index_elements=["run_uuid", "key"], set_=summary_merge(stmt.excluded)
    )


def summary_merge(new: Any) -> dict[str, Any]:
    """The ``SET`` of an upsert merging a batch's summary (``new``: the statement's
    ``excluded``) into the stored one of its series."""
    old = t.metric_summaries.c
    # MLflow's rule: the latest value is the one with the greatest (step, timestamp, value).
    newer = tuple_(new.step, new.timestamp, new.value) > tuple_(old.step, old.timestamp, old.value)
    return {
        "value": _pick(newer, new.value, old.value),
        "timestamp": _pick(newer, new.timestamp, old.timestamp),
        "step": _pick(newer, new.step, old.step),
        "is_nan": _pick(newer, new.is_nan, old.is_nan),
        "min_value": case(
            (old.min_value.is_(None), new.min_value),
            (and_(new.min_value.is_not(None), new.min_value < old.min_value), new.min_value),
            else_=old.min_value,
        ),
        "max_value": case(
            (old.max_value.is_(None), new.max_value),
            (and_(new.max_value.is_not(None), new.max_value > old.max_value), new.max_value),
            else_=old.max_value,
        ),
        "point_count": old.point_count + new.point_count,
    }


def _tile_upsert(dialect: Dialect) -> Any:
    """Merge a batch's summary of a tile into the stored one (metric_tiles.write_tiles)."""
    stmt = _insert(dialect, t.metric_tiles, TILE_COLUMNS)
    return stmt.on_conflict_do_update(
        index_elements=["series_id", "level", "tile"], set_=tile_merge(stmt.excluded)
    )


def tile_merge(new: Any) -> dict[str, Any]:
    """The ``SET`` of an upsert merging a batch's summary of a tile (``new``: the statement's
    ``excluded``) into the stored tile."""
    old = t.metric_tiles.c
    earlier = tuple_(new.first_step, new.first_timestamp) < tuple_(
        old.first_step, old.first_timestamp
    )
    later = tuple_(new.last_step, new.last_timestamp) > tuple_(old.last_step, old.last_timestamp)
    # NULL (no finite point) never wins against a value: ``NULL < x`` is not true.
    lower = or_(old.min_value.is_(None), new.min_value < old.min_value)
    higher = or_(old.max_value.is_(None), new.max_value > old.max_value)
    no_nan = old.nan_step.is_(None)
    picks = {
        **{f"first_{c}": earlier for c in ("step", "timestamp", "value", "is_nan")},
        **{f"last_{c}": later for c in ("step", "timestamp", "value", "is_nan")},
        **{f"min_{c}": lower for c in ("value", "step", "timestamp")},
        **{f"max_{c}": higher for c in ("value", "step", "timestamp")},
        "nan_step": no_nan,
        "nan_timestamp": no_nan,
        "min_time": new.min_time < old.min_time,
        "max_time": new.max_time > old.max_time,
    }
    return {
        "n": old.n + new.n,
        **{name: _pick(cond, new[name], old[name]) for name, cond in picks.items()},
    }


#: A condition on a ``run_uuid`` (or ``input_uuid``) column: "is one of the ids".
Match = Callable[[Any], Any]


def _in_list(count: int) -> Match:
    """``column IN (:r0, .., :r<count-1>)``: SQLite's way, one compiled form per count."""
    ids: list[Any] = [bindparam(f"r{i}") for i in range(count)]
    return lambda column: column.in_(ids)


def _any_array(column: Any) -> Any:
    """``column = ANY((SELECT :ids))``: PostgreSQL's way, one statement (and one server-side
    prepared plan) for any number of ids, passed as one array.

    The array is read through a sub-select so that the planner does not see it: planning
    ``= ANY(:ids)`` with the ids in hand, PostgreSQL estimates every id and, on tables of a few
    thousand runs, picks sequential scans that test every row against the array (8 ms for a
    page of 100 runs, 2.5 ms by index). An unknown array is planned as the lookups it is, the
    plan PostgreSQL also settles on once a prepared statement goes generic, if it does.
    """
    array = postgresql.ARRAY(Text)
    return column == any_(cast(select(bindparam("ids", type_=array)).scalar_subquery(), array))


def _children_of_runs(match: Match) -> Any:
    """``(run_uuid, kind, key, text, number, timestamp, step, is_nan)`` rows of many runs:
    p(arams) and t(ags) as (key, text), latest m(etrics) as (key, number, timestamp, step,
    is_nan), one i row per run that has dataset inputs, and the r(un models) the runs used or
    produced as (model_id, direction, step). One statement instead of five: on PostgreSQL each
    is a round trip and a plan."""
    p, rt, ms, di, rm = t.params, t.run_tags, t.metric_summaries, t.dataset_inputs, t.run_models
    # Typed NULLs: PostgreSQL wants every column of a UNION to have one type.
    no_text, no_num = cast(null(), Text), cast(null(), t.Double)
    no_int, no_bool = cast(null(), BigInteger), cast(null(), Boolean)

    def kind(letter: str) -> Any:
        return literal_column(f"'{letter}'")

    return union_all(
        select(p.c.run_uuid, kind("p"), p.c.key, p.c.value, no_num, no_int, no_int, no_bool).where(
            match(p.c.run_uuid)
        ),
        select(
            rt.c.run_uuid, kind("t"), rt.c.key, rt.c.value, no_num, no_int, no_int, no_bool
        ).where(match(rt.c.run_uuid)),
        select(
            ms.c.run_uuid,
            kind("m"),
            ms.c.key,
            no_text,
            ms.c.value,
            ms.c.timestamp,
            ms.c.step,
            ms.c.is_nan,
        ).where(match(ms.c.run_uuid)),
        select(di.c.run_uuid, kind("i"), no_text, no_text, no_num, no_int, no_int, no_bool)
        .where(match(di.c.run_uuid))
        .distinct(),
        select(
            rm.c.run_uuid,
            kind("r"),
            rm.c.model_id,
            rm.c.direction,
            no_num,
            no_int,
            rm.c.step,
            no_bool,
        ).where(match(rm.c.run_uuid)),
    )


def _of_runs_select(what: str, match: Match) -> Any:
    if what == "children":
        return _children_of_runs(match)
    if what == "inputs":
        di, ds = t.dataset_inputs, t.datasets
        columns = [di.c.run_uuid, di.c.input_uuid, ds.c.name, ds.c.digest, ds.c.source_type]
        return (
            select(*columns, ds.c.source, ds.c.schema, ds.c.profile)
            .join(ds, ds.c.dataset_uuid == di.c.dataset_uuid)
            .where(match(di.c.run_uuid))
            .order_by(di.c.run_uuid, ds.c.name, ds.c.digest)
        )
    if what == "models":
        rm = t.run_models.c
        return select(rm.run_uuid, rm.step, rm.model_id, rm.direction).where(match(rm.run_uuid))
    if what == "input_tags":
        it = t.input_tags
        return select(it.c.input_uuid, it.c.name, it.c.value).where(match(it.c.input_uuid))
    if what in ("params_json", "tags_json"):
        # SQLite: each run's params (tags) as MLflow's JSON list of {"key", "value"}, built by
        # SQLite's JSON functions in (run, key) order, the primary key's, which GROUP BY walks.
        kv = (t.params if what == "params_json" else t.run_tags).c
        key: Any = literal_column("'key'")
        value: Any = literal_column("'value'")
        doc = func.json_group_array(func.json_object(key, kv.key, value, kv.value))
        return select(kv.run_uuid, doc).where(match(kv.run_uuid)).group_by(kv.run_uuid)
    table = {"params": t.params, "tags": t.run_tags, "metrics": t.metric_summaries}[what]
    c = table.c
    extra = [c.timestamp, c.step, c.is_nan] if what == "metrics" else []
    return select(c.run_uuid, c.key, c.value, *extra).where(match(c.run_uuid))


class Statements:
    """Every prepared statement of one store."""

    def series_ids(self, count: int) -> Prepared:
        """``(key, series_id, point_count, tiled)`` of ``count`` keys (params ``run_uuid``,
        ``k0``..``k<count-1>``)."""
        found = self._series_ids.get(count)
        if found is None:
            ms = t.metric_summaries.c
            stmt = select(ms.key, ms.series_id, ms.point_count, ms.tiled).where(
                ms.run_uuid == bindparam("run_uuid"),
                ms.key.in_([bindparam(f"k{i}") for i in range(count)]),
            )
            found = self._series_ids[count] = Prepared(stmt, self._dialect)
        return found

    def series_states(self, count: int) -> Prepared:
        """``(series_id, point_count, tiled)`` of those of ``count`` series (params ``s0``..)
        that are tiled or hold ``threshold`` points: lookups by primary key, and only the rows
        a batch's tiles need come back."""
        found = self._series_states.get(count)
        if found is None:
            ms = t.metric_summaries.c
            stmt = select(ms.series_id, ms.point_count, ms.tiled).where(
                ms.series_id.in_([bindparam(f"s{i}") for i in range(count)]),
                or_(ms.tiled, ms.point_count >= bindparam("threshold")),
            )
            found = self._series_states[count] = Prepared(stmt, self._dialect)
        return found

    def of_runs(self, what: str, count: int) -> Prepared:
        """Rows of ``params``/``tags``/``metrics``/``models``/``inputs``/``children`` (see
        :func:`_children_of_runs`) for ``count`` runs, or of ``input_tags`` for ``count``
        inputs, as an ``IN`` list (parameters ``r0``..).

        Compiled once per page size: pages of runs are read with the same few sizes.
        """
        found = self._of_runs.get((what, count))
        if found is None:
            if len(self._of_runs) > 256:
                self._of_runs.clear()
            found = self._of_runs[(what, count)] = Prepared(
                _of_runs_select(what, _in_list(count)), self._dialect
            )
        return found

    def of_runs_any(self, what: str) -> Prepared:
        """:meth:`of_runs` for PostgreSQL: the ids as one array parameter ``ids``."""
        found = self._of_runs_any.get(what)
        if found is None:
            found = self._of_runs_any[what] = Prepared(
                _of_runs_select(what, _any_array), self._dialect
            )
        return found

    def rows_of_runs(self, conn: Connection, what: str, ids: Sequence[str]) -> list[Any]:
        """Execute :meth:`of_runs` for ``ids``; returns its rows (tuples).

        On PostgreSQL the ids go as one array (``= ANY(:ids)``): the statement's text is the
        same for every page size, so the driver prepares it on the server after a few
        executions and PostgreSQL stops planning it again. The rows are fetched at once:
        iterating a psycopg cursor costs a Python call per row, which was 30 % of a 1,000-run
        page (``fetchall`` converts them in one call).
        """
        if self._dialect.name == "postgresql":
            cursor = self.of_runs_any(what).run(conn, ids=list(ids))
        else:
            named = {f"r{i}": value for i, value in enumerate(ids)}
            cursor = self.of_runs(what, len(ids)).run(conn, **named)
        return cursor.fetchall()  # type: ignore[no-any-return]

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._series_ids: dict[int, Prepared] = {}
        self._series_states: dict[int, Prepared] = {}
        self._of_runs: dict[tuple[str, int], Prepared] = {}
        self._of_runs_any: dict[str, Prepared] = {}
        runs, mp, ms = t.runs, t.metric_points, t.metric_summaries
        p, rt, exp = t.params, t.run_tags, t.experiments
        run_id: Any = bindparam("run_uuid")

        def prep(stmt: Any, columns: tuple[str, ...] = (), distinct: bool = False) -> Prepared:
            return Prepared(stmt, dialect, columns, distinct_rows=distinct)

        self.run_row = prep(select(runs).where(runs.c.run_uuid == run_id))
        self.run_state = prep(
            select(runs.c.lifecycle_stage, runs.c.experiment_id).where(runs.c.run_uuid == run_id)
        )
        self.experiment_state = prep(
            select(exp.c.experiment_id, exp.c.lifecycle_stage, exp.c.artifact_location).where(
                exp.c.experiment_id == bindparam("experiment_id")
            )
        )
        self.insert_run = prep(_insert(dialect, runs, RUN_COLUMNS), RUN_COLUMNS)
        changes: dict[str, Any] = {
            "status": func.coalesce(bindparam("status"), runs.c.status),
            "end_time": func.coalesce(bindparam("end_time"), runs.c.end_time),
            "name": func.coalesce(bindparam("name"), runs.c.name),
        }
        self.update_run = prep(update(runs).where(runs.c.run_uuid == run_id).values(changes))
        # One statement outside a transaction on PostgreSQL (pg_writes); None elsewhere.
        self.create_run_one = create_run_statement(dialect)
        self.update_run_one = update_run_statement(dialect, RUN_COLUMNS)
        self.log_batch_one = log_batch_statement(dialect, summary_merge)
        self.log_batch_tiled = log_batch_statement(dialect, summary_merge, tile_merge)
        self.tile_states = tile_states_statement(dialect, ROOT_LEVEL)
        # update_run_info: the check that the run is active, the update and the read of the
        # updated row in one statement (one round trip instead of three on PostgreSQL).
        self.update_active_run = prep(
            update(runs)
            .where(runs.c.run_uuid == run_id, runs.c.lifecycle_stage == literal_column("'active'"))
            .values(changes)
            .returning(*runs.c)
        )
        kv = ("run_uuid", "key", "value")
        self.insert_params = prep(_insert(dialect, p, kv).on_conflict_do_nothing(), kv)
        tag_insert = _insert(dialect, rt, kv)
        self.upsert_tags = prep(
            tag_insert.on_conflict_do_update(
                index_elements=["run_uuid", "key"], set_={"value": tag_insert.excluded.value}
            ),
            kv,
        )
        self.insert_points = prep(
            _insert(dialect, mp, POINT_COLUMNS).on_conflict_do_nothing(), POINT_COLUMNS
        )
        # PostgreSQL: points are first inserted without ON CONFLICT, whose speculative
        # insertion costs ~40 % more per row; a batch that repeats a stored point fails and is
        # written again with insert_points (LoggingOps._write_points).
        self.insert_new_points = (
            prep(_insert(dialect, mp, POINT_COLUMNS), POINT_COLUMNS)
            if dialect.name == "postgresql"
            else None
        )
        # One row per key (summary_rows) and per tile (metric_tiles._merge_batch checks).
        self.upsert_summaries = prep(_summary_upsert(dialect), SUMMARY_COLUMNS, distinct=True)
        # PostgreSQL: many keys' upserts in one statement of arrays that also returns what
        # the write path reads next (saves the series_ids / series_states round trip).
        self.upsert_summaries_returning = (
            prep(
                _summary_upsert(dialect).returning(
                    ms.c.key, ms.c.series_id, ms.c.point_count, ms.c.tiled
                ),
                SUMMARY_COLUMNS,
                distinct=True,
            )
            if dialect.name == "postgresql"
            else None
        )
        # One series' upsert (a batch of one key) returns what the write path reads next.
        self.upsert_summary = prep(
            _summary_upsert(dialect).returning(ms.c.series_id, ms.c.point_count, ms.c.tiled)
        )
        self.upsert_tiles = prep(_tile_upsert(dialect), TILE_COLUMNS, distinct=True)
        model_metric = _insert(dialect, t.logged_model_metrics, MODEL_METRIC_COLUMNS)
        self.upsert_model_metrics = prep(
            model_metric.on_conflict_do_update(
                index_elements=["model_id", "key", "timestamp", "step", "run_id"],
                set_={
                    name: model_metric.excluded[name]
                    for name in ("value", "is_nan", "dataset_name", "dataset_digest")
                },
            ),
            MODEL_METRIC_COLUMNS,
        )
        # (kind, key, text value, metric value, timestamp, step, is_nan) rows for p(arams),
        # t(ags), m(etrics), i(nputs) and r(un models): one query serves a run read.
        di, rm = t.dataset_inputs, t.run_models
        # Typed NULLs: PostgreSQL wants every column of a UNION to have one type.
        no_text, no_num = cast(null(), Text), cast(null(), t.Double)
        no_int, no_bool = cast(null(), BigInteger), cast(null(), Boolean)

        def kind(letter: str) -> Any:
            return literal_column(f"'{letter}'")

        # Named by the first select, for the subquery of ``run_read``.
        names = ("kind", "key", "text", "num", "ts", "step", "is_nan")
        first = (kind("p"), p.c.key, p.c.value, no_num, no_int, no_int, no_bool)
        children = union_all(
            select(*(c.label(n) for c, n in zip(first, names, strict=True))).where(
                p.c.run_uuid == run_id
            ),
            select(kind("t"), rt.c.key, rt.c.value, no_num, no_int, no_int, no_bool).where(
                rt.c.run_uuid == run_id
            ),
            select(
                kind("m"), ms.c.key, no_text, ms.c.value, ms.c.timestamp, ms.c.step, ms.c.is_nan
            ).where(ms.c.run_uuid == run_id),
            # Always exactly one row; its key is NULL when the run has no dataset inputs.
            select(
                kind("i"), func.min(di.c.input_uuid), no_text, no_num, no_int, no_int, no_bool
            ).where(di.c.run_uuid == run_id),
            # Logged models the run used or produced: (model_id, direction, step).
            select(
                kind("r"), rm.c.model_id, rm.c.direction, no_num, no_int, rm.c.step, no_bool
            ).where(rm.c.run_uuid == run_id),
        )
        self.run_children = prep(children)
        # PostgreSQL: the run's row joined with each of its children rows (the "i" row is
        # always there), a run read in one round trip, the run's columns first. (SQLite has no
        # round trips to save and materializes the union first: two statements are faster.)
        found = children.subquery("children")
        self.run_read = prep(
            select(*runs.c, *found.c)
            .select_from(runs.outerjoin(found, true()))
            .where(runs.c.run_uuid == run_id)
        )
        self.series_id = prep(
            select(ms.c.series_id).where(ms.c.run_uuid == run_id, ms.c.key == bindparam("key"))
        )
        # NaN comes back as NULL, in Metric's argument order: (value, timestamp, step).
        self.history = prep(
            select(
                case((mp.c.is_nan == true(), null()), else_=mp.c.value), mp.c.timestamp, mp.c.step
            )
            .where(mp.c.series_id == bindparam("series_id"))
            .order_by(mp.c.timestamp, mp.c.step, mp.c.value)
        )
        # One page of a series: the official client reads long histories 25,000 points at a
        # time; each page is a range scan that skips ``offset`` rows in the database.
        self.history_page = prep(
            select(
                case((mp.c.is_nan == true(), null()), else_=mp.c.value), mp.c.timestamp, mp.c.step
            )
            .where(mp.c.series_id == bindparam("series_id"))
            .order_by(mp.c.timestamp, mp.c.step, mp.c.value, mp.c.is_nan)
            .limit(bindparam("limit"))
            .offset(bindparam("offset"))
        )
        # The next page after a known point (keyset): a range scan that starts at that point
        # of the primary key, where OFFSET would step over every point before it.
        self.history_after = prep(
            select(
                case((mp.c.is_nan == true(), null()), else_=mp.c.value), mp.c.timestamp, mp.c.step
            )
            .where(
                mp.c.series_id == bindparam("series_id"),
                tuple_(mp.c.timestamp, mp.c.step, mp.c.value, mp.c.is_nan)
                > tuple_(
                    bindparam("ts"), bindparam("step"), bindparam("value"), bindparam("is_nan")
                ),
            )
            .order_by(mp.c.timestamp, mp.c.step, mp.c.value, mp.c.is_nan)
            .limit(bindparam("limit"))
            .offset(bindparam("offset"))  # 0; SQLite's LIMIT comes with an OFFSET anyway
        )
