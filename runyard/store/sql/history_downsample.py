"""Metric histories reduced to at most N points for charts, in the database.

A chart is at most a few thousand pixels wide, so a 1M-point series is drawn from a few thousand
points chosen so the picture does not change: the x range is split into buckets and each bucket
keeps its first and last point (the line enters and leaves at the right height), its minimum and
maximum (no peak or dip is ever lost) and, when the bucket mixes NaN with numbers, one NaN (the gap
stays visible). This is M4 aggregation (Jugel et al., VLDB 2014). Only the chosen points leave
the database; the result always holds the first and last point and is ordered by step.

NaN is stored as ``value = 0, is_nan = true`` and never counts as a minimum or maximum; ±Inf is
stored as ±max double and is a true extreme.

Two plans, both in SQL:

* **Buckets of time** (SQLite). ``metric_points`` is clustered by ``(series_id, timestamp, ...)``,
  so a time range of one series is a primary-key range scan. The series' time span is split into
  chunks and one statement computes per chunk, by correlated subqueries over its key range, the
  count and step range, and the keys of its lowest and highest point (SQLite's "bare column"
  rule: with a single ``min()``/``max()`` the other columns come from that row). No sort; three
  passes over the points. When the chunks' step ranges are in order and do not overlap (a series
  logged in step order, the usual case) the chunks *are* step buckets and the result is exact
  M4 by step; the chosen points are then read by primary-key seeks.
* **Buckets of steps** (PostgreSQL, and SQLite's fallback for series whose steps go back in
  time or whose points bunch in time): one statement — a GROUP BY over the step buckets, a join
  back to find the points holding each bucket's extremes, and one representative per bucket and
  role. PostgreSQL aggregates with a hash table; SQLite sorts, which makes it ~3x slower.

Series whose points all sit at (nearly) one step — metrics logged without a step — are bucketed
by timestamp in the second plan, so the time axis still shows their shape.

Long series (8,192 points and more) have **tiles** (:mod:`~runyard.store.sql.metric_tiles`):
summaries of their step ranges kept up to date on write, from which M4 reads a few thousand rows
whatever the series' length. Only step ranges too narrow for the finest tiles that hold too many
points to return whole still use the plans above, restricted to the time span the tiles give.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, TextClause, text

from runyard.entities import Metric
from runyard.entities.run import metric_series
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.sql.base import SqlBase
from runyard.store.sql.metric_tiles import TileFallback, tile_downsample

__all__ = ["MAX_POINTS_LIMIT", "MIN_POINTS_LIMIT", "HistoryDownsampleOps"]

#: Bounds of ``max_points``.
MIN_POINTS_LIMIT = 10
MAX_POINTS_LIMIT = 100_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NAN = float("nan")
#: Fewer non-empty time chunks than buckets / this: the points bunch in time; bucket by step.
_SPARSE_CHUNKS = 4

_SUMMARY = text(
    "SELECT series_id, point_count, tiled FROM metric_summaries "
    "WHERE run_uuid = :run_uuid AND key = :key"
)
# ``tlo``/``thi`` bound the time span when tiles tell where the step range's points are.
_IN_RANGE = (
    "series_id = :sid AND timestamp >= :tlo AND timestamp <= :thi AND step >= :lo AND step <= :hi"
)
# The earliest and latest point in the step range: seeks along the clustering order when the
# range is the whole series, scans from either end otherwise.
_FIRST_TIME = text(
    f"SELECT timestamp FROM metric_points WHERE {_IN_RANGE} ORDER BY timestamp LIMIT 1"
)
_LAST_TIME = text(
    f"SELECT timestamp FROM metric_points WHERE {_IN_RANGE} ORDER BY timestamp DESC LIMIT 1"
)
_STATS = text(
    "SELECT count(*), min(step), max(step), min(timestamp), max(timestamp), "
    f"max(CASE WHEN is_nan THEN 1 ELSE 0 END) FROM metric_points WHERE {_IN_RANGE}"
)
_ALL = text(
    f"SELECT value, timestamp, step, is_nan FROM metric_points WHERE {_IN_RANGE} "
    "ORDER BY step, timestamp, value"
)
# The same, for points known to lie between two times: a primary-key range scan.
_ALL_IN_TIME = text(
    f"SELECT value, timestamp, step, is_nan FROM metric_points WHERE {_IN_RANGE} "
    "AND timestamp >= :t0 AND timestamp <= :t1"
)

# -- plan 1: chunks of time (SQLite) -------------------------------------------------------------

_CHUNK = (
    "FROM metric_points WHERE series_id = :sid AND timestamp >= :t0 + i * :wt "
    "AND timestamp < :t0 + (i + 1) * :wt AND step >= :lo AND step <= :hi"
)
# Per chunk: "count nan_count first_step last_step", then "step timestamp" of the lowest and of
# the highest finite point. Integers travel as text (exact); an empty chunk gives NULLs.
_CHUNK_STATS = text(f"""
WITH RECURSIVE chunks(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM chunks WHERE i < :last_chunk)
SELECT i,
  (SELECT count(*) || ' ' || sum(is_nan) || ' ' || min(step) || ' ' || max(step) {_CHUNK}),
  (SELECT step || ' ' || timestamp FROM (SELECT min(value), step, timestamp {_CHUNK} AND NOT is_nan)),
  (SELECT step || ' ' || timestamp FROM (SELECT max(value), step, timestamp {_CHUNK} AND NOT is_nan))
