"""Metric tiles: a pyramid of per-step-range summaries that downsamples long series without
reading their points.

A chart of a 1,000,000-point series needs a few thousand points (see
:mod:`~runyard.store.sql.history_downsample`); choosing them from the points themselves means
reading all of them (~0.5 s). A *tile* summarises the points of one series whose steps share
``step >> level`` (the tile is ``2**level`` steps wide): how many there are, the first and the
last by ``(step, timestamp)``, the lowest and the highest finite one, one NaN, and their earliest
and latest timestamp. Levels (:data:`TILE_LEVELS`) are 4 times coarser each, from 64 steps up
to the widest not wider than the series' step span (no read asks for wider tiles), plus a root
tile for the whole series; so a step range of any span is covered by at most 4 tiles per
bucket of one level: M4 buckets are unions of whole tiles, and the chosen points are read from
the tiles.

* **Which series.** Short series downsample fast from their points, so only a series that holds
  :data:`TILE_THRESHOLD` points gets tiles: the write that crosses the threshold builds them from
  the series' points and sets ``metric_summaries.tiled`` (long series written before revision
  ``0004_metric_tiles`` are tiled the same way on their next write).
* **Writes.** Each batch written to a tiled series is summarised per tile in Python (one pass
  over its points for the finest level, then tile by tile up the levels) and merged into the
  stored tiles by one ``INSERT .. ON CONFLICT DO UPDATE`` executemany, in the batch's
  transaction. A batch that widens the series' steps enough to need a coarser level first rolls
  it up from the stored tiles of the previous coarsest one. A batch that repeats stored points
  (they collapse on the primary key) would make the counts wrong: the series' tiles are then
  rebuilt from its points.
* **Reads.** See :func:`tile_downsample`. Tiles cut by the edges of a zoomed step range are
  replaced by their points in range (a primary-key scan of their time span).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, reduce
from itertools import compress
from operator import itemgetter, lt
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import Dialect

from runyard.store.sql.prepared import Prepared

__all__ = [
    "ROOT_LEVEL",
    "TILE_LEVELS",
    "TILE_THRESHOLD",
    "TileFallback",
    "build_tiles",
    "merge_rows_unread",
    "tile_downsample",
    "write_tiles",
]

#: log2 of the tile widths, finest first: 64 steps up to 2**62, each level 4x the one below (a
#: range is covered by at most 4 tiles per bucket). A series keeps those no wider than its span.
TILE_LEVELS: tuple[int, ...] = tuple(range(6, 63, 2))
#: The level of a series' root: one tile (number 0) summarising all its points.
ROOT_LEVEL = 64
#: Every tile number of a level (int64 steps).
_ALL_TILES = (-(2**63), 2**63 - 1)
#: A series gets tiles once it holds this many points.
TILE_THRESHOLD = 8192
#: Points read per round trip when a series' tiles are built.
_BUILD_CHUNK = 65_536
#: Time spans of tiles read one statement each for a range's raw points; more: one statement.
_MAX_SPANS = 16

# A point as stored: (step, timestamp, value, is_nan); NaN is (0.0, True), ±Inf ±max double.
Point = tuple[int, int, float, bool]
# A tile being built: (n, first point, last point, lowest finite (value, step, timestamp) or
# None, highest finite likewise, a NaN (step, timestamp) or None, earliest and latest time).
_Tile = tuple[int, Point, Point, Any, Any, Any, int, int]


_key_of = itemgetter(1)


# -- building tiles from points ------------------------------------------------------------------


def _finest(rows: Sequence[Sequence[Any]], at: int = 0) -> dict[int, _Tile]:
    """Tiles of the finest level from points in any order: rows holding ``(step, timestamp,
    value, is_nan)`` from column ``at``."""
    shift = TILE_LEVELS[0]
    step, value, nan = itemgetter(at), itemgetter(at + 2), itemgetter(at + 3)
    steps = list(map(step, rows))
    ordered = rows
    if not all(map(lt, steps, steps[1:])):  # a batch usually comes in step order
        ordered = sorted(rows, key=itemgetter(at, at + 1))
        steps = list(map(step, ordered))
    times = list(map(itemgetter(at + 1), ordered))
    any_nan = any(map(nan, ordered))
    tiles: dict[int, _Tile] = {}
    start, count = 0, len(ordered)
    while start < count:
        key = steps[start] >> shift
        end = bisect_left(steps, (key + 1) << shift, start)
        group = ordered[start:end]
        finite = [p for p in group if not p[at + 3]] if any_nan else group
        low = high = nan_at = None
        if finite:
            a, b = min(finite, key=value), max(finite, key=value)
            low, high = (a[at + 2], a[at], a[at + 1]), (b[at + 2], b[at], b[at + 1])
        if any_nan:
            nan_at = next(((p[at], p[at + 1]) for p in group if p[at + 3]), None)
        span = times[start:end]
        first, last = group[0], group[-1]
        tiles[key] = (
            end - start,
            (first[at], first[at + 1], first[at + 2], first[at + 3]),
            (last[at], last[at + 1], last[at + 2], last[at + 3]),
            low,
            high,
            nan_at,
            min(span),
            max(span),
        )
        start = end
    return tiles


def _merge(a: _Tile, b: _Tile) -> _Tile:
    """One tile summarising the points of two."""
    low = a[3] if b[3] is None or (a[3] is not None and a[3][0] <= b[3][0]) else b[3]
    high = a[4] if b[4] is None or (a[4] is not None and a[4][0] >= b[4][0]) else b[4]
    return (
        a[0] + b[0],
        a[1] if a[1][:2] <= b[1][:2] else b[1],
        a[2] if a[2][:2] >= b[2][:2] else b[2],
        low,
        high,
        a[5] if a[5] is not None else b[5],
        min(a[6], b[6]),
        max(a[7], b[7]),
    )


def _merge_into(into: dict[int, _Tile], tiles: dict[int, _Tile]) -> None:
    for key, tile in tiles.items():
        old = into.get(key)
        into[key] = tile if old is None else _merge(old, tile)


def _level_for(width: int) -> int | None:
    """The coarsest level whose tiles are at most ``width`` steps wide (None: none is)."""
    found = None
    for level in TILE_LEVELS:
        if 1 << level > width:
            break
        found = level
    return found


def _top_level(first_step: int, last_step: int) -> int | None:
    """The coarsest level kept for a series over these steps: no read asks for tiles wider
    than its step span (a bucket is at most half of it)."""
    return _level_for(last_step - first_step + 1)


def _roll_up(tiles: dict[int, _Tile], shift: int) -> dict[int, _Tile]:
    """The tiles ``shift`` levels (bits) coarser than ``tiles``."""
    up: dict[int, _Tile] = {}
    for key in sorted(tiles):
        tile = tiles[key]
        parent = key >> shift
        old = up.get(parent)
        up[parent] = tile if old is None else _merge(old, tile)
    return up


def _levels(
    level: int, tiles: dict[int, _Tile], top: int | None
) -> Iterable[tuple[int, dict[int, _Tile]]]:
    """``(level, tiles)`` from ``level`` up to ``top``, each rolled up from the one below, then
    the root (one tile summarising them all)."""
    for coarser in TILE_LEVELS:
        if top is None or coarser > top:
            break
        if coarser < level:
            continue
        if coarser > level:
            tiles, level = _roll_up(tiles, coarser - level), coarser
        yield level, tiles
    yield ROOT_LEVEL, {0: reduce(_merge, (tiles[key] for key in sorted(tiles)))}


_NO_EXTREME = (None, None, None)
_NO_NAN = (None, None)


def _rows(
    series_id: int, level: int, tiles: dict[int, _Tile], top: int | None
) -> list[tuple[Any, ...]]:
    """``metric_tiles`` rows (statements.TILE_COLUMNS order) of the levels ``level..top`` and
    the root, from the tiles of ``level``."""
    rows = []
    for at, found in _levels(level, tiles, top):
        for key, (n, first, last, low, high, nan, t0, t1) in found.items():
            rows.append(
                (series_id, at, key, n, *first, *last, *(low or _NO_EXTREME),
                 *(high or _NO_EXTREME), *(nan or _NO_NAN), t0, t1)
            )  # fmt: skip
    return rows


def _extent(tiles: dict[int, _Tile]) -> tuple[int, int]:
    """The first and last step of the points summarised by ``tiles``."""
    return min(t[1][0] for t in tiles.values()), max(t[2][0] for t in tiles.values())


# -- statements ----------------------------------------------------------------------------------

_TILE_FIELDS = (
    "tile, n, first_step, first_timestamp, first_value, first_is_nan, "
    "last_step, last_timestamp, last_value, last_is_nan, min_value, min_step, min_timestamp, "
    "max_value, max_step, max_timestamp, nan_step, nan_timestamp, min_time, max_time"
)
_SQL = {
    "tiles": f"SELECT {_TILE_FIELDS} FROM metric_tiles WHERE series_id = :sid "
    "AND level = :level AND tile >= :t0 AND tile <= :t1 ORDER BY tile",
    # The points of a step range known to lie in a time span: a primary-key range scan.
    "points": "SELECT value, timestamp, step, is_nan FROM metric_points WHERE series_id = :sid "
    "AND timestamp >= :tlo AND timestamp <= :thi AND step >= :lo AND step <= :hi",
    "all_points": "SELECT step, timestamp, value, is_nan FROM metric_points WHERE series_id = :sid",
    "drop": "DELETE FROM metric_tiles WHERE series_id = :sid",
    "flag": "UPDATE metric_summaries SET tiled = :tiled WHERE series_id = :sid",
}


@lru_cache(maxsize=32)
def _statement(dialect: Dialect, name: str) -> Prepared:
    return Prepared(text(_SQL[name]), dialect)


@lru_cache(maxsize=64)
def _extents_statement(dialect: Dialect, count: int) -> Prepared:
    """``(series_id, first_step, last_step)`` of ``count`` series (``s0``..), from their roots."""
    ids = ", ".join(f":s{i}" for i in range(count))
    return Prepared(
        text(
            "SELECT series_id, first_step, last_step FROM metric_tiles "
            f"WHERE level = {ROOT_LEVEL} AND tile = 0 AND series_id IN ({ids})"
        ),
        dialect,
    )


def _run(conn: Connection, name: str, **params: Any) -> Any:
    return _statement(conn.dialect, name).run(conn, **params)


def _tiles(conn: Connection, sid: int, level: int, t0: int, t1: int) -> list[Any]:
    """Stored tiles of one level between two tile numbers, in step order."""
    return list(_run(conn, "tiles", sid=sid, level=level, t0=t0, t1=t1).fetchall())


def _as_tile(row: Sequence[Any]) -> _Tile:
    """A stored tile row (``_TILE_FIELDS``) as a tile being built."""
    return (
        row[1],
        (row[2], row[3], row[4], bool(row[5])),
        (row[6], row[7], row[8], bool(row[9])),
        None if row[10] is None else (row[10], row[11], row[12]),
        None if row[13] is None else (row[13], row[14], row[15]),
        None if row[16] is None else (row[16], row[17]),
        row[18],
        row[19],
    )


# -- writing -------------------------------------------------------------------------------------


def build_tiles(conn: Connection, upsert: Prepared, series_id: int) -> None:
    """(Re)build the tiles of a series from its points and mark it tiled, in ``conn``'s
    transaction. Reads the points in chunks, so memory stays bounded by the tiles."""
    _run(conn, "drop", sid=series_id)
    cursor = _run(conn, "all_points", sid=series_id)
    finest: dict[int, _Tile] = {}
    while True:
        chunk = cursor.fetchmany(_BUILD_CHUNK)
        if not chunk:
            break
        _merge_into(finest, _finest(chunk))
    cursor.close()
    if finest:
        top = _top_level(*_extent(finest))
        upsert.run_rows(conn, _rows(series_id, TILE_LEVELS[0], finest, top))
    _run(conn, "flag", sid=series_id, tiled=True)


def _merge_rows(
    conn: Connection, sid: int, batch: dict[int, _Tile], extent: tuple[int, int]
) -> list[tuple[Any, ...]] | None:
    """Rows merging a batch's finest tiles into a tiled series whose steps spanned ``extent``
    before it; None when the series must be rebuilt from its points instead.

    A batch that widens the series' steps enough to need coarser levels first gets them rolled
    up from the stored tiles of the previous coarsest level (at most five).
    """
    after, old_top, top = _levels_after(batch, extent)
    if top == old_top:
        return _rows(sid, TILE_LEVELS[0], batch, top)
    if old_top is None:
        return None  # no level kept yet (points on a few steps): from the points
    stored = {row[0]: _as_tile(row) for row in _tiles(conn, sid, old_top, *_ALL_TILES)}
    rolled = [row for row in _rows(sid, old_top, stored, top) if old_top < row[1] < ROOT_LEVEL]
    return rolled + _rows(sid, TILE_LEVELS[0], batch, top)


def _levels_after(
    batch: dict[int, _Tile], extent: tuple[int, int]
) -> tuple[tuple[int, int], int | None, int | None]:
    """The steps a series whose steps spanned ``extent`` spans with a batch's finest tiles,
    and its top level before and after the batch."""
    first, last = _extent(batch)
    after = (min(first, extent[0]), max(last, extent[1]))
    return after, _top_level(*extent), _top_level(*after)


def write_tiles(
    conn: Connection,
    upsert: Prepared,
    series: dict[str, tuple[int, int, bool]],
    points: Sequence[tuple[Any, ...]],
    duplicated: bool,
) -> None:
    """Bring the tiles of a batch's long series up to date, in the batch's transaction.

    Args:
        conn: the write connection.
        upsert: the tile merge statement (``Statements.upsert_tiles``).
        series: ``key -> (series_id, point_count, tiled)`` of the batch's series that are
            tiled or hold ``TILE_THRESHOLD`` points, read in this transaction (another process
            may have tiled a series since the last batch).
        points: the batch, ``(run_uuid, key, step, timestamp, value, is_nan)`` stored form,
            already inserted.
        duplicated: some points of the batch were stored already: merged counts would be
            wrong, so tiled series are rebuilt from their points.
    """
    rebuild = [
        sid
        for sid, count, tiled in series.values()
        if (tiled and duplicated) or (not tiled and count >= TILE_THRESHOLD)
    ]
    if not duplicated:
        rebuild += _merge_batch(conn, upsert, series, points)
    for sid in rebuild:
        build_tiles(conn, upsert, sid)


def _points_of(keys: Iterable[str], points: Sequence[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """The batch's points (stored form, key in column 1) of each of ``keys``."""
    by_key: dict[str, list[Any]] = {key: [] for key in keys}
    if len(by_key) == 1:  # one long series among the batch's keys: picked out at C speed
        (key,) = by_key
        by_key[key] = list(compress(points, map(key.__eq__, map(_key_of, points))))
    else:
        for point in points:
            group = by_key.get(point[1])
            if group is not None:
                group.append(point)
    return by_key


