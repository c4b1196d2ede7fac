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
    RunOutputs,
)
from runyard.entities.run import new_metric
from runyard.store.sql import schema as t
from runyard.store.sql.logged_models import load_run_models
from runyard.store.sql.statements import Statements

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
    """A RunInfo from a ``runs`` row in column order (a Core Row or a RunRecord)."""
    run_uuid, exp_id, name, user_id, status, start, end, stage, artifact_uri, _deleted = row
    return RunInfo(
        run_id=run_uuid,
        experiment_id=str(exp_id),
        user_id=user_id or "",
        status=status,
        start_time=start,
        end_time=end,
        lifecycle_stage=stage,
        artifact_uri=artifact_uri or "",
        run_name=name or "",
    )


def _grouped(rows: Iterable[Row[Any]]) -> dict[str, list[Row[Any]]]:
    out: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        out[row[0]].append(row)
    return out


def load_inputs(
    conn: Connection, sql: Statements, ids: Sequence[str]
) -> dict[str, list[DatasetInput]]:
    """Dataset inputs (with their tags) of several runs."""
    rows = sql.of_runs("inputs", len(ids)).run(conn, **_named(ids)).fetchall()
    if not rows:
        return {}
    input_ids = [r[1] for r in rows]
    tags: dict[str, list[InputTag]] = defaultdict(list)
    named = _named(input_ids)
    for input_uuid, name, value in sql.of_runs("input_tags", len(input_ids)).run(conn, **named):
        tags[input_uuid].append(InputTag(name, value))
    out: dict[str, list[DatasetInput]] = defaultdict(list)
    for run_uuid, input_uuid, name, digest, source_type, source, schema, profile in rows:
        dataset = Dataset(name, digest, source_type, source, schema, profile)
        out[run_uuid].append(DatasetInput(dataset, tags.get(input_uuid, [])))
    return out


def _named(ids: Sequence[str]) -> dict[str, str]:
    return {f"r{i}": value for i, value in enumerate(ids)}


def _key_values(rows: Iterable[tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    """``{run_uuid: {key: value}}`` from (run_uuid, key, value) rows."""
    out: dict[str, dict[str, Any]] = {}
    for run_uuid, key, value in rows:
        found = out.get(run_uuid)
        if found is None:
            out[run_uuid] = {key: value}
        else:
            found[key] = value
    return out


def _latest_metrics(rows: Iterable[tuple[Any, ...]]) -> dict[str, list[Metric]]:
    out: dict[str, list[Metric]] = {}
    for run_uuid, key, value, timestamp, step, is_nan in rows:
        metric = new_metric(key, _NAN if is_nan else value, timestamp, step, None)
        found = out.get(run_uuid)
        if found is None:
            out[run_uuid] = [metric]
        else:
            found.append(metric)
    return out


def load_runs(conn: Connection, sql: Statements, run_rows: Sequence[Any]) -> list[Run]:
    """Full Run entities for ``runs`` rows, with 4–6 queries per 2,000 runs."""
    if len(run_rows) > _CHUNK:
        return [
            run
            for start in range(0, len(run_rows), _CHUNK)
            for run in load_runs(conn, sql, run_rows[start : start + _CHUNK])
        ]
    ids = [r.run_uuid for r in run_rows]
    if not ids:
        return []
    named = _named(ids)

    def of_runs(what: str) -> list[tuple[Any, ...]]:
        return list(sql.of_runs(what, len(ids)).run(conn, **named).fetchall())

    params = _key_values(of_runs("params"))
    tags = _key_values(of_runs("tags"))
    metrics = _latest_metrics(of_runs("metrics"))
    inputs = load_inputs(conn, sql, ids)
    models = load_run_models(conn, ids)
    runs = []
    for row in run_rows:
        rid = row.run_uuid
        metric_objs = tuple(metrics.get(rid, ()))
        data = RunData(
            {m.key: m.value for m in metric_objs},
            params.get(rid) or {},
            tags.get(rid) or {},
            metric_objs,
        )
        model_inputs, model_outputs = models.get(rid) or ([], [])
        runs.append(
            Run(
                run_info_from_row(row),
                data,
                RunInputs(inputs.get(rid, []), model_inputs),
                RunOutputs(model_outputs),
            )
        )
    return runs
