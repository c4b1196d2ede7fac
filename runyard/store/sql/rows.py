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
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
)
from runyard.entities.run import new_metric
from runyard.store.sql import schema as t
from runyard.store.sql.statements import Statements

__all__ = [
    "RUNS_PER_ROUND",
    "experiment_from_row",
    "load_experiment_tags",
    "load_inputs",
    "load_runs",
    "metric_value",
    "run_info_from_row",
    "run_models",
]

_NAN = float("nan")
#: Runs per round of child queries: keeps IN (...) lists far below every database's
#: bound-parameter limit (``load_runs``, ``run_docs.load_run_docs``).
RUNS_PER_ROUND = 2000


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
    rows = sql.rows_of_runs(conn, "inputs", ids)
    if not rows:
        return {}
    tags: dict[str, list[InputTag]] = defaultdict(list)
    for input_uuid, name, value in sql.rows_of_runs(conn, "input_tags", [r[1] for r in rows]):
        tags[input_uuid].append(InputTag(name, value))
    out: dict[str, list[DatasetInput]] = defaultdict(list)
    for run_uuid, input_uuid, name, digest, source_type, source, schema, profile in rows:
        dataset = Dataset(name, digest, source_type, source, schema, profile)
        out[run_uuid].append(DatasetInput(dataset, tags.get(input_uuid, [])))
    return out


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


def run_models(
    links: list[tuple[int, str, str]],
) -> tuple[list[LoggedModelInput], list[LoggedModelOutput]]:
    """A run's model inputs and outputs from its (step, model_id, direction) links, in
    (step, model_id) order."""
    links.sort()
    inputs = [LoggedModelInput(m) for _, m, direction in links if direction == "input"]
    return inputs, [LoggedModelOutput(m, step) for step, m, d in links if d != "input"]


class _Children:
    """What ``load_runs`` reads of a page of runs besides the ``runs`` rows."""

    def __init__(self) -> None:
        self.params: dict[str, dict[str, str]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.metrics: dict[str, list[Metric]] = {}
        #: (step, model_id, direction) of each run's logged models.
        self.links: dict[str, list[tuple[int, str, str]]] = {}
        self.inputs: dict[str, list[DatasetInput]] = {}

    @classmethod
    def one_statement(cls, conn: Connection, sql: Statements, ids: Sequence[str]) -> _Children:
        """PostgreSQL: the ``children`` union, one round trip and one server-side plan."""
        out = cls()
        params, tags, metrics, links = out.params, out.tags, out.metrics, out.links
        with_inputs: list[str] = []
        for run_uuid, kind, key, text, num, ts, step, is_nan in sql.rows_of_runs(
            conn, "children", ids
        ):
            if kind == "m":
                metric = new_metric(key, _NAN if is_nan else num, ts, step, None)
                found_metrics = metrics.get(run_uuid)
                if found_metrics is None:
                    metrics[run_uuid] = [metric]
                else:
                    found_metrics.append(metric)
            elif kind == "p" or kind == "t":
                into = params if kind == "p" else tags
                found = into.get(run_uuid)
                if found is None:
                    into[run_uuid] = {key: text}
                else:
                    found[key] = text
            elif kind == "i":
                with_inputs.append(run_uuid)
            else:
                links.setdefault(run_uuid, []).append((step, key, text))
        if with_inputs:
            out.inputs = load_inputs(conn, sql, with_inputs)
        return out

    @classmethod
    def per_table(cls, conn: Connection, sql: Statements, ids: Sequence[str]) -> _Children:
        """SQLite: a statement per table. Without round trips to save, narrower rows read
        faster than the union's (measured: the union costs ~30 % more)."""
        out = cls()
        out.params = _key_values(sql.rows_of_runs(conn, "params", ids))
        out.tags = _key_values(sql.rows_of_runs(conn, "tags", ids))
        out.metrics = _latest_metrics(sql.rows_of_runs(conn, "metrics", ids))
        for run_uuid, step, model_id, direction in sql.rows_of_runs(conn, "models", ids):
            out.links.setdefault(run_uuid, []).append((step, model_id, direction))
        out.inputs = load_inputs(conn, sql, ids)
        return out


def load_runs(conn: Connection, sql: Statements, run_rows: Sequence[Any]) -> list[Run]:
    """Full Run entities for ``runs`` rows: on PostgreSQL one query per 2,000 runs (two more
    when some have dataset inputs), on SQLite one per table."""
    if len(run_rows) > RUNS_PER_ROUND:
        return [
            run
            for start in range(0, len(run_rows), RUNS_PER_ROUND)
            for run in load_runs(conn, sql, run_rows[start : start + RUNS_PER_ROUND])
        ]
    ids = [r.run_uuid for r in run_rows]
    if not ids:
        return []
    if conn.dialect.name == "postgresql":
        children = _Children.one_statement(conn, sql, ids)
    else:
        children = _Children.per_table(conn, sql, ids)
    params, tags, metrics, links = children.params, children.tags, children.metrics, children.links
    inputs = children.inputs
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
        run_links = links.get(rid)
        model_inputs, model_outputs = run_models(run_links) if run_links else ([], [])
        runs.append(
            Run(
                run_info_from_row(row),
                data,
                RunInputs(inputs.get(rid, []), model_inputs),
                RunOutputs(model_outputs),
            )
        )
    return runs