def merge_rows_unread(
    label: Any, points: Sequence[tuple[Any, ...]], extent: tuple[int, int]
) -> tuple[list[tuple[Any, ...]], tuple[int, int]] | None:
    """Rows merging a batch's points (stored form) into a tiled series whose steps spanned
    ``extent`` before it, without reading the series (``label`` stands for its id in the
    rows), and the series' extent after the batch. None when the batch widens the steps
    enough to need another level: that is rolled up from stored tiles (``write_tiles``)."""
    batch = _finest(points, at=2)
    after, old_top, top = _levels_after(batch, extent)
    return None if top != old_top else (_rows(label, TILE_LEVELS[0], batch, top), after)


def _merge_batch(
    conn: Connection,
    upsert: Prepared,
    series: dict[str, tuple[int, int, bool]],
    points: Sequence[tuple[Any, ...]],
) -> list[int]:
    """Merge the batch into its tiled series; returns those that need a rebuild instead."""
    by_key = _points_of([key for key, state in series.items() if state[2]], points)
    if not by_key:
        return []
    ids = [series[key][0] for key in by_key]
    named = {f"s{i}": sid for i, sid in enumerate(ids)}
    found = _extents_statement(conn.dialect, len(ids)).run(conn, **named).fetchall()
    extents = {sid: (first, last) for sid, first, last in found}
    rows = []
    rebuild = []
    for key, group in by_key.items():
        sid = series[key][0]
        extent = extents.get(sid)
        batch = _finest(group, at=2)
        merged = None if extent is None else _merge_rows(conn, sid, batch, extent)
        if merged is None:
            rebuild.append(sid)
        else:
            rows += merged
    # A batch that added levels merges into the tiles it has just rolled up: those rows apply
    # one after the other.
    distinct = len({row[:3] for row in rows}) == len(rows)
    upsert.run_rows(conn, rows, distinct=distinct)
    return rebuild


