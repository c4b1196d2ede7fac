"""Run endpoints (spec §2.2–§2.5): lifecycle, logging, search, history, artifact listing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from runyard.config import ENV
from runyard.entities import LoggedModelInput, Metric, Param, RunTag, ViewType
from runyard.entities.run import new_point
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.protocol.codec import (
    dataset_input_from_json,
    file_info_to_json,
    metric_to_json,
    parse_double,
    run_info_to_json,
    run_to_json,
)
from runyard.protocol.requests import Field
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint, check_max_results, page_response
from runyard.store.artifact import clean_artifact_path
from runyard.store.base import (
    SEARCH_MAX_RESULTS_DEFAULT,
    SEARCH_MAX_RESULTS_THRESHOLD,
    CheckedPoints,
    RunDocSearch,
)
from runyard.store.sql.history_downsample import MIN_POINTS_LIMIT, HistoryDownsampleOps
from runyard.utils.validation import KNOWN_KEYS, validate_key, validated_batch

__all__ = ["ENDPOINTS"]

RUN_ID = Field("run_id", required=True, aliases=("run_uuid",))
LOG_MODEL_HISTORY = "mlflow.log-model.history"
_MLMODEL_REQUIRED = ("artifact_path", "flavors", "utc_time_created", "run_id")
#: MLflow's limit on a log-batch request body.
LOG_BATCH_MAX_BODY = 1_000_000
#: Timestamps and steps are int64 on the wire and in the database.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _truncate() -> bool:
    return ENV.TRUNCATE_LONG_VALUES.get()


def _required(doc: dict[str, Any], name: str, path: str) -> Any:
    value = doc.get(name)
    if value is None or value == "":
        raise InvalidParameterValue(
            f"Missing value for required parameter '{path}.{name}'. "
            "See the API docs for more information about request parameters."
        )
    return value


def _model_fields(doc: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """MLflow 3's optional ``model_id``, ``dataset_name`` and ``dataset_digest`` of a metric."""
    return (
        doc.get("model_id") or None,
        doc.get("dataset_name") or None,
        doc.get("dataset_digest") or None,
    )


def _metric(doc: dict[str, Any], path: str) -> Metric:
    # Fast path for what clients send: a string key, a float value, int timestamp and step.
    key, value, timestamp = doc.get("key"), doc.get("value"), doc.get("timestamp")
    step = doc.get("step", 0)
    if (
        type(key) is str
        and key
        and type(value) is float
        and type(timestamp) is int
        and type(step) is int
        and _INT64_MIN <= timestamp <= _INT64_MAX
        and _INT64_MIN <= step <= _INT64_MAX
    ):
        if "model_id" not in doc and "dataset_name" not in doc:
            return new_point(key, value, timestamp, step)
        return Metric(key, value, timestamp, step, None, *_model_fields(doc))
    key = _required(doc, "key", path)
    value = _required(doc, "value", path)
    timestamp = _required(doc, "timestamp", path)
    try:
        metric = Metric(
            str(key),
            parse_double(value),
            int(timestamp),
            int(doc.get("step") or 0),
            None,
            *_model_fields(doc),
        )
    except (TypeError, ValueError, OverflowError):
        metric = None
    if metric is None or not (
        _INT64_MIN <= metric.timestamp <= _INT64_MAX and _INT64_MIN <= metric.step <= _INT64_MAX
    ):
        raise InvalidParameterValue(
            f"Invalid value in '{path}': value must be a number, timestamp and step 64-bit "
            "integers."
        )
    return metric


def _key_value(doc: dict[str, Any], path: str, cls: type[Any]) -> Any:
    return cls(str(_required(doc, "key", path)), str(doc.get("value") or ""))


