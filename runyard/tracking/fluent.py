"""The fluent API: ``runyard.start_run``, ``runyard.log_metric`` and friends.

State (the active run stack, the active experiment) is per thread, as in MLflow, so scripts and
notebooks behave as they do with MLflow. ``log_*`` calls validate at once and queue the values;
``end_run`` writes everything of the run before it marks it finished.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from runyard.config import ENV
from runyard.entities import (
    DatasetInput,
    Experiment,
    InputTag,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.tracking.client import Client
from runyard.tracking.context import resolve_run_tags
from runyard.tracking.uri import get_tracking_uri
from runyard.utils.time import now_ms

__all__ = [
    "ActiveRun",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_tag",
    "end_run",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "search_experiments",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "start_run",
]

NOTE_TAG = "mlflow.note.content"
PARENT_TAG = "mlflow.parentRunId"


class ActiveRun(Run):
    """The run returned by ``start_run``; as a context manager it ends the run on exit."""

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # If the block already ended this run itself, there is nothing left to end (MLflow).
        if any(r.info.run_id == self.info.run_id for r in _state.runs):
            status = RunStatus.FINISHED if exc_type is None else RunStatus.FAILED
            end_run(RunStatus.to_string(status))


class _State(threading.local):
    def __init__(self) -> None:
        self.runs: list[ActiveRun] = []
        self.experiment_id: str | None = None


_state = _State()
_last_active_run_id: str | None = None
_clients: dict[str, Client] = {}
_exit_hook = False


def _client() -> Client:
    uri = get_tracking_uri()
    client = _clients.get(uri)
    if client is None:
        client = _clients[uri] = Client(uri)
    return client


def _run_id_or_start() -> str:
    if _state.runs:
        return _state.runs[-1].info.run_id
    return start_run().info.run_id


# -- experiments -----------------------------------------------------------------------------
def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active for new runs, creating it by name if needed."""
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterValue("Pass exactly one of experiment_name or experiment_id.")
    client = _client()
    if experiment_id is not None:
        try:
            exp = client.get_experiment(str(experiment_id))
        except ResourceDoesNotExist:
            raise ResourceDoesNotExist(
                f"Experiment with ID '{experiment_id}' does not exist."
            ) from None
    else:
        found = client.get_experiment_by_name(str(experiment_name))
        if found is None:
            client.create_experiment(str(experiment_name))
            found = client.get_experiment_by_name(str(experiment_name))
        assert found is not None
        exp = found
    if exp.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"Cannot set a deleted experiment '{exp.name}' as the active experiment. "
            "Restore it (runyard experiments restore -x ID) or use another name."
        )
    _state.experiment_id = exp.experiment_id
    return exp


def active_experiment_id() -> str:
    """The experiment new runs go to: set_experiment's, else the environment's, else "0"."""
    if _state.experiment_id is not None:
        return _state.experiment_id
    env_id = ENV.EXPERIMENT_ID.get()
    if env_id:
        return env_id
    env_name = ENV.EXPERIMENT_NAME.get()
    if env_name:
        return set_experiment(env_name).experiment_id
    return "0"


def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    """Create an experiment; returns its id."""
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """An experiment by id."""
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """An experiment by name, or None."""
    return _client().get_experiment_by_name(name)


def delete_experiment(experiment_id: str) -> None:
    """Soft-delete an experiment."""
    _client().delete_experiment(experiment_id)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """Every experiment matching the filter (all pages), or the first ``max_results``."""
    client = _client()
    out: list[Experiment] = []
    token = None
    while True:
        want = 1000 if max_results is None else min(1000, max_results - len(out))
        page = client.search_experiments(view_type, want, filter_string, order_by, token)
        out.extend(page)
        token = page.token
        if not token or (max_results is not None and len(out) >= max_results):
            return out


def set_experiment_tag(key: str, value: Any) -> None:
    """Tag the active experiment."""
    _client().set_experiment_tag(active_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Tag the active experiment with several tags."""
    for key, value in tags.items():
        set_experiment_tag(key, value)


# -- runs ------------------------------------------------------------------------------------
def _resume(client: Client, run_id: str, tags: dict[str, str], run_name: str | None) -> Run:
    run = client.get_run(run_id)
    if run.info.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"Cannot start run with ID {run_id} because it is in the deleted state."
        )
    client.update_run(run_id, status="RUNNING", name=run_name)
    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)
    return client.get_run(run_id)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id`` or ``RUNYARD_RUN_ID``) a run and make it active."""
    global _exit_hook
    if _state.runs and not nested:
        raise RunyardError(
            f"Run with UUID {_state.runs[-1].info.run_id} is already active. To start a new "
            "run, first end the current run with runyard.end_run(). To start a nested run, "
            "call start_run with nested=True",
            error_code="INVALID_STATE",
        )
    client = _client()
    existing = run_id or (ENV.RUN_ID.get() if not _state.runs else None)
    user_tags = {k: str(v) for k, v in (tags or {}).items()}
    parent = parent_run_id or (_state.runs[-1].info.run_id if _state.runs and nested else None)
    if parent:
        user_tags[PARENT_TAG] = parent
    if description:
        user_tags[NOTE_TAG] = description
    if existing:
        run = _resume(client, existing, user_tags, run_name)
    else:
        exp_id = str(experiment_id) if experiment_id is not None else active_experiment_id()
        run = client.create_run(exp_id, now_ms(), resolve_run_tags(user_tags), run_name)
    active = ActiveRun(run.info, run.data, run.inputs)
    _state.runs.append(active)
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_end_runs_at_exit)
    return active


