"""Runs as MLflow's JSON ``Run`` messages straight from their rows: the server's ``runs/search``.

A page of 1,000 runs as entities costs ~15,000 objects (``Run``, ``RunInfo``, ``RunData``,
``Metric``…) that the server then turns into as many dicts; building the dicts from the rows
skips the objects and a third of the page's time. Serialized, the result is exactly
:func:`runyard.protocol.codec.run_to_json` of :func:`~runyard.store.sql.rows.load_runs`'s runs,
key order included (tests/store/test_run_docs.py holds the two together); on SQLite a run's
params and tags are ``orjson.Fragment`` JSON text built by SQLite, not lists. The rare parts —
dataset inputs, logged-model links — go through the entities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orjson import Fragment
from sqlalchemy import Connection

from runyard.protocol.codec import dataset_input_to_json, wire_double
from runyard.store.sql.rows import RUNS_PER_ROUND, load_inputs, run_models
from runyard.store.sql.statements import Statements

__all__ = ["load_run_docs"]

_NAN = float("nan")
_Links = dict[str, list[tuple[int, str, str]]]


class _Children:
    """The JSON pieces of a page of runs besides their ``runs`` rows."""

    def __init__(self) -> None:
        #: Each run's params and tags: lists of {"key", "value"}, or that list as JSON text.
        self.params: dict[str, Any] = {}
        self.tags: dict[str, Any] = {}
        self.metrics: dict[str, list[dict[str, Any]]] = {}
        #: (step, model_id, direction) of each run's logged models.
        self.links: _Links = {}
        #: Runs with dataset inputs (None: not known, look them up).
        self.with_inputs: list[str] | None = None

    def add_key_value(self, into: dict[str, Any], rows: Any) -> None:
        for run_uuid, key, value in rows:
            doc = {"key": key, "value": value}
            found = into.get(run_uuid)
            if found is None:
                into[run_uuid] = [doc]
            else:
                found.append(doc)

    def add_metric(self, run_uuid: str, key: str, value: float, ts: int, step: int) -> None:
        if value != value or value in (_INF, _NEG_INF):
            value = wire_double(value)  # type: ignore[assignment]
        doc = {"key": key, "value": value, "timestamp": ts, "step": step}
        found = self.metrics.get(run_uuid)
        if found is None:
            self.metrics[run_uuid] = [doc]
        else:
            found.append(doc)


_INF = float("inf")
_NEG_INF = -_INF


def _per_table(conn: Connection, sql: Statements, ids: Sequence[str]) -> _Children:
    """SQLite: a statement per table (narrower rows read faster than the union's); params and
    tags come as JSON text SQLite builds (``orjson.Fragment``: written out as they are);
    fetching their rows and building a dict per row had been a quarter of a page's server
    time."""
    out = _Children()
    out.params = {run: Fragment(doc) for run, doc in sql.rows_of_runs(conn, "params_json", ids)}
    out.tags = {run: Fragment(doc) for run, doc in sql.rows_of_runs(conn, "tags_json", ids)}
    add_metric = out.add_metric
    for run_uuid, key, value, ts, step, is_nan in sql.rows_of_runs(conn, "metrics", ids):
        add_metric(run_uuid, key, _NAN if is_nan else value, ts, step)
    for run_uuid, step, model_id, direction in sql.rows_of_runs(conn, "models", ids):
        out.links.setdefault(run_uuid, []).append((step, model_id, direction))
    return out


def _one_statement(conn: Connection, sql: Statements, ids: Sequence[str]) -> _Children:
    """PostgreSQL: the ``children`` union, one round trip."""
    out = _Children()
    params: list[tuple[str, str, str]] = []
    tags: list[tuple[str, str, str]] = []
    with_inputs: list[str] = []
    add_metric = out.add_metric
    for run_uuid, kind, key, text, num, ts, step, is_nan in sql.rows_of_runs(conn, "children", ids):
        if kind == "m":
            add_metric(run_uuid, key, _NAN if is_nan else num, ts, step)
        elif kind == "p":
            params.append((run_uuid, key, text))
        elif kind == "t":
            tags.append((run_uuid, key, text))
        elif kind == "i":
            with_inputs.append(run_uuid)
        else:
            out.links.setdefault(run_uuid, []).append((step, key, text))
    out.add_key_value(out.params, params)
    out.add_key_value(out.tags, tags)
    out.with_inputs = with_inputs
    return out


def load_run_docs(
    conn: Connection, sql: Statements, run_rows: Sequence[Any]
) -> list[dict[str, Any]]:
    """``Run`` messages (``runyard.protocol.codec.run_to_json`` form) for ``runs`` rows."""
    if len(run_rows) > RUNS_PER_ROUND:
        return [
            doc
            for start in range(0, len(run_rows), RUNS_PER_ROUND)
            for doc in load_run_docs(conn, sql, run_rows[start : start + RUNS_PER_ROUND])
        ]
    ids = [r[0] for r in run_rows]
    if not ids:
        return []
    if conn.dialect.name == "postgresql":
        children = _one_statement(conn, sql, ids)
    else:
        children = _per_table(conn, sql, ids)
    with_inputs = ids if children.with_inputs is None else children.with_inputs
    inputs = load_inputs(conn, sql, with_inputs) if with_inputs else {}
    params, tags, metrics, links = children.params, children.tags, children.metrics, children.links
    docs = []
    for run_uuid, exp_id, name, user_id, status, start, end, stage, artifact_uri, _ in run_rows:
        info: dict[str, Any] = {
            "run_id": run_uuid,
            "run_uuid": run_uuid,
            "run_name": name or "",
            "experiment_id": str(exp_id),
            "user_id": user_id or "",
            "status": status,
            "start_time": start,
            "end_time": end,
            "artifact_uri": artifact_uri or "",
            "lifecycle_stage": stage,
        }
        if start is None or end is None or status is None or stage is None:
            info = {k: v for k, v in info.items() if v is not None}
        data: dict[str, Any] = {}
        found = metrics.get(run_uuid)
        if found:
            data["metrics"] = found
        found = params.get(run_uuid)
        if found:
            data["params"] = found
        found = tags.get(run_uuid)
        if found:
            data["tags"] = found
        doc: dict[str, Any] = {"info": info, "data": data, "inputs": {}}
        run_inputs = inputs.get(run_uuid)
        if run_inputs:
            doc["inputs"]["dataset_inputs"] = [dataset_input_to_json(d) for d in run_inputs]
        run_links = links.get(run_uuid)
        if run_links:
            model_inputs, model_outputs = run_models(run_links)
            if model_inputs:
                doc["inputs"]["model_inputs"] = [{"model_id": m.model_id} for m in model_inputs]
            if model_outputs:
                doc["outputs"] = {
                    "model_outputs": [
                        {"model_id": m.model_id, "step": m.step} for m in model_outputs
                    ]
                }
        docs.append(doc)
    return docs
