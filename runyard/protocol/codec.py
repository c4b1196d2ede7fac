"""Entities to MLflow's JSON shapes and back: the wire format, used by server and REST client.

The shapes follow MLflow's proto-JSON rules (spec §1.3): snake_case names, int64 as numbers, enums
by name, unset optionals and empty repeated fields omitted, an empty message as ``{}``, NaN as
the string ``"NaN"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from runyard.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    FileInfo,
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
from runyard.errors import InvalidParameterValue

__all__ = [
    "dataset_input_from_json",
    "dataset_input_to_json",
    "experiment_from_json",
    "experiment_to_json",
    "file_info_from_json",
    "file_info_to_json",
    "key_values",
    "metric_from_json",
    "metric_to_json",
    "parse_double",
    "run_from_json",
    "run_info_from_json",
    "run_info_to_json",
    "run_to_json",
    "wire_double",
]

_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def wire_double(value: float) -> float | str:
    """A double as MLflow writes it: NaN becomes the string ``"NaN"``, ±Inf ``"Infinity"``."""
    if value != value:  # NaN
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def parse_double(value: Any) -> float:
    """A double from JSON: a number or one of ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if isinstance(value, str):
        special = _SPECIAL_DOUBLES.get(value)
        return special if special is not None else float(value)
    return float(value)


def key_values(items: Iterable[Any]) -> list[dict[str, Any]]:
    """``[{"key": ..., "value": ...}]`` for tags and params."""
    return [{"key": item.key, "value": item.value} for item in items]


def _omit_empty(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None and v != []}


# -- to JSON ---------------------------------------------------------------------------------
def experiment_to_json(exp: Experiment) -> dict[str, Any]:
    """An Experiment message."""
    return _omit_empty(
        {
            "experiment_id": exp.experiment_id,
            "name": exp.name,
            "artifact_location": exp.artifact_location,
            "lifecycle_stage": exp.lifecycle_stage,
            "last_update_time": exp.last_update_time,
            "creation_time": exp.creation_time,
            "tags": [{"key": k, "value": v} for k, v in exp.tags.items()],
        }
    )


def run_info_to_json(info: RunInfo) -> dict[str, Any]:
    """A RunInfo message (``run_uuid`` kept for older clients)."""
    return _omit_empty(
        {
            "run_id": info.run_id,
            "run_uuid": info.run_id,
            "run_name": info.run_name,
            "experiment_id": info.experiment_id,
            "user_id": info.user_id,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri,
            "lifecycle_stage": info.lifecycle_stage,
        }
    )


