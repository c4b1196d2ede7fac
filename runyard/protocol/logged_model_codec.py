"""Logged models (MLflow 3) to MLflow's JSON shapes and back (spec §3.1).

A ``LoggedModel`` message is ``{"info": LoggedModelInfo, "data": LoggedModelData}``: the info
carries ids, name, timestamps (``*_timestamp_ms``), ``artifact_uri``, the status by its proto
name (``LOGGED_MODEL_READY``) and tags; the data carries params and metric points. As everywhere
on the wire, unset optionals and empty lists are omitted; ``data`` is always present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runyard.entities import (
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelRegistration,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
)
from runyard.protocol.codec import parse_double, wire_double

__all__ = [
    "logged_model_from_json",
    "logged_model_to_json",
    "model_input_from_json",
    "model_input_to_json",
    "model_metric_from_json",
    "model_metric_to_json",
    "model_output_from_json",
    "model_output_to_json",
    "model_params_from_json",
    "model_tags_from_json",
]


def _omit_empty(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None and v != []}


def _pairs(items: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items.items()]


# -- to JSON ---------------------------------------------------------------------------------
def model_metric_to_json(metric: Metric) -> dict[str, Any]:
    """A Metric message with MLflow 3's optional ``model_id``, dataset and ``run_id`` fields."""
    return _omit_empty(
        {
            "key": metric.key,
            "value": wire_double(metric.value),
            "timestamp": metric.timestamp,
            "step": metric.step,
            "model_id": metric.model_id,
            "dataset_name": metric.dataset_name,
            "dataset_digest": metric.dataset_digest,
            "run_id": metric.run_id,
        }
    )


def logged_model_to_json(model: LoggedModel) -> dict[str, Any]:
    """A LoggedModel message."""
    info = _omit_empty(
        {
            "model_id": model.model_id,
            "experiment_id": model.experiment_id,
            "name": model.name,
            "creation_timestamp_ms": model.creation_timestamp,
            "last_updated_timestamp_ms": model.last_updated_timestamp,
            "artifact_uri": model.artifact_location,
            "status": LoggedModelStatus.parse(model.status).proto_name,
            "model_type": model.model_type,
            "source_run_id": model.source_run_id,
            "status_message": model.status_message,
            "tags": _pairs(model.tags),
            "registrations": [{"name": r.name, "version": r.version} for r in model.registrations],
        }
    )
    data = _omit_empty(
        {
            "params": _pairs(model.params),
            "metrics": [model_metric_to_json(m) for m in model.metrics or ()],
        }
    )
    return {"info": info, "data": data}


def model_input_to_json(item: LoggedModelInput) -> dict[str, Any]:
    """A ModelInput message."""
    return {"model_id": item.model_id}


def model_output_to_json(item: LoggedModelOutput) -> dict[str, Any]:
    """A ModelOutput message."""
    return {"model_id": item.model_id, "step": item.step}


# -- from JSON -------------------------------------------------------------------------------
def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def model_metric_from_json(doc: Mapping[str, Any]) -> Metric:
    """A Metric from its message, optional MLflow 3 fields included."""
    return Metric(
        doc["key"],
        parse_double(doc.get("value", 0.0)),
        int(doc.get("timestamp", 0)),
        int(doc.get("step", 0)),
        _opt_str(doc.get("run_id")),
        _opt_str(doc.get("model_id")),
        _opt_str(doc.get("dataset_name")),
        _opt_str(doc.get("dataset_digest")),
    )


def model_tags_from_json(items: Iterable[Mapping[str, Any]] | None) -> list[LoggedModelTag]:
    """``[{"key", "value"}]`` as tags (a missing value is the empty string)."""
    return [LoggedModelTag(str(t["key"]), str(t.get("value") or "")) for t in items or ()]


def model_params_from_json(
    items: Iterable[Mapping[str, Any]] | None,
) -> list[LoggedModelParameter]:
    """``[{"key", "value"}]`` as parameters (a missing value is the empty string)."""
    return [LoggedModelParameter(str(p["key"]), str(p.get("value") or "")) for p in items or ()]


def logged_model_from_json(doc: Mapping[str, Any]) -> LoggedModel:
    """A LoggedModel from its message."""
    info = doc.get("info", {})
    data = doc.get("data", {})
    return LoggedModel(
        experiment_id=str(info.get("experiment_id", "")),
        model_id=info["model_id"],
        name=info.get("name", ""),
        artifact_location=info.get("artifact_uri", ""),
        creation_timestamp=int(info.get("creation_timestamp_ms", 0)),
        last_updated_timestamp=int(info.get("last_updated_timestamp_ms", 0)),
        model_type=_opt_str(info.get("model_type")),
        source_run_id=_opt_str(info.get("source_run_id")),
        status=LoggedModelStatus.parse(info.get("status", 0)),
        status_message=_opt_str(info.get("status_message")),
        tags={t.key: t.value for t in model_tags_from_json(info.get("tags"))},
        params={p.key: p.value for p in model_params_from_json(data.get("params"))},
        metrics=[model_metric_from_json(m) for m in data.get("metrics", ())],
        registrations=[
            LoggedModelRegistration(str(r.get("name", "")), str(r.get("version", "")))
            for r in info.get("registrations", ())
        ],
    )


def model_input_from_json(doc: Mapping[str, Any]) -> LoggedModelInput:
    """A ModelInput from its message."""
    return LoggedModelInput(str(doc["model_id"]))


def model_output_from_json(doc: Mapping[str, Any]) -> LoggedModelOutput:
    """A ModelOutput from its message."""
    return LoggedModelOutput(str(doc["model_id"]), int(doc.get("step", 0)))