FROM chunks
""")  # noqa: E501
# Per chunk [start, end, first_step, last_step, wants_nan]: the timestamp of its first point (at
# first_step), of its last one (at last_step), and "step timestamp" of a NaN when asked.
_EDGE = (
    "FROM metric_points WHERE series_id = :sid AND timestamp >= json_extract(c.value, '$[0]') "
    "AND timestamp < json_extract(c.value, '$[1]')"
)
_CHUNK_EDGES = text(f"""
SELECT
  (SELECT timestamp {_EDGE} AND step = json_extract(c.value, '$[2]') ORDER BY timestamp LIMIT 1),
  (SELECT timestamp {_EDGE} AND step = json_extract(c.value, '$[3]')
     ORDER BY timestamp DESC LIMIT 1),
  CASE WHEN json_extract(c.value, '$[4]') THEN
    (SELECT step || ' ' || timestamp {_EDGE} AND is_nan AND step >= :lo AND step <= :hi LIMIT 1)
  END
FROM json_each(:chunks) AS c
""")
# Every point at the given [timestamp, step] keys: primary-key seeks.
_AT_KEYS = text("""
SELECT p.value, p.timestamp, p.step, p.is_nan FROM json_each(:keys) AS k
CROSS JOIN metric_points AS p
WHERE p.series_id = :sid AND p.timestamp = json_extract(k.value, '$[0]')
  AND p.step = json_extract(k.value, '$[1]')
""")


def _raw(conn: Connection, sql: str, params: dict[str, Any]) -> list[Any]:
    """Rows of a SQLite-only statement, run on the DBAPI cursor of ``conn`` (same transaction):
    the chunk plan's statements return hundreds of small rows, SQLAlchemy's result handling
    would cost more than the query."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _ints(packed: str | None) -> list[int] | None:
    return None if packed is None else [int(part) for part in packed.split()]


@dataclass
class _Chunk:
    start: int
    end: int
    count: int
    nan_count: int
    first_step: int
    last_step: int
    low: tuple[int, int] | None  # (step, timestamp) of the lowest finite point
    high: tuple[int, int] | None


# -- plan 2: buckets of steps (one statement) -----------------------------------------------------