# -- reading -------------------------------------------------------------------------------------

# Columns of a tile row as read (``_TILE_FIELDS``); a point in range at a cut tile is turned
# into a one-point row of the same layout.
_N, _FS, _FT, _LS, _LT, _MINV, _MAXV, _NANS = 1, 2, 3, 6, 7, 10, 13, 16
_first_key = itemgetter(_FS, _FT)
_last_key = itemgetter(_LS, _LT)
_min_key = itemgetter(_MINV)
_max_key = itemgetter(_MAXV)


def _point_row(row: Sequence[Any]) -> tuple[Any, ...]:
    """A ``(value, timestamp, step, is_nan)`` point as a one-point tile row."""
    value, ts, step, nan = row[0], int(row[1]), int(row[2]), bool(row[3])
    finite = (None, None, None) if nan else (value, step, ts)
    return (None, 1, step, ts, value, nan, step, ts, value, nan,
            *finite, *finite, *((step, ts) if nan else (None, None)), ts, ts)  # fmt: skip


@dataclass(frozen=True)
class TileFallback:
    """The range is too narrow for tiles and holds too many points to return whole: reduce its
    points with the plans of :mod:`~runyard.store.sql.history_downsample`, their scans
    restricted to ``first_time..last_time`` (the time span of the finest tiles around the
    range). ``count``, the steps and ``has_nan`` are exact for the points in range."""

    count: int
    first_step: int
    last_step: int
    first_time: int
    last_time: int
    has_nan: bool