def _end_runs_at_exit() -> None:
    while _state.runs:
        try:
            end_run()
        except RunyardError:
            _state.runs.pop()


def end_run(status: str = "FINISHED") -> None:
    """Write everything logged to the active run, then end it with ``status``."""
    global _last_active_run_id
    if not _state.runs:
        return
    run = _state.runs[-1]
    client = _client()
    # Waits at most RUNYARD_END_RUN_TIMEOUT for an unreachable server, then leaves the rest and
    # the run's end in the spool for `runyard sync` (with a warning) and returns normally.
    client._end_run(run.info.run_id, status)
    _state.runs.pop()
    _last_active_run_id = run.info.run_id
    client._raise_write_errors()


def active_run() -> ActiveRun | None:
    """The active run of this thread, or None."""
    return _state.runs[-1] if _state.runs else None


def last_active_run() -> Run | None:
    """The active run, else the run most recently ended, freshly read."""
    if _state.runs:
        return get_run(_state.runs[-1].info.run_id)
    if _last_active_run_id is None:
        return None
    return get_run(_last_active_run_id)


def get_run(run_id: str) -> Run:
    """A run by id."""
    return _client().get_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    """The parent of a nested run, or None."""
    return _client().get_parent_run(run_id)


def flush() -> None:
    """Write every queued value now (runyard addition); raise if any was refused."""
    _client().flush()


# -- logging ---------------------------------------------------------------------------------
def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
    **_ignored: Any,
) -> None:
    """Log a metric point to the active run (started if none); ``model_id`` and ``dataset``
    (an ``runyard.data`` dataset) link the point to a logged model and the data it was
    measured on, as in MLflow 3."""
    rid = run_id or (_state.runs[-1].info.run_id if _state.runs else _run_id_or_start())
    if model_id is None and dataset is None:
        _client().log_metric(rid, key, value, timestamp, step, synchronous)
        return
    _client().log_metric(
        rid,
        key,
        value,
        timestamp,
        step,
        synchronous,
        dataset_name=getattr(dataset, "name", None),
        dataset_digest=getattr(dataset, "digest", None),
        model_id=model_id,
    )


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: str | None = None,
    dataset: Any = None,
    **_ignored: Any,
) -> None:
    """Log several metrics at one step (``model_id``/``dataset`` as for :func:`log_metric`)."""
    rid = run_id or _run_id_or_start()
    ts = timestamp if timestamp is not None else now_ms()
    name, digest = getattr(dataset, "name", None), getattr(dataset, "digest", None)
    batch = [Metric(k, v, ts, step or 0, None, model_id, name, digest) for k, v in metrics.items()]
    _client().log_batch(rid, metrics=batch, synchronous=synchronous)


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a parameter of the active run; returns ``value``."""
    _client().log_batch(_run_id_or_start(), params=[Param(key, value)], synchronous=synchronous)
    return value


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> None:
    """Log several parameters."""
    batch = [Param(k, v) for k, v in params.items()]
    _client().log_batch(run_id or _run_id_or_start(), params=batch, synchronous=synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set a tag on the active run."""
    _client().log_batch(_run_id_or_start(), tags=[RunTag(key, value)], synchronous=synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> None:
    """Set several tags on the active run."""
    batch = [RunTag(k, v) for k, v in tags.items()]
    _client().log_batch(_run_id_or_start(), tags=batch, synchronous=synchronous)


def delete_tag(key: str) -> None:
    """Remove a tag from the active run."""
    _client().delete_tag(_run_id_or_start(), key)


def log_input(
    dataset: Any,
    context: str | None = None,
    tags: dict[str, str] | None = None,
    model: Any = None,
) -> None:
    """Record a dataset (``runyard.data.from_pandas(...)``) as an input of the active run."""
    entity = dataset.to_entity() if hasattr(dataset, "to_entity") else dataset._to_mlflow_entity()
    input_tags = [InputTag(k, str(v)) for k, v in (tags or {}).items()]
    if context:
        input_tags.append(InputTag("mlflow.data.context", context))
    _client().log_inputs(_run_id_or_start(), [DatasetInput(entity, input_tags)])


# -- artifacts -------------------------------------------------------------------------------
def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The artifact URI of the active run, or of a path inside it."""
    root = _client().get_run(_run_id_or_start()).info.artifact_uri
    return f"{root}/{artifact_path.lstrip('/')}" if artifact_path else root


def log_artifact(
    local_path: str, artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Upload a local file to the active run's artifacts."""
    _client().log_artifact(run_id or _run_id_or_start(), local_path, artifact_path)


def log_artifacts(
    local_dir: str, artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Upload a local directory's contents to the active run's artifacts."""
    _client().log_artifacts(run_id or _run_id_or_start(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Save text as an artifact file."""
    _client().log_text(run_id or _run_id_or_start(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Save a dict as a JSON or YAML artifact file."""
    _client().log_dict(run_id or _run_id_or_start(), dictionary, artifact_file)


def log_figure(
    figure: Any,
    artifact_file: str,
    *,
    save_kwargs: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Save a matplotlib or plotly figure as an artifact."""
    _client().log_figure(
        run_id or _run_id_or_start(), figure, artifact_file, save_kwargs=save_kwargs
    )


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
) -> None:
    """Save an image (numpy array or PIL image) as an artifact."""
    _client().log_image(run_id or _run_id_or_start(), image, artifact_file, key, step, timestamp)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Save a table (dict of columns or DataFrame) as a JSON artifact."""
    _client().log_table(run_id or _run_id_or_start(), data, artifact_file)