def _m4_sql(dialect: str, x: str) -> str:
    """The M4 statement for a dialect, bucketing by ``x`` (``step`` or ``timestamp``).

    Parameters: ``sid``, ``lo``/``hi`` (step range), ``x0`` (x of bucket 0), ``w`` (bucket width
    in x), ``buckets`` (how many there are at most: the LIMIT tells PostgreSQL's planner that
    ``agg`` is small, so it joins it by hash instead of sorting the points). Returns
    ``(value, timestamp, step, is_nan)`` ordered by step.
    """
    y = "timestamp" if x == "step" else "step"
    bucket = f"({x} - :x0) / :w"
    if dialect == "postgresql":
        bucket = f"({x} - CAST(:x0 AS BIGINT)) / CAST(:w AS BIGINT)"
    # Value roles only matter when the bucket is not constant (or may end in NaN): a constant
    # bucket's first and last points already carry its one value.
    varied = "(a.vmin < a.vmax OR a.has_nan = 1)"
    if dialect == "postgresql":
        # One row per (bucket, role): the first by the role's tie-break key.
        reps = (
            "SELECT DISTINCT ON (b, role) b, role, step, timestamp, value, is_nan "
            "FROM roles ORDER BY b, role, k"
        )
    else:
        # SQLite: with a single min() aggregate, the bare columns come from the row holding it.
        reps = (
            "SELECT b, role, min(k) AS k, step, timestamp, value, is_nan "
            "FROM roles GROUP BY b, role"
        )
    return f"""
WITH pts AS NOT MATERIALIZED (
  SELECT step, timestamp, value, is_nan, {bucket} AS b FROM metric_points WHERE {_IN_RANGE}
),
agg AS MATERIALIZED (
  SELECT b, min({x}) AS fx, max({x}) AS lx,
    min(CASE WHEN is_nan THEN NULL ELSE value END) AS vmin,
    max(CASE WHEN is_nan THEN NULL ELSE value END) AS vmax,
    max(CASE WHEN is_nan THEN 1 ELSE 0 END) AS has_nan
  FROM pts GROUP BY b
  LIMIT :buckets
),
hits AS MATERIALIZED (
  SELECT p.b, p.step, p.timestamp, p.value, p.is_nan,
    p.{x} = a.fx AS r_first,
    p.{x} = a.lx AS r_last,
    {varied} AND NOT p.is_nan AND p.value = a.vmin AS r_min,
    {varied} AND NOT p.is_nan AND p.value = a.vmax AS r_max,
    p.is_nan AND a.vmin IS NOT NULL AS r_nan
  FROM pts p CROSS JOIN agg a
  WHERE a.b = p.b AND (
    p.{x} = a.fx OR p.{x} = a.lx
    OR (p.is_nan AND a.vmin IS NOT NULL)
    OR ({varied} AND NOT p.is_nan AND (p.value = a.vmin OR p.value = a.vmax)))
),
roles AS (
  SELECT b, 0 AS role, {y} AS k, step, timestamp, value, is_nan FROM hits WHERE r_first
  UNION ALL SELECT b, 1, {x}, step, timestamp, value, is_nan FROM hits WHERE r_min
  UNION ALL SELECT b, 2, {x}, step, timestamp, value, is_nan FROM hits WHERE r_max
  UNION ALL SELECT b, 3, -{y}, step, timestamp, value, is_nan FROM hits WHERE r_last
  UNION ALL SELECT b, 4, {x}, step, timestamp, value, is_nan FROM hits WHERE r_nan
),
reps AS ({reps})
SELECT DISTINCT value, timestamp, step, is_nan FROM reps ORDER BY step, timestamp, value
"""


@lru_cache(maxsize=8)
def _m4(dialect: str, x: str) -> TextClause:
    return text(_m4_sql(dialect, x))


#: The points of a series in a step range: how many, and their step and time extents (the
#: same facts the tiles give when they hand a range back to these plans).
_Stats = TileFallback


# -- the public method ----------------------------------------------------------------------------


def _metrics(key: str, run_id: str, rows: Sequence[Any]) -> list[Metric]:
    """``(value, timestamp, step, is_nan)`` rows as Metrics (NaN restored), ordered by step."""
    points = sorted((row[2], row[1], _NAN if row[3] else row[0]) for row in rows)
    return metric_series(key, run_id, [(value, ts, step) for step, ts, value in points])


def _check_arguments(max_points: int, start_step: int | None, end_step: int | None) -> None:
    if not isinstance(max_points, int) or not MIN_POINTS_LIMIT <= max_points <= MAX_POINTS_LIMIT:
        raise InvalidParameterValue(
            f"Invalid value for max_points. It must be an integer between {MIN_POINTS_LIMIT} "
            f"and {MAX_POINTS_LIMIT}, but got {max_points}"
        )
    if start_step is not None and end_step is not None and start_step > end_step:
        raise InvalidParameterValue(
            f"start_step ({start_step}) must not be greater than end_step ({end_step})."
        )