@dataclass
class _Cover:
    """The tiles of one level covering a step range, cut tiles replaced by their points."""

    rows: list[tuple[Any, ...]]  # whole tiles, then one-point rows
    spans: list[tuple[int, int]]  # time span of every tile touching the range
    total: int


def _cover(conn: Connection, sid: int, level: int, lo: int, hi: int) -> _Cover:
    tiles = _run(conn, "tiles", sid=sid, level=level, t0=lo >> level, t1=hi >> level).fetchall()
    rows: list[tuple[Any, ...]] = []
    spans = []
    total = 0
    for row in tiles:
        first, last = row[_FS], row[_LS]
        if last < lo or first > hi:
            continue
        spans.append((row[18], row[19]))
        if first >= lo and last <= hi:
            rows.append(row)
            total += row[_N]
            continue
        # Cut by an edge of the range: its points in range instead.
        tile_lo, tile_hi = row[0] << level, ((row[0] + 1) << level) - 1
        params = {"tlo": row[18], "thi": row[19], "lo": max(lo, tile_lo), "hi": min(hi, tile_hi)}
        points = _run(conn, "points", sid=sid, **params).fetchall()
        rows += [_point_row(p) for p in points]
        total += len(points)
    return _Cover(rows, spans, total)


def _raw_points(conn: Connection, sid: int, cover: _Cover, lo: int, hi: int) -> list[Any]:
    """Every point of the step range, read by primary-key scans of the covering tiles' time
    spans (merged where they overlap)."""
    merged: list[list[int]] = []
    for t0, t1 in sorted(cover.spans):
        if merged and t0 <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], t1)
        else:
            merged.append([t0, t1])
    if len(merged) > _MAX_SPANS:
        merged = [[merged[0][0], max(span[1] for span in merged)]]
    out: list[Any] = []
    for t0, t1 in merged:
        out += _run(conn, "points", sid=sid, tlo=t0, thi=t1, lo=lo, hi=hi).fetchall()
    return out