# -- lifecycle -------------------------------------------------------------------------------
async def create_run(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/create."""
    tags = [_key_value(t, f"tags[{i}]", RunTag) for i, t in enumerate(p["tags"])]
    _, _, tags = validated_batch([], [], tags, _truncate())
    run = ctx.tracking().create_run(
        p["experiment_id"] or "0",
        p["user_id"] or "",
        p["start_time"] or 0,
        tags,
        p["run_name"],
    )
    return {"run": run_to_json(run)}


async def get_run(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET runs/get."""
    return {"run": run_to_json(ctx.tracking().get_run(p["run_id"]))}


async def update_run(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/update."""
    info = ctx.tracking().update_run_info(p["run_id"], p["status"], p["end_time"], p["run_name"])
    return {"run_info": run_info_to_json(info)}


async def delete_run(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/delete."""
    ctx.tracking().delete_run(p["run_id"])
    return {}


async def restore_run(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/restore."""
    ctx.tracking().restore_run(p["run_id"])
    return {}


async def search_runs(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/search."""
    max_results = p["max_results"]
    if max_results is None:
        max_results = SEARCH_MAX_RESULTS_DEFAULT
    check_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)
    view = ViewType.from_string(p["run_view_type"]) if p["run_view_type"] else ViewType.ACTIVE_ONLY
    store = ctx.tracking()
    args = (p["experiment_ids"], p["filter"], view, max_results, p["order_by"], p["page_token"])
    if isinstance(store, RunDocSearch):  # JSON straight from the rows
        docs = store.search_run_docs(*args)
        return page_response("runs", list(docs), docs.token)
    page = store.search_runs(*args)
    return page_response("runs", [run_to_json(r) for r in page], page.token)


# -- logging ---------------------------------------------------------------------------------
def _log(ctx: ServerContext, run_id: str, metrics: list[Metric], params: list[Param],
         tags: list[RunTag]) -> dict[str, Any]:  # fmt: skip
    checked = validated_batch(metrics, params, tags, _truncate())
    ctx.tracking().log_batch(run_id, *checked)
    return {}


async def log_metric(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/log-metric."""
    metric = Metric(
        p["key"],
        p["value"],
        p["timestamp"],
        p["step"] or 0,
        None,
        p["model_id"],
        p["dataset_name"],
        p["dataset_digest"],
    )
    return _log(ctx, p["run_id"], [metric], [], [])


async def log_param(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/log-parameter."""
    return _log(ctx, p["run_id"], [], [Param(p["key"], p["value"] or "")], [])


async def set_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/set-tag."""
    return _log(ctx, p["run_id"], [], [], [RunTag(p["key"], p["value"] or "")])


async def delete_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/delete-tag."""
    ctx.tracking().delete_tag(p["run_id"], p["key"])
    return {}


def _checked_points(run_id: str, docs: list[Any]) -> CheckedPoints | None:
    """The metrics of a log-batch body as store rows, checked column by column at C speed, when
    they are what clients send: a string key, a float value, int timestamp and step, nothing
    else. None for anything else (MLflow 3 model/dataset fields, numbers as strings, a missing
    field, bad values): the per-metric path then checks, converts and names the culprit."""
    try:
        rows = CheckedPoints(
            (run_id, d["key"], d["step"], d["timestamp"], d["value"], False) for d in docs
        )
    except (KeyError, TypeError):
        return None
    if not rows or {len(d) for d in docs} != {4}:
        return None
    _, keys, steps, times, values, _ = zip(*rows, strict=True)
    if not (
        {type(k) for k in keys} == {str}
        and {type(v) for v in values} == {float}
        and {type(n) for n in steps} == {int}
        and {type(n) for n in times} == {int}
        and min(steps) >= _INT64_MIN
        and max(steps) <= _INT64_MAX
        and min(times) >= 0
        and max(times) <= _INT64_MAX
        and math.isfinite(sum(values))
    ):
        return None
    for key in set(keys) - KNOWN_KEYS:
        validate_key(key, "metric")
    return rows


async def log_batch(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/log-batch: one transaction, all or nothing."""
    params = [_key_value(x, f"params[{i}]", Param) for i, x in enumerate(p["params"])]
    tags = [_key_value(x, f"tags[{i}]", RunTag) for i, x in enumerate(p["tags"])]
    log_checked = getattr(ctx.tracking(), "log_checked_batch", None)
    points = None if log_checked is None else _checked_points(p["run_id"], p["metrics"])
    if log_checked is not None and points is not None:
        _, params, tags = validated_batch([], params, tags, _truncate())
        log_checked(p["run_id"], points, params, tags)
        return {}
    metrics = [_metric(m, f"metrics[{i}]") for i, m in enumerate(p["metrics"])]
    return _log(ctx, p["run_id"], metrics, params, tags)


async def log_inputs(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/log-inputs: datasets, and the logged models the run used."""
    datasets = [dataset_input_from_json(d, f"datasets[{i}]") for i, d in enumerate(p["datasets"])]
    models = []
    for index, item in enumerate(p["models"]):
        if not item.get("model_id"):
            raise InvalidParameterValue(
                f"Missing value for required parameter 'models[{index}].model_id'. "
                "See the API docs for more information about request parameters."
            )
        models.append(LoggedModelInput(str(item["model_id"])))
    ctx.tracking().log_inputs(p["run_id"], datasets, models)
    return {}


#: An unpaged history longer than this is streamed, read from the store this many at a time.
HISTORY_STREAM_CHUNK = 50_000


def _history_points(page: list[Metric]) -> list[dict[str, Any]]:
    # Histories run to 100,000s of points: build the dicts inline (NaN is the only special
    # value the store returns; infinities are stored as +-max double).
    return [
        {"key": m.key, "value": m.value if m.value == m.value else "NaN",
         "timestamp": m.timestamp, "step": m.step}
        for m in page
    ]  # fmt: skip


async def get_metric_history(ctx: ServerContext, p: dict[str, Any]) -> Any:
    """GET metrics/get-history: all points, or pages of ``max_results``.

    All points of a long series are streamed, ``HISTORY_STREAM_CHUNK`` at a time, so a
    1M-point history never sits in the server's memory at once; the bytes are the same as
    one encoded document.
    """
    max_results, token = p["max_results"], p["page_token"]
    if max_results is not None and max_results <= 0:
        raise InvalidParameterValue(
            f"Invalid value for max_results. It must be a positive integer, got {max_results}"
        )
    store, run_id, key = ctx.tracking(), p["run_id"], p["metric_key"]
    if max_results is not None or token:
        page = store.get_metric_history(run_id, key, max_results, token)
        return page_response("metrics", _history_points(page), page.token)
    first = store.get_metric_history(run_id, key, HISTORY_STREAM_CHUNK, None)
    if first.token is None:
        return page_response("metrics", _history_points(first), None)

    def chunks() -> Iterator[bytes]:
        page = first
        yield b'{"metrics":' + orjson.dumps(_history_points(page))[:-1]
        while page.token is not None:
            page = store.get_metric_history(run_id, key, HISTORY_STREAM_CHUNK, page.token)
            if page:
                yield b"," + orjson.dumps(_history_points(page))[1:-1]
        yield b"]}"

    return StreamingResponse(chunks(), media_type="application/json")


MAX_BULK_RUNS = 100
MAX_BULK_POINTS = 2500
#: get-history-bulk-interval samples a range of at most this many points exactly as MLflow.
BULK_EXACT_POINTS = 25_000


def _sample(points: list[Metric], limit: int) -> list[Metric]:
    """At most ``limit`` points spread evenly over the steps, first and last kept."""
    if len(points) <= limit:
        return points
    if limit == 1:
        return [points[-1]]
    last = len(points) - 1
    picks = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picks]


async def get_history_bulk_interval(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET metrics/get-history-bulk-interval: one metric of many runs, sampled over steps."""
    run_ids, start, end = p["run_ids"], p["start_step"], p["end_step"]
    if len(run_ids) > MAX_BULK_RUNS:
        raise InvalidParameterValue(f"At most {MAX_BULK_RUNS} run_ids can be requested at once.")
    if (start is None) != (end is None) or (start is not None and start > end):
        raise InvalidParameterValue(
            "start_step and end_step must be given together, with start_step <= end_step."
        )
    limit = MAX_BULK_POINTS if p["max_results"] is None else p["max_results"]
    if not 1 <= limit <= MAX_BULK_POINTS:
        raise InvalidParameterValue(f"max_results must be between 1 and {MAX_BULK_POINTS}.")
    out = []
    for run_id in run_ids:
        points = _bulk_points(ctx.tracking(), run_id, p["metric_key"], limit, start, end)
        out += [{**metric_to_json(m), "run_id": run_id} for m in _sample(points, limit)]
    return {"metrics": out} if out else {}


def _bulk_points(
    store: Any, run_id: str, key: str, limit: int, start: int | None, end: int | None
) -> list[Metric]:
    """The points of one run's series in the step range, ordered by step, for ``_sample``.

    Up to ``BULK_EXACT_POINTS`` points in the range are all read and sampled evenly over the
    steps, exactly as MLflow does. A longer range of a SQL store's series is reduced in the
    database instead (its first, last, lowest and highest point per bucket of steps, from
    metric tiles) rather than loading the whole history.
    """
    if isinstance(store, HistoryDownsampleOps):
        try:
            total, reduced, points = store.get_metric_history_downsampled(
                run_id, key, max(limit, MIN_POINTS_LIMIT), start, end
            )
        except ResourceDoesNotExist:
            return []  # as the history of an unknown run: no points
        if not reduced or total > BULK_EXACT_POINTS:
            return points
    points = sorted(store.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    if start is not None and end is not None:
        points = [m for m in points if start <= m.step <= end]
    return points


async def presigned_url(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST artifacts/presigned-*-url: only cloud object stores can sign URLs."""
    raise RunyardError(
        "Presigned URLs need a cloud artifact store; this server's artifacts are on a "
        "filesystem. Upload and download through the artifact proxy instead.",
        error_code="NOT_IMPLEMENTED",
    )


def _log_model_history(tags: dict[str, str]) -> list[Any]:
    """The models already in ``mlflow.log-model.history``; a tag that is not a JSON list (any
    client may set any tag) is started afresh rather than failing every later log-model."""
    try:
        entries = orjson.loads(tags.get(LOG_MODEL_HISTORY, "[]"))
    except orjson.JSONDecodeError:
        return []
    return entries if isinstance(entries, list) else []


async def log_model(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST runs/log-model (MLflow 2.x clients): appends to ``mlflow.log-model.history``."""
    try:
        model = orjson.loads(p["model_json"])
    except orjson.JSONDecodeError:
        raise InvalidParameterValue("model_json must be the JSON text of an MLmodel.") from None
    if not isinstance(model, dict):
        raise InvalidParameterValue("model_json must be the JSON text of an MLmodel.")
    missing = [
        k for k in ("artifact_path", "flavors", "utc_time_created", "run_id") if k not in model
    ]
    if missing:
        raise InvalidParameterValue(f"model_json lacks required fields: {', '.join(missing)}")
    store = ctx.tracking()
    entries = _log_model_history(store.get_run(p["run_id"]).data.tags) + [model]
    tag = RunTag(LOG_MODEL_HISTORY, orjson.dumps(entries).decode())
    store.log_batch(p["run_id"], tags=[tag])
    return {}


async def list_artifacts(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET artifacts/list: paths relative to the run's artifact root."""
    root = ctx.tracking().get_run(p["run_id"]).info.artifact_uri
    path = clean_artifact_path(p["path"])
    files = ctx.repo_for(root).list_artifacts(path or None)
    out: dict[str, Any] = {"root_uri": root}
    if files:
        out["files"] = [file_info_to_json(f) for f in files]
    return out


def _kv(name: str) -> Field:
    return Field(name, "message", repeated=True)


ENDPOINTS = [
    Endpoint(
        "/runs/create",
        ("POST",),
        create_run,
        (
            Field("experiment_id"),
            Field("user_id"),
            Field("run_name"),
            Field("start_time", "int"),
            _kv("tags"),
        ),
        "Create a run",
    ),
    Endpoint("/runs/get", ("GET",), get_run, (RUN_ID,), "Get a run"),
    Endpoint(
        "/runs/update",
        ("POST",),
        update_run,
        (RUN_ID, Field("status", "RunStatus"), Field("end_time", "int"), Field("run_name")),
        "Update a run's status, end time or name",
    ),
    Endpoint("/runs/delete", ("POST",), delete_run, (RUN_ID,), "Delete a run (soft)"),
    Endpoint("/runs/restore", ("POST",), restore_run, (RUN_ID,), "Restore a deleted run"),
    Endpoint(
        "/runs/search",
        ("POST",),
        search_runs,
        (
            Field("experiment_ids", repeated=True),
            Field("filter"),
            Field("run_view_type", "ViewType"),
            Field("max_results", "int"),
            Field("order_by", repeated=True),
            Field("page_token"),
        ),
        "Search runs",
        reads_replica=True,
    ),
    Endpoint(
        "/runs/log-metric",
        ("POST",),
        log_metric,
        (
            RUN_ID,
            Field("key", required=True),
            Field("value", "double", required=True),
            Field("timestamp", "int", required=True),
            Field("step", "int"),
            Field("model_id"),
            Field("dataset_name"),
            Field("dataset_digest"),
        ),
        "Log a metric point",
    ),
    Endpoint(
        "/runs/log-parameter",
        ("POST",),
        log_param,
        (RUN_ID, Field("key", required=True), Field("value")),
        "Log a parameter",
    ),
    Endpoint(
        "/runs/set-tag",
        ("POST",),
        set_tag,
        (RUN_ID, Field("key", required=True), Field("value")),
        "Set a run tag",
    ),
    Endpoint(
        "/runs/delete-tag",
        ("POST",),
        delete_tag,
        (RUN_ID, Field("key", required=True)),
        "Delete a run tag",
    ),
    Endpoint(
        "/runs/log-batch",
        ("POST",),
        log_batch,
        (RUN_ID, _kv("metrics"), _kv("params"), _kv("tags")),
        "Log metrics, params and tags in one transaction",
        max_body=LOG_BATCH_MAX_BODY,
    ),
    Endpoint(
        "/runs/log-inputs",
        ("POST",),
        log_inputs,
        (RUN_ID, _kv("datasets"), _kv("models")),
        "Log dataset inputs of a run",
    ),
    Endpoint(
        "/metrics/get-history",
        ("GET",),
        get_metric_history,
        (
            RUN_ID,
            Field("metric_key", required=True),
            Field("max_results", "int"),
            Field("page_token"),
        ),
        "Every point of a metric",
        reads_replica=True,
    ),
    Endpoint(
        "/metrics/get-history-bulk-interval",
        ("GET",),
        get_history_bulk_interval,
        (
            Field("run_ids", repeated=True, required=True),
            Field("metric_key", required=True),
            Field("start_step", "int"),
            Field("end_step", "int"),
            Field("max_results", "int"),
        ),
        "One metric of many runs, sampled over steps (for charts)",
        reads_replica=True,
    ),
    Endpoint(
        "/runs/log-model",
        ("POST",),
        log_model,
        (RUN_ID, Field("model_json", required=True)),
        "Record a logged model in the run (MLflow 2.x clients)",
    ),
    Endpoint(
        "/artifacts/presigned-upload-url",
        ("POST",),
        presigned_url,
        (Field("run_id"), Field("path"), Field("expiration", "int"), Field("model_id")),
        "Presigned upload URL (cloud artifact stores only)",
    ),
    Endpoint(
        "/artifacts/presigned-download-url",
        ("POST",),
        presigned_url,
        (Field("run_id"), Field("path"), Field("expiration", "int")),
        "Presigned download URL (cloud artifact stores only)",
    ),
    Endpoint(
        "/artifacts/list",
        ("GET",),
        list_artifacts,
        (RUN_ID, Field("path"), Field("page_token")),
        "List a run's artifacts",
    ),
]