def metric_to_json(metric: Metric) -> dict[str, Any]:
    """A Metric message."""
    return {
        "key": metric.key,
        "value": wire_double(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def dataset_input_to_json(item: DatasetInput) -> dict[str, Any]:
    """A DatasetInput message."""
    ds = item.dataset
    dataset = _omit_empty(
        {
            "name": ds.name,
            "digest": ds.digest,
            "source_type": ds.source_type,
            "source": ds.source,
            "schema": ds.schema,
            "profile": ds.profile,
        }
    )
    return _omit_empty({"tags": key_values(item.tags), "dataset": dataset})


def run_to_json(run: Run) -> dict[str, Any]:
    """A Run message: ``info``, ``data`` (latest metrics, params, tags), ``inputs`` and, when
    the run produced logged models, ``outputs``."""
    data = run.data
    doc = {
        "info": run_info_to_json(run.info),
        "data": _omit_empty(
            {
                "metrics": [metric_to_json(m) for m in data.metric_objs],
                "params": [{"key": k, "value": v} for k, v in data.params.items()],
                "tags": [{"key": k, "value": v} for k, v in data.tags.items()],
            }
        ),
        "inputs": _omit_empty(
            {
                "dataset_inputs": [dataset_input_to_json(d) for d in run.inputs.dataset_inputs],
                "model_inputs": [{"model_id": m.model_id} for m in run.inputs.model_inputs],
            }
        ),
    }
    outputs = run.outputs.model_outputs
    if outputs:
        doc["outputs"] = {
            "model_outputs": [{"model_id": m.model_id, "step": m.step} for m in outputs]
        }
    return doc


def file_info_to_json(info: FileInfo) -> dict[str, Any]:
    """A FileInfo message (``file_size`` omitted for directories)."""
    return _omit_empty({"path": info.path, "is_dir": info.is_dir, "file_size": info.file_size})


# -- from JSON -------------------------------------------------------------------------------
def _pairs(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


def experiment_from_json(doc: Mapping[str, Any]) -> Experiment:
    """An Experiment from its message."""
    return Experiment(
        experiment_id=str(doc["experiment_id"]),
        name=doc.get("name", ""),
        artifact_location=doc.get("artifact_location", ""),
        lifecycle_stage=doc.get("lifecycle_stage", "active"),
        tags=_pairs(doc.get("tags")),
        creation_time=_opt_int(doc.get("creation_time")),
        last_update_time=_opt_int(doc.get("last_update_time")),
    )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def run_info_from_json(doc: Mapping[str, Any]) -> RunInfo:
    """A RunInfo from its message."""
    return RunInfo(
        run_id=doc.get("run_id") or doc["run_uuid"],
        experiment_id=str(doc.get("experiment_id", "")),
        user_id=doc.get("user_id", ""),
        status=doc.get("status", "RUNNING"),
        start_time=_opt_int(doc.get("start_time")),
        end_time=_opt_int(doc.get("end_time")),
        lifecycle_stage=doc.get("lifecycle_stage", "active"),
        artifact_uri=doc.get("artifact_uri", ""),
        run_name=doc.get("run_name", ""),
    )


def metric_from_json(doc: Mapping[str, Any], run_id: str | None = None) -> Metric:
    """A Metric from its message (with MLflow 3's ``model_id`` and dataset when present)."""
    return Metric(
        doc["key"],
        parse_double(doc.get("value", 0.0)),
        int(doc.get("timestamp", 0)),
        int(doc.get("step", 0)),
        run_id or doc.get("run_id") or None,
        doc.get("model_id") or None,
        doc.get("dataset_name") or None,
        doc.get("dataset_digest") or None,
    )


_DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")


def _check_dataset_input(doc: Mapping[str, Any], path: str) -> None:
    dataset, tags = doc.get("dataset") or {}, doc.get("tags") or []
    well_formed = (
        isinstance(dataset, Mapping)
        and isinstance(tags, list)
        and all(isinstance(t, Mapping) and isinstance(t.get("key"), str) for t in tags)
    )
    if well_formed:
        texts = [dataset.get(k) for k in _DATASET_FIELDS] + [t.get("value") for t in tags]
        well_formed = all(v is None or isinstance(v, str) for v in texts)
    if not well_formed:
        raise InvalidParameterValue(
            f"Invalid value for '{path}': expected {{'dataset': {{'name': ..., 'digest': ..., "
            "...}, 'tags': [{'key': ..., 'value': ...}]} with string fields."
        )


def dataset_input_from_json(doc: Mapping[str, Any], path: str = "datasets") -> DatasetInput:
    """A DatasetInput from its message.

    Raises:
        InvalidParameterValue: If the message is not shaped as one (it may come from a request);
            ``path`` names it in the error, e.g. ``datasets[2]``.
    """
    _check_dataset_input(doc, path)
    # ``or {}`` / ``or ""``: an explicit null reads as an absent field, as in proto-JSON.
    ds = doc.get("dataset") or {}
    dataset = Dataset(
        name=ds.get("name") or "",
        digest=ds.get("digest") or "",
        source_type=ds.get("source_type") or "",
        source=ds.get("source") or "",
        schema=ds.get("schema"),
        profile=ds.get("profile"),
    )
    tags = [InputTag(t["key"], t.get("value") or "") for t in doc.get("tags") or ()]
    return DatasetInput(dataset, tags)


def run_from_json(doc: Mapping[str, Any]) -> Run:
    """A Run from its message."""
    data = doc.get("data", {})
    metric_objs = tuple(metric_from_json(m) for m in data.get("metrics", ()))
    run_data = RunData(
        metrics={m.key: m.value for m in metric_objs},
        params=_pairs(data.get("params")),
        tags=_pairs(data.get("tags")),
        metric_objs=metric_objs,
    )
    inputs = doc.get("inputs", {})
    run_inputs = RunInputs(
        [dataset_input_from_json(d) for d in inputs.get("dataset_inputs", ())],
        [LoggedModelInput(str(m["model_id"])) for m in inputs.get("model_inputs", ())],
    )
    outputs = doc.get("outputs", {})
    run_outputs = RunOutputs(
        [
            LoggedModelOutput(str(m["model_id"]), int(m.get("step", 0)))
            for m in outputs.get("model_outputs", ())
        ]
    )
    return Run(run_info_from_json(doc["info"]), run_data, run_inputs, run_outputs)


def file_info_from_json(doc: Mapping[str, Any]) -> FileInfo:
    """A FileInfo from its message."""
    size = doc.get("file_size")
    return FileInfo(
        doc["path"], bool(doc.get("is_dir", False)), None if size is None else int(size)
    )