def _m4(rows: list[tuple[Any, ...]], lo: int, width: int) -> list[tuple[Any, ...]]:
    """Per bucket of ``width`` steps from ``lo`` (a row belongs to the bucket of its first
    step): its first and last point, lowest and highest finite point, and a NaN when it also
    has numbers, as ``(value, timestamp, step, is_nan)``."""
    buckets: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        b = (row[_FS] - lo) // width
        group = buckets.get(b)
        if group is None:
            buckets[b] = [row]
        else:
            group.append(row)
    chosen: set[tuple[Any, ...]] = set()
    add = chosen.add
    low: tuple[Any, ...] | None
    high: tuple[Any, ...] | None
    nan: tuple[Any, ...] | None
    for group in buckets.values():
        if len(group) == 1:
            first = last = low = high = nan = group[0]
            if low[_MINV] is None:
                low = high = None
            if nan[_NANS] is None:
                nan = None
        else:
            first, last = min(group, key=_first_key), max(group, key=_last_key)
            finite = [r for r in group if r[_MINV] is not None]
            low = min(finite, key=_min_key) if finite else None
            high = max(finite, key=_max_key) if finite else None
            nan = next((r for r in group if r[_NANS] is not None), None)
        add((first[4], first[3], first[2], bool(first[5])))
        add((last[8], last[7], last[6], bool(last[9])))
        if low is not None and high is not None:
            add((low[10], low[12], low[11], False))
            add((high[13], high[15], high[14], False))
            if nan is not None:
                add((0.0, nan[17], nan[16], True))
    return list(chosen)


