"""Writing and reading logged values: log_batch and metric history.

``log_batch`` is the one write path for metrics, params and tags: one transaction and a handful
of executemany statements whatever the batch size. Points are pre-aggregated per key in Python so
the summary upsert touches each (run, key) row once per batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select, update

from runyard.entities import LifecycleStage, Metric, PagedList, Param, RunTag
from runyard.entities.run import metric_series
from runyard.errors import InvalidParameterValue
from runyard.store.base import CheckedPoints
from runyard.store.search.paging import decode_keyset_token, encode_page_token
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase
from runyard.store.sql.logged_models import write_model_metrics
from runyard.store.sql.metric_tiles import TILE_THRESHOLD, merge_rows_unread, write_tiles
from runyard.store.sql.pg_writes import log_batch_args
from runyard.store.sql.runs import RUN_NAME_TAG
from runyard.store.sql.statements import SUMMARY_COLUMNS
from runyard.utils.gc_pause import gc_paused
from runyard.utils.validation import MAX_DOUBLE, validate_batch_limits

__all__ = ["LoggingOps", "point_rows", "points_by_key", "summary_rows"]

_isnan = math.isnan
_isinf = math.isinf
_isfinite = math.isfinite
_first = itemgetter(0)
_NAN = float("nan")


def point_rows(run_id: str, metrics: Sequence[Metric]) -> list[tuple[Any, ...]]:
    """``(run_uuid, key, step, timestamp, value, is_nan)``; NaN → 0 + flag, ±Inf → ±max double."""
    rows = [(run_id, m.key, m.step, m.timestamp, m.value, False) for m in metrics]
    # A finite sum proves every value finite: the common case skips the per-value checks.
    if _isfinite(sum(r[4] for r in rows)):
        return rows
    out = []
    for row in rows:
        value = row[4]
        if _isnan(value):
            out.append((*row[:4], 0.0, True))
        elif _isinf(value):
            out.append((*row[:4], MAX_DOUBLE if value > 0 else -MAX_DOUBLE, False))
        else:
            out.append(row)
    return out


_by_order = itemgetter(2, 3, 4)
_key_of = itemgetter(1)
_SERIES_CACHE_SIZE = 20_000


def points_by_key(points: Sequence[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """A batch's points (stored form) per key, in the batch's order."""
    # Clients send a key's points together: groupby splits them at C speed; a key met again
    # later joins its earlier run.
    by_key: dict[str, list[tuple[Any, ...]]] = {}
    for key, run in groupby(points, _key_of):
        group = by_key.get(key)
        if group is None:
            by_key[key] = list(run)
        else:
            group.extend(run)
    return by_key


def summary_rows(
    points: Sequence[tuple[Any, ...]], by_key: dict[str, list[tuple[Any, ...]]] | None = None
) -> list[tuple[Any, ...]]:
    """Per key: the latest point by (step, timestamp, value), finite min and max, and count
    (``by_key``: the points grouped already, :func:`points_by_key`)."""
    out = []
    for group in (points_by_key(points) if by_key is None else by_key).values():
        latest = group[0] if len(group) == 1 else max(group, key=_by_order)
        finite = [r[4] for r in group if not r[5]]
        low, high = (min(finite), max(finite)) if finite else (None, None)
        out.append((*latest, low, high, len(group)))
    return out


def _keys_of(metrics: Sequence[Metric] | CheckedPoints) -> set[str]:
    if isinstance(metrics, CheckedPoints):
        return {row[1] for row in metrics}
    return {m.key for m in metrics}


class _PointsStored(Exception):
    """A fresh insert met a point stored already; its transaction is rolled back."""


class LoggingOps(SqlBase):
    """log_batch and get_metric_history."""

    _series_cache: dict[tuple[str, str], int]
    #: (run, key) of series known to be tiled or about to be (PostgreSQL: their batches take
    #: the transaction path unless _tile_states knows them, see _log_batch_one).
    _long_series: set[tuple[str, str]]
    #: PostgreSQL: (run, key) -> (point_count, first_step, last_step) of tiled series as this
    #: store last wrote or read them: a batch's merge into their tiles is worked out from
    #: these and written in the batch's one statement, which checks the count.
    _tile_states: dict[tuple[str, str], tuple[int, int, int]]

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Write one run's metrics, params and tags atomically: all or nothing."""
        self.log_checked_batch(run_id, metrics, params, tags)

    def log_checked_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] | CheckedPoints,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """``log_batch`` that also takes :class:`CheckedPoints` for the metrics."""
        validate_batch_limits(metrics, params, tags)
        self._log_batch(run_id, metrics, params, tags)

    def log_group(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
    ) -> None:
        """Several checked ``log_batch`` calls of one run in one transaction, past MLflow's
        per-request limits (:class:`~runyard.store.base.GroupWriter`: the background writer)."""
        self._log_batch(run_id, metrics, params, tags)

    def _forget_series(self, run_id: str, metrics: Sequence[Metric] | CheckedPoints) -> None:
        """After a rolled-back transaction: the series it created are gone, so their cached
        ids are void (SQLite hands the same ids to the next new series)."""
        for key in _keys_of(metrics):
            self._series_cache.pop((run_id, key), None)

    def _write_points(
        self,
        conn: Connection,
        run_id: str,
        metrics: Sequence[Metric] | CheckedPoints,
        fresh: bool,
    ) -> None:
        """Insert metric points and update their series' summaries and, for long series, their
        tiles (:mod:`~runyard.store.sql.metric_tiles`), in ``conn``'s transaction.

        ``fresh``: first try, on PostgreSQL, of a plain insert that raises
        :class:`_PointsStored` when a point is stored already (the caller then writes the
        batch again with ``fresh=False``).
        """
        sql = self._sql
        points = metrics if isinstance(metrics, CheckedPoints) else point_rows(run_id, metrics)
        summaries = summary_rows(points)
        if len(summaries) == 1:
            # One key: its upsert returns the series' id, point count and tiled flag.
            key = summaries[0][1]
            row = dict(zip(SUMMARY_COLUMNS, summaries[0], strict=True))
            ((sid, count, tiled),) = sql.upsert_summary.run(conn, **row).fetchall()
            ids = {key: sid}
            long = {key: (sid, count, bool(tiled))} if tiled or count >= TILE_THRESHOLD else {}
        elif sql.upsert_summaries_returning is not None:
            ids, long = {}, {}
            for key, sid, count, tiled in sql.upsert_summaries_returning.fetch_rows(
                conn, summaries
            ):
                ids[key] = sid
                if tiled or count >= TILE_THRESHOLD:
                    long[key] = (sid, count, bool(tiled))
        else:
            sql.upsert_summaries.run_rows(conn, summaries)
            ids, long = self._series_ids(conn, run_id, [s[1] for s in summaries])
        rows = [(ids[p[1]], *p[2:]) for p in points]
        if fresh and sql.insert_new_points is not None:
            dbapi = conn.dialect.loaded_dbapi
            try:
                inserted = sql.insert_new_points.run_rows(conn, rows)
            except dbapi.IntegrityError as exc:  # pk_metric_points: the only constraint
                raise _PointsStored from exc
        else:
            inserted = sql.insert_points.run_rows(conn, rows)
        duplicated = inserted != len(points)
        if duplicated:
            # Some points were stored already (a replayed batch, a point sent twice, an earlier
            # sync): they are not kept twice, so they must not be counted twice either.
            self._recount_points(conn, list(ids.values()))
        if long:
            write_tiles(conn, sql.upsert_tiles, long, points, duplicated)

    def _log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] | CheckedPoints,
        params: Sequence[Param],
        tags: Sequence[RunTag],
    ) -> None:
        fresh = True
        if self._sql.log_batch_one is not None:
            written = self._log_batch_one(run_id, metrics, params, tags)
            if written is None:
                return
            fresh = written
        try:
            try:
                self._write_batch(run_id, metrics, params, tags, fresh=fresh)
            except _PointsStored:
                # Rolled back: again, keeping the points already stored (a replayed batch).
                self._forget_series(run_id, metrics)
                self._write_batch(run_id, metrics, params, tags, fresh=False)
        except BaseException:
            self._forget_series(run_id, metrics)
            raise
        if self._sql.tile_states is not None:
            long = [key for key in _keys_of(metrics) if (run_id, key) in self._long_series]
            if long:
                self._read_tile_states(run_id, long)

    def _read_tile_states(self, run_id: str, keys: list[str]) -> None:
        """After the transaction path wrote to tiled series: their states, for the next
        batches' one statement (a series not tiled is forgotten)."""
        states = self._tile_states
        for key in keys:
            states.pop((run_id, key), None)
        if len(states) > _SERIES_CACHE_SIZE:
            states.clear()
        stmt = self._sql.tile_states
        assert stmt is not None
        with self._autocommit() as conn:
            for key, count, first, last in stmt.run(conn, run_uuid=run_id, keys=keys):
                states[(run_id, key)] = (count, first, last)

    def _known_merges(
        self, run_id: str, long: list[tuple[Any, ...]], groups: dict[str, list[tuple[Any, ...]]]
    ) -> tuple[list[tuple[str, int]], list[tuple[Any, ...]], dict[Any, Any]] | None:
        """For the batch's long series (their summaries; ``groups``: the batch's points by
        key): ``(key, point_count)`` once the batch is in, the rows merging it into their tiles,
        and their states after it; None when a series' state is unknown or the batch needs
        another tile level (the transaction path reads the tiles)."""
        known, tiles, after = [], [], {}
        for summary in long:
            key = summary[1]
            state = self._tile_states.get((run_id, key))
            if state is None:
                return None
            merged = merge_rows_unread(key, groups[key], state[1:])
            if merged is None:
                return None
            rows, (first, last) = merged
            count = state[0] + summary[-1]  # summaries end with the batch's point count
            known.append((key, count))
            tiles += rows
            after[(run_id, key)] = (count, first, last)
        return known, tiles, after

    def _log_batch_one(
        self,
        run_id: str,
        metrics: Sequence[Metric] | CheckedPoints,
        params: Sequence[Param],
        tags: Sequence[RunTag],
    ) -> bool | None:
        """The batch in one statement on an autocommit connection (PostgreSQL,
        :func:`~runyard.store.sql.pg_writes.log_batch_statement`): None when written; else
        nothing was written and the transaction path must run, ``fresh`` (False: the batch
        repeats stored points). It says why when the run is missing or not active, a param
        changes or a value is refused; it also writes the batches this one cannot merge into
        tiles: to a series crossing the tile threshold, needing another tile level, or not
        known to this store (``_tile_states``, read back after such a batch)."""
        stmt = self._sql.log_batch_one
        assert stmt is not None
        if not isinstance(metrics, CheckedPoints) and any(m.model_id for m in metrics):
            return True  # the points also belong to logged models: see _write_batch
        points = metrics if isinstance(metrics, CheckedPoints) else point_rows(run_id, metrics)
        groups = points_by_key(points)
        summaries = summary_rows(points, groups)
        long = self._long_series
        known: list[tuple[str, int]] | None = None
        tiles: list[tuple[Any, ...]] = []
        after: dict[tuple[str, str], tuple[int, int, int]] = {}
        long_summaries = [s for s in summaries if (run_id, s[1]) in long]
        if long_summaries:
            merges = self._known_merges(run_id, long_summaries, groups)
            if merges is None:
                return True
            known, tiles, after = merges
            stmt = self._sql.log_batch_tiled
            assert stmt is not None
        names = [g.value for g in tags if g.key == RUN_NAME_TAG]
        args = log_batch_args(
            run_id,
            names[-1] if names else None,
            TILE_THRESHOLD,
            {p.key: p.value for p in params},
            {g.key: g.value for g in tags},  # the last value of a key wins
            summaries,
            points,
            known,
            tiles,
        )
        dbapi = self._engine.dialect.loaded_dbapi
        fresh = True  # what the transaction path is told when the statement wrote nothing
        row = None
        with self._autocommit() as conn:
            try:
                row = stmt.run(conn, **args).fetchone()
            except dbapi.IntegrityError:  # pk_metric_points: some points are stored already
                fresh = False
            except dbapi.DataError:
                # A changed param, a refused value (the other path says which), or a series
                # that another writer changed since this store knew it.
                pass
        if row is not None and row[0] == LifecycleStage.ACTIVE:
            if row[1] is None:
                self._tile_states.update(after)
                return None
            if len(long) > _SERIES_CACHE_SIZE:
                long.clear()
            long.update((run_id, key) for key in row[1])
        for state in after:
            self._tile_states.pop(state, None)
        return fresh

    def _write_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] | CheckedPoints,
        params: Sequence[Param],
        tags: Sequence[RunTag],
        fresh: bool,
    ) -> None:
        sql = self._sql
        with self._write() as conn:
            self._check_run_active(conn, run_id)
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                sql.upsert_tags.run_rows(conn, [(run_id, g.key, g.value) for g in tags])
                names = [g.value for g in tags if g.key == RUN_NAME_TAG]
                if names:
                    sql.update_run.run(
                        conn, run_uuid=run_id, status=None, end_time=None, name=names[-1]
                    )
            if metrics:
                self._write_points(conn, run_id, metrics, fresh)
                if isinstance(metrics, CheckedPoints):
                    return
                # MLflow 3: a point logged with a model id also belongs to that logged model.
                model_points = [m for m in metrics if m.model_id is not None]
                if model_points:
                    write_model_metrics(self, conn, run_id, model_points)

    def _recount_points(self, conn: Connection, series_ids: list[int]) -> None:
        ms, mp = t.metric_summaries, t.metric_points
        stored = select(func.count()).where(mp.c.series_id == ms.c.series_id).scalar_subquery()
        conn.execute(update(ms).where(ms.c.series_id.in_(series_ids)).values(point_count=stored))

    def _series_ids(
        self, conn: Connection, run_id: str, keys: list[str]
    ) -> tuple[dict[str, int], dict[str, tuple[int, int, bool]]]:
        """Series ids of (run, key) pairs whose summaries this transaction has written, and
        ``(series_id, point_count, tiled)`` of those that are tiled or long enough to be.

        Ids never change, so they are cached per store; counts and flags are read in the
        transaction every batch (another process may have tiled a series since this one last
        wrote to it): one query either way, which returns only the long series' rows.
        """
        cache = self._series_cache
        ids: dict[str, int] = {}
        long: dict[str, tuple[int, int, bool]] = {}
        missing = []
        for key in keys:
            sid = cache.get((run_id, key))
            if sid is None:
                missing.append(key)
            else:
                ids[key] = sid
        if ids:
            by_id = {f"s{i}": sid for i, sid in enumerate(ids.values())}
            lookup = self._sql.series_states(len(ids))
            found = lookup.run(conn, threshold=TILE_THRESHOLD, **by_id).fetchall()
            if found:
                key_of = {sid: key for key, sid in ids.items()}
                for sid, count, tiled in found:
                    long[key_of[sid]] = (sid, count, bool(tiled))
        if missing:
            named = {f"k{i}": key for i, key in enumerate(missing)}
            lookup = self._sql.series_ids(len(missing))
            found = lookup.run(conn, run_uuid=run_id, **named).fetchall()
            if len(cache) > _SERIES_CACHE_SIZE:
                cache.clear()
            for key, sid, count, tiled in found:
                ids[key] = cache[(run_id, key)] = sid
                if tiled or count >= TILE_THRESHOLD:
                    long[key] = (sid, count, bool(tiled))
        return ids, long

    def _insert_params(self, conn: Connection, run_id: str, params: Sequence[Param]) -> None:
        wanted = {p.key: p.value for p in params}
        inserted = self._sql.insert_params.run_rows(
            conn, [(run_id, k, v) for k, v in wanted.items()]
        )
        if inserted == len(wanted):
            return
        # Some keys existed already: that is fine only when the values are the same.
        p = t.params
        existing = dict(
            conn.execute(
                select(p.c.key, p.c.value).where(p.c.run_uuid == run_id, p.c.key.in_(list(wanted)))
            ).all()
        )
        changed = [k for k, v in wanted.items() if existing.get(k, v) != v]
        if changed:
            details = " ".join(
                f"Param with key='{k}' was already logged with value='{existing[k]}' for run "
                f"ID='{run_id}'. Attempted logging new value '{wanted[k]}'."
                for k in changed[:5]
            )
            raise InvalidParameterValue(f"Changing param values is not allowed. {details}")

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """Every point of a series in (timestamp, step, value) order, optionally paged.

        A page's token carries its last point's key besides the offset, so the next page is
        read from that key on (a range scan) rather than by skipping ``offset`` points. The
        cyclic garbage collector waits meanwhile (:mod:`runyard.utils.gc_pause`).
        """
        with gc_paused():
            return self._history(run_id, metric_key, max_results, page_token)

    def _history(
        self, run_id: str, metric_key: str, max_results: int | None, page_token: str | None
    ) -> PagedList[Metric]:
        offset, after = decode_keyset_token(page_token, 4)
        sql = self._sql
        token = None
        with self._read() as conn:
            found = sql.series_id.run(conn, run_uuid=run_id, key=metric_key).fetchone()
            if found is None:
                rows = []
            elif max_results is None:
                rows = sql.history.run(conn, series_id=found[0]).fetchall()[offset:]
            else:
                # Only this page leaves the database (one more row tells whether more follow).
                sid, limit = found[0], max_results + 1
                if after is None:
                    page = sql.history_page.run(conn, series_id=sid, limit=limit, offset=offset)
                else:
                    named = dict(zip(("ts", "step", "value", "is_nan"), after, strict=True))
                    page = sql.history_after.run(
                        conn, series_id=sid, limit=limit, offset=0, **named
                    )
                rows = page.fetchall()
                if len(rows) > max_results:
                    value, ts, step = rows[max_results - 1]
                    key = (ts, step, 0.0, True) if value is None else (ts, step, value, False)
                    token = encode_page_token(offset + max_results, key)
                    rows = rows[:max_results]
        if None in map(_first, rows):
            rows = [(_NAN if v is None else v, ts, st) for v, ts, st in rows]
        return PagedList(metric_series(metric_key, run_id, rows), token)
