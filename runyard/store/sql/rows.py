"""Rows to entities: the only place that knows both the schema and the dataclasses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from runyard.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
)
from runyard.store.sql import schema as t

__all__ = [
    "experiment_from_row",
    "load_experiment_tags",
    "load_inputs",
    "load_runs",
    "metric_value",
    "run_info_from_row",
]

_NAN = float("nan")
# Keeps IN (...) lists far below every database's bound-parameter limit.
_CHUNK = 2000


def metric_value(value: float, is_nan: bool) -> float:
    """Undo the NaN encoding of the metric tables."""
    return _NAN if is_nan else value


def experiment_from_row(row: Row[Any], tags: dict[str, str]) -> Experiment:
    """An Experiment from an ``experiments`` row and its tags."""
    return Experiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location or "",
        lifecycle_stage=row.lifecycle_stage,
        tags=tags,
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
    )


def load_experiment_tags(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Tags of several experiments in one query."""
    out: dict[int, dict[str, str]] = defaultdict(dict)
    if ids:
        tt = t.experiment_tags
        rows = conn.execute(
            select(tt.c.experiment_id, tt.c.key, tt.c.value).where(tt.c.experiment_id.in_(ids))
        )
        for exp_id, key, value in rows:
            out[exp_id][key] = value
    return out


def run_info_from_row(row: Any) -> RunInfo:
    """A RunInfo from a ``runs`` row (a Core Row or a RunRecord)."""
    return RunInfo(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        user_id=row.user_id or "",
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        lifecycle_stage=row.lifecycle_stage,
        artifact_uri=row.artifact_uri or "",
        run_name=row.name or "",
    )


def _grouped(rows: Iterable[Row[Any]]) -> dict[str, list[Row[Any]]]:
    out: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        out[row[0]].append(row)
    return out


def load_inputs(conn: Connection, ids: Sequence[str]) -> dict[str, list[DatasetInput]]:
    di, ds, it = t.dataset_inputs, t.datasets, t.input_tags
    rows = conn.execute(
        select(di.c.run_uuid, di.c.input_uuid, ds)
        .join(ds, ds.c.dataset_uuid == di.c.dataset_uuid)
        .where(di.c.run_uuid.in_(ids))
        .order_by(di.c.run_uuid, ds.c.name, ds.c.digest)
    ).all()
    if not rows:
        return {}
    tags = _grouped(
        conn.execute(
            select(it.c.input_uuid, it.c.name, it.c.value).where(
                it.c.input_uuid.in_([r.input_uuid for r in rows])
            )
        )
    )
    out: dict[str, list[DatasetInput]] = defaultdict(list)
    for r in rows:
        dataset = Dataset(r.name, r.digest, r.source_type, r.source, r.schema, r.profile)
        input_tags = [InputTag(tag.name, tag.value) for tag in tags.get(r.input_uuid, [])]
        out[r.run_uuid].append(DatasetInput(dataset, input_tags))
    return out


def load_runs(conn: Connection, run_rows: Sequence[Row[Any]]) -> list[Run]:
    """Full Run entities for ``runs`` rows, with 4–6 queries per 2,000 runs."""
    if len(run_rows) > _CHUNK:
        return [
            run
            for start in range(0, len(run_rows), _CHUNK)
            for run in load_runs(conn, run_rows[start : start + _CHUNK])
        ]
    ids = [r.run_uuid for r in run_rows]
    if not ids:
        return []
    p, rt, ms = t.params, t.run_tags, t.metric_summaries
    params = _grouped(
        conn.execute(select(p.c.run_uuid, p.c.key, p.c.value).where(p.c.run_uuid.in_(ids)))
    )
    tags = _grouped(
        conn.execute(select(rt.c.run_uuid, rt.c.key, rt.c.value).where(rt.c.run_uuid.in_(ids)))
    )
    metrics = _grouped(
        conn.execute(
            select(
                ms.c.run_uuid, ms.c.key, ms.c.value, ms.c.timestamp, ms.c.step, ms.c.is_nan
            ).where(ms.c.run_uuid.in_(ids))
        )
    )
    inputs = load_inputs(conn, ids)
    runs = []
    for row in run_rows:
        rid = row.run_uuid
        metric_objs = tuple(
            Metric(m.key, metric_value(m.value, m.is_nan), m.timestamp, m.step)
            for m in metrics.get(rid, ())
        )
        data = RunData(
            metrics={m.key: m.value for m in metric_objs},
            params={r.key: r.value for r in params.get(rid, ())},
            tags={r.key: r.value for r in tags.get(rid, ())},
            metric_objs=metric_objs,
        )
        runs.append(Run(run_info_from_row(row), data, RunInputs(inputs.get(rid, []))))
    return runs
