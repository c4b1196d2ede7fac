"""Writing and reading logged values: log_batch and metric history.

``log_batch`` is the one write path for metrics, params and tags: one transaction, a handful of
executemany statements whatever the batch size. Metric points are pre-aggregated per key in Python
so the summary upsert touches each (run, key) row once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, select, tuple_, update

from runyard.entities import Metric, PagedList, Param, RunTag
from runyard.errors import InvalidParameterValue
from runyard.store.search.paging import decode_page_token, encode_page_token
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase
from runyard.store.sql.rows import metric_value
from runyard.store.sql.runs import RUN_NAME_TAG
from runyard.utils.validation import sanitize_metric_value, validate_batch_limits

__all__ = ["LoggingOps"]


def _point_rows(run_id: str, metrics: Sequence[Metric]) -> list[dict[str, Any]]:
    rows = []
    for m in metrics:
        is_nan, value = sanitize_metric_value(float(m.value))
        rows.append(
            {
                "run_uuid": run_id,
                "key": m.key,
                "step": int(m.step),
                "timestamp": int(m.timestamp),
                "value": value,
                "is_nan": is_nan,
            }
        )
    return rows


def _summary_rows(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key: the latest point by (step, timestamp, value), min, max and count."""
    by_key: dict[str, dict[str, Any]] = {}
    for p in points:
        s = by_key.get(p["key"])
        finite = None if p["is_nan"] else p["value"]
        if s is None:
            by_key[p["key"]] = {
                **p,
                "min_value": finite,
                "max_value": finite,
                "point_count": 1,
            }
            continue
        s["point_count"] += 1
        if (p["step"], p["timestamp"], p["value"]) > (s["step"], s["timestamp"], s["value"]):
            s.update(step=p["step"], timestamp=p["timestamp"], value=p["value"], is_nan=p["is_nan"])
        if finite is not None:
            s["min_value"] = finite if s["min_value"] is None else min(s["min_value"], finite)
            s["max_value"] = finite if s["max_value"] is None else max(s["max_value"], finite)
    return list(by_key.values())


def _pick(cond: Any, new: Any, old: Any) -> Any:
    return case((cond, new), else_=old)


class LoggingOps(SqlBase):
    """log_batch and get_metric_history."""

    truncate_long_values: bool = True

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Write one run's metrics, params and tags atomically: all or nothing."""
        validate_batch_limits(metrics, params, tags)
        with self._write() as conn:
            self._active_run_row(conn, run_id)
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                self._upsert_tags(conn, run_id, tags)
                names = [tag.value for tag in tags if tag.key == RUN_NAME_TAG]
                if names:
                    conn.execute(
                        update(t.runs).where(t.runs.c.run_uuid == run_id).values(name=names[-1])
                    )
            if metrics:
                self._insert_metrics(conn, run_id, metrics)

    def _insert_params(self, conn: Connection, run_id: str, params: Sequence[Param]) -> None:
        p = t.params
        wanted = {param.key: param.value for param in params}
        existing = dict(
            conn.execute(
                select(p.c.key, p.c.value).where(p.c.run_uuid == run_id, p.c.key.in_(list(wanted)))
            ).all()
        )
        changed = [k for k, v in wanted.items() if k in existing and existing[k] != v]
        if changed:
            details = ", ".join(
                f"{k!r}: old={existing[k]!r}, new={wanted[k]!r}" for k in changed[:5]
            )
            raise InvalidParameterValue(
                f"Changing param values is not allowed. Params were already logged for run "
                f"ID='{run_id}' with different values: {details}."
            )
        new = [{"run_uuid": run_id, "key": k, "value": v} for k, v in wanted.items() if k not in existing]
        if new:
            conn.execute(p.insert(), new)

    def _insert_metrics(self, conn: Connection, run_id: str, metrics: Sequence[Metric]) -> None:
        points = _point_rows(run_id, metrics)
        conn.execute(self._insert(t.metric_points).on_conflict_do_nothing(), points)
        stmt = self._insert(t.metric_summaries)
        new, old = stmt.excluded, t.metric_summaries.c
        newer = tuple_(new.step, new.timestamp, new.value) > tuple_(old.step, old.timestamp, old.value)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_uuid", "key"],
            set_={
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
            },
        )
        conn.execute(stmt, _summary_rows(points))

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """Every point of a series in (step, timestamp) order, optionally paged."""
        mp = t.metric_points.c
        query = (
            select(mp.timestamp, mp.step, mp.value, mp.is_nan)
            .where(mp.run_uuid == run_id, mp.key == metric_key)
            .order_by(mp.step, mp.timestamp, mp.value)
        )
        offset = decode_page_token(page_token)
        if max_results is not None:
            query = query.offset(offset).limit(max_results + 1)
        elif offset:
            query = query.offset(offset)
        with self._read() as conn:
            rows = conn.execute(query).all()
        token = None
        if max_results is not None and len(rows) > max_results:
            rows = rows[:max_results]
            token = encode_page_token(offset + max_results)
        nan = float("nan")
        return PagedList(
            [Metric(metric_key, nan if n else v, ts, st, run_id) for ts, st, v, n in rows], token
        )