class HistoryDownsampleOps(SqlBase):
    """Metric histories reduced to at most N points for charts."""

    def get_metric_history_downsampled(
        self,
        run_id: str,
        metric_key: str,
        max_points: int,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> tuple[int, bool, list[Metric]]:
        """At most ``max_points`` points of a series for drawing it, ordered by step.

        Args:
            run_id: the run.
            metric_key: the metric.
            max_points: 10..100,000. A series (or step range) with no more points comes back
                whole; a longer one is reduced per bucket of steps to the bucket's first, last,
                lowest and highest point (M4), always with the first and last point.
            start_step: only points at this step or later (zoom; live refresh: last step + 1).
            end_step: only points at this step or earlier.

        Returns:
            ``(total_points, downsampled, points)``: how many points the series has in the step
            range, whether ``points`` is a reduction of them, and the points.

        Raises:
            ResourceDoesNotExist: the run does not exist.
            InvalidParameterValue: ``max_points`` out of bounds, or ``start_step > end_step``.
        """
        _check_arguments(max_points, start_step, end_step)
        lo = _INT64_MIN if start_step is None else start_step
        hi = _INT64_MAX if end_step is None else end_step
        whole = start_step is None and end_step is None
        with self._read() as conn:
            if self._sql.run_state.run(conn, run_uuid=run_id).fetchone() is None:
                raise ResourceDoesNotExist(f"Run with id={run_id} not found")
            series = conn.execute(_SUMMARY, {"run_uuid": run_id, "key": metric_key}).first()
            if series is None:
                return 0, False, []
            sid = int(series[0])
            rng = {"sid": sid, "lo": lo, "hi": hi, "tlo": _INT64_MIN, "thi": _INT64_MAX}
            # The summary row counts the series' points: a short series needs no bucketing.
            if whole and int(series[1]) <= max_points:
                rows = list(conn.execute(_ALL, rng))
                return len(rows), False, _metrics(metric_key, run_id, rows)
            stats = None
            found = None
            if series[2]:
                found = tile_downsample(conn, sid, lo, hi, max_points)
                if isinstance(found, tuple):
                    total, rows = found
                    return total, total > max_points, _metrics(metric_key, run_id, rows)
            if isinstance(found, TileFallback):
                rng.update(tlo=found.first_time, thi=found.last_time)
                stats = found
            if self._engine.dialect.name == "sqlite":
                total, rows = self._by_time_chunks(conn, rng, max_points)
            else:
                # Compiling these scans to machine code (JIT) takes longer than running them,
                # and hashing the buckets beats sorting a million points by bucket.
                conn.execute(text("SET LOCAL jit = off"))
                conn.execute(text("SET LOCAL enable_sort = off"))
                stats = stats or self._stats(conn, rng)
                total, rows = self._by_steps(conn, rng, max_points, stats)
        return total, total > max_points, _metrics(metric_key, run_id, rows)

    @staticmethod
    def _stats(conn: Connection, rng: dict[str, int]) -> _Stats | None:
        row = conn.execute(_STATS, rng).first()
        if row is None or not row[0]:
            return None
        count, first_step, last_step, first_time, last_time = (int(v) for v in row[:5])
        return _Stats(count, first_step, last_step, first_time, last_time, bool(row[5]))

    def _by_steps(
        self, conn: Connection, rng: dict[str, int], max_points: int, stats: _Stats | None
    ) -> tuple[int, list[Any]]:
        """Plan 2: ``(total, rows)`` — every point when few enough, else one M4 statement."""
        if stats is None:
            return 0, []
        if stats.count <= max_points:
            return stats.count, list(conn.execute(_ALL, rng))
        # Four points per bucket, five when a bucket may need a NaN of its own.
        buckets = max_points // (5 if stats.has_nan else 4)
        steps = stats.last_step - stats.first_step + 1
        times = stats.last_time - stats.first_time + 1
        # Bucket by step unless the steps are too few to fill the buckets and time spreads more
        # (metrics logged without a step all sit at step 0).
        if steps >= buckets or steps >= times:
            x, x0, span = "step", stats.first_step, steps
        else:
            x, x0, span = "timestamp", stats.first_time, times
        width = -(-span // buckets)  # ceil: bucket numbers stay below ``buckets``
        dialect = self._engine.dialect.name
        params = {**rng, "x0": x0, "w": width, "buckets": buckets}
        return stats.count, list(conn.execute(_m4(dialect, x), params))

    def _by_time_chunks(
        self, conn: Connection, rng: dict[str, int], max_points: int
    ) -> tuple[int, list[Any]]:
        """Plan 1 (SQLite), falling back to plan 2 when chunks of time are not step buckets."""
        first = _raw(conn, _FIRST_TIME.text, rng)
        last = _raw(conn, _LAST_TIME.text, rng)
        if not first or not last:
            return 0, []
        t0, t1 = int(first[0][0]), int(last[0][0])
        for per_bucket in (4, 5):
            chunks = self._chunks(conn, rng, max_points // per_bucket, t0, t1)
            total = sum(c.count for c in chunks)
            if total <= max_points:
                return total, _raw(conn, _ALL_IN_TIME.text, {**rng, "t0": t0, "t1": t1})
            if not _chunks_are_step_buckets(chunks, max_points // per_bucket):
                break
            rows = self._chunk_points(conn, rng, chunks)
            if len(rows) <= max_points:
                return total, rows
            # NaN representatives made it too many: again with room for five per bucket.
        stats = _Stats(
            total,
            min(c.first_step for c in chunks),
            max(c.last_step for c in chunks),
            t0,
            t1,
            any(c.nan_count for c in chunks),
        )
        return self._by_steps(conn, rng, max_points, stats)

    @staticmethod
    def _chunks(
        conn: Connection, rng: dict[str, int], count: int, t0: int, t1: int
    ) -> list[_Chunk]:
        """The non-empty chunks of ``count`` equal time spans covering ``t0..t1``."""
        width = -(-(t1 - t0 + 1) // count)
        params = {**rng, "t0": t0, "wt": width, "last_chunk": count - 1}
        chunks = []
        for i, stats, low, high in _raw(conn, _CHUNK_STATS.text, params):
            numbers = _ints(stats)
            if numbers is None:
                continue
            count, nan_count, first_step, last_step = numbers
            low_key, high_key = _ints(low), _ints(high)
            start = t0 + i * width
            chunks.append(
                _Chunk(
                    start,
                    start + width,
                    count,
                    nan_count,
                    first_step,
                    last_step,
                    (low_key[0], low_key[1]) if low_key else None,
                    (high_key[0], high_key[1]) if high_key else None,
                )
            )
        return chunks

    @staticmethod
    def _chunk_points(conn: Connection, rng: dict[str, int], chunks: list[_Chunk]) -> list[Any]:
        """The M4 points of every chunk, read by primary-key seeks."""
        spec = [
            [
                c.start,
                c.end,
                c.first_step,
                c.last_step,
                int(bool(c.nan_count) and c.low is not None),
            ]
            for c in chunks
        ]
        # role of each key: 0 first, 3 last (their first point at the key), 1 min, 2 max, 4 NaN
        wanted: dict[tuple[int, int], set[int]] = {}
        edges = _raw(conn, _CHUNK_EDGES.text, {**rng, "chunks": json.dumps(spec)})
        for chunk, (first_ts, last_ts, nan) in zip(chunks, edges, strict=True):
            wanted.setdefault((int(first_ts), chunk.first_step), set()).add(0)
            wanted.setdefault((int(last_ts), chunk.last_step), set()).add(3)
            if chunk.low is not None and chunk.high is not None:
                wanted.setdefault((chunk.low[1], chunk.low[0]), set()).add(1)
                wanted.setdefault((chunk.high[1], chunk.high[0]), set()).add(2)
            nan_key = _ints(nan)
            if nan_key is not None:
                wanted.setdefault((nan_key[1], nan_key[0]), set()).add(4)
        keys = json.dumps([list(key) for key in wanted])
        found: dict[tuple[int, int], list[Any]] = {}
        for row in _raw(conn, _AT_KEYS.text, {"sid": rng["sid"], "keys": keys}):
            found.setdefault((int(row[1]), int(row[2])), []).append(row)
        return [row for key, roles in wanted.items() for row in _pick(found[key], roles)]


def _chunks_are_step_buckets(chunks: list[_Chunk], buckets: int) -> bool:
    """Chunks in time order cover steps in order without overlap (a step shared by neighbours is
    fine) and are spread enough to draw the series."""
    if len(chunks) * _SPARSE_CHUNKS < min(buckets, sum(c.count for c in chunks)):
        return False
    return all(a.last_step <= b.first_step for a, b in zip(chunks, chunks[1:], strict=False))


def _pick(rows: list[Any], roles: set[int]) -> list[Any]:
    """The point(s) to keep among those at one (timestamp, step) key for the given roles."""
    if len(rows) == 1:  # the usual case: one point per (timestamp, step)
        return rows
    finite = [r for r in rows if not r[3]]
    picked = []
    if 1 in roles and finite:
        picked.append(min(finite, key=lambda r: r[0]))
    if 2 in roles and finite:
        picked.append(max(finite, key=lambda r: r[0]))
    if 4 in roles:
        picked += [r for r in rows if r[3]][:1]
    if roles & {0, 3} and not picked:
        picked.append(min(rows, key=lambda r: (r[3], r[0])))
    return list(dict.fromkeys(picked))