def tile_downsample(
    conn: Connection, sid: int, lo: int, hi: int, max_points: int
) -> tuple[int, list[Any]] | TileFallback | None:
    """M4 of a tiled series' steps ``lo..hi`` from its tiles.

    The range is clipped to the series' steps (its root tile), split into ``max_points // 4``
    buckets (``// 5`` when NaNs may need a point of their own) and read at the coarsest level
    whose tiles are no wider than a bucket (buckets narrower than the finest tiles, but at least
    half as wide, are widened to them); a bucket's first point is its first tile's first, and so
    on. When the range holds at most ``max_points`` points they are returned whole, read by
    primary-key scans of the tiles' time spans.

    Returns:
        ``(total, rows)`` with rows ``(value, timestamp, step, is_nan)``; a
        :class:`TileFallback` for a range narrower than half a finest tile per bucket that
        holds too many points to return whole; None for a series whose steps fit in one finest
        tile (logged without steps): it has no levels, only a root.
    """
    root = _tiles(conn, sid, ROOT_LEVEL, 0, 0)
    if not root:
        return 0, []
    series_first, series_last = root[0][_FS], root[0][_LS]
    lo, hi = max(lo, series_first), min(hi, series_last)
    if lo > hi:
        return 0, []
    buckets = max_points // (5 if root[0][_NANS] is not None else 4)
    width = -(-(hi - lo + 1) // buckets)  # ceil: bucket numbers stay below ``buckets``
    level = _level_for(width)
    if level is None and _top_level(series_first, series_last) is None:
        return None
    finest = 1 << TILE_LEVELS[0]
    if level is None and 2 * width >= finest:
        # Buckets of one finest tile, up to twice as wide as asked: the chart keeps at least
        # half its resolution, and a few hundred tiles are read instead of ~30,000 points.
        level, width = TILE_LEVELS[0], finest
    cover = _cover(conn, sid, TILE_LEVELS[0] if level is None else level, lo, hi)
    if cover.total <= max_points:
        return cover.total, _raw_points(conn, sid, cover, lo, hi) if cover.total else []
    if level is None:
        # Dense and narrower than a finest tile per bucket: the points themselves decide.
        rows = cover.rows
        return TileFallback(
            count=cover.total,
            first_step=min(r[_FS] for r in rows),
            last_step=max(r[_LS] for r in rows),
            first_time=min(span[0] for span in cover.spans),
            last_time=max(span[1] for span in cover.spans),
            has_nan=any(r[_NANS] is not None for r in rows),
        )
    return cover.total, _m4(cover.rows, lo, width)
