"""``POST /api/2.0/runyard/runs/import``: a run with its own id, times and metric history.

``runyard sync --to`` pushes runs logged offline through this endpoint so their ids, start and
end times, steps and timestamps are kept (``runs/create`` would hand out a new id and time). The
body names the experiment (by id, or by name: created when missing) and carries the run's info,
params, tags, dataset inputs and a chunk of its metric points; a long history is sent in several
calls. Every call is idempotent: an imported run is merged into, never duplicated. With auth on,
the caller needs EDIT on the experiment (and becomes its manager when the import creates it).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from runyard.entities import Metric, Param, RunInfo, RunTag
from runyard.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    RunyardError,
)
from runyard.protocol.codec import dataset_input_from_json, parse_double, run_info_to_json
from runyard.protocol.requests import Field
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint
from runyard.store.sql.run_import import RunImportOps
from runyard.utils.validation import (
    validate_experiment_name,
    validate_key,
    validate_metric,
    validate_param_value,
    validate_tag_value,
)

__all__ = ["ENDPOINTS", "import_run"]

_DENIED = "Permission denied"


def _required(doc: Any, name: str, path: str) -> Any:
    value = doc.get(name) if isinstance(doc, dict) else None
    if value is None or value == "":
        raise InvalidParameterValue(
            f"Missing value for required parameter '{path}.{name}'. "
            "See the API docs for more information about request parameters."
        )
    return value


def _params(items: list[dict[str, Any]]) -> list[Param]:
    out = []
    for i, doc in enumerate(items):
        key = validate_key(_required(doc, "key", f"params[{i}]"), "param")
        out.append(Param(key, validate_param_value(key, doc.get("value") or "")))
    return out


def _tags(items: list[dict[str, Any]]) -> list[RunTag]:
    out = []
    for i, doc in enumerate(items):
        key = validate_key(_required(doc, "key", f"tags[{i}]"), "tag")
        out.append(RunTag(key, validate_tag_value(key, doc.get("value") or "")))
    return out


def _metrics(items: list[dict[str, Any]]) -> list[Metric]:
    out = []
    for i, doc in enumerate(items):
        path = f"metrics[{i}]"
        key = _required(doc, "key", path)
        try:
            value = parse_double(_required(doc, "value", path))
            timestamp = int(_required(doc, "timestamp", path))
            step = int(doc.get("step") or 0)
        except (TypeError, ValueError):
            raise InvalidParameterValue(
                f"Invalid value in '{path}': value must be a number, timestamp and step integers."
            ) from None
        validate_metric(key, value, timestamp, step)
        out.append(Metric(key, value, timestamp, step))
    return out


def _experiment_id(ctx: ServerContext, store: Any, p: dict[str, Any]) -> str:
    """The target experiment's id; an experiment named but missing is created (and, with
    auth on, its creator manages it). The caller needs EDIT on an existing one."""
    principal = p.get("_principal")
    auth = ctx.auth
    if p["experiment_id"] is not None:
        exp_id = str(store.get_experiment(p["experiment_id"]).experiment_id)
    elif p["experiment_name"] is not None:
        name = validate_experiment_name(p["experiment_name"])
        exp = store.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = str(store.create_experiment(name))
            except ResourceAlreadyExists:  # created by a concurrent import meanwhile
                exp_id = str(store.get_experiment_by_name(name).experiment_id)
            else:
                if auth is not None and principal is not None:
                    auth.grant_creator("experiment", exp_id, principal)
                return exp_id
        exp_id = str(exp.experiment_id)
    else:
        raise InvalidParameterValue(
            "Missing value for required parameter 'experiment_id' (or 'experiment_name'). "
            "See the API docs for more information about request parameters."
        )
    if auth is not None and not auth.can(principal, "experiment", exp_id, "update"):
        raise PermissionDenied(_DENIED)
    return exp_id


def _import(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    store = ctx.tracking()
    if not isinstance(store, RunImportOps):
        raise RunyardError("This tracking store cannot import runs.", error_code="NOT_IMPLEMENTED")
    exp_id = _experiment_id(ctx, store, p)
    info = RunInfo(
        run_id=p["run_id"],
        experiment_id=exp_id,
        user_id=p["user_id"] or "",
        status=p["status"] or "RUNNING",
        start_time=p["start_time"],
        end_time=p["end_time"],
        lifecycle_stage=p["lifecycle_stage"] or "active",
        artifact_uri="",
        run_name=p["run_name"] or "",
    )
    stored, created = store.import_run(
        exp_id,
        info,
        _params(p["params"]),
        _tags(p["tags"]),
        _metrics(p["metrics"]),
        [dataset_input_from_json(d) for d in p["datasets"]],
    )
    return {"run_info": run_info_to_json(stored), "created": created, "experiment_id": exp_id}


async def import_run(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/import → ``{"run_info": ..., "created": bool, "experiment_id": ...}``."""
    # Up to tens of thousands of points in one transaction: off the event loop.
    result: dict[str, Any] = await run_in_threadpool(_import, ctx, p)
    return result


def _kv(name: str) -> Field:
    return Field(name, "message", repeated=True)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "/runs/import",
        ("POST",),
        import_run,
        (
            Field("experiment_id"),
            Field("experiment_name"),
            Field("run_id", required=True),
            Field("run_name"),
            Field("user_id"),
            Field("status", "RunStatus"),
            Field("start_time", "int"),
            Field("end_time", "int"),
            Field("lifecycle_stage"),
            _kv("params"),
            _kv("tags"),
            _kv("metrics"),
            _kv("datasets"),
        ),
        "Import a run with its own id, times and metric history (runyard sync)",
        namespace="runyard",
    ),
]
