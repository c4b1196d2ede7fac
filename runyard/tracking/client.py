"""``runyard.Client`` (alias ``MlflowClient``): the explicit, run-id based tracking API.

Logging calls are validated here, at the call site, then handed to the store: through the
background writer when asynchronous logging is on (the default), directly otherwise. Every read
flushes the writer first, so a client always reads its own writes.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from collections.abc import Sequence
from typing import Any

from runyard.config import ENV, Settings
from runyard.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    FileInfo,
    Metric,
    PagedList,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.artifact import ArtifactRepository, get_artifact_repository
from runyard.store.base import SEARCH_MAX_RESULTS_DEFAULT, TrackingStore
from runyard.tracking import artifact_files
from runyard.tracking.context import current_user
from runyard.tracking.logged_model_client import LoggedModelClientMixin, run_logged_model
from runyard.tracking.registry import get_store, get_writer, resolve_tracking_uri
from runyard.tracking.registry_client import RegistryClientMixin
from runyard.tracking.writer import AsyncWriter
from runyard.utils.time import now_ms
from runyard.utils.validation import validate_key, validate_metric, validated_batch

__all__ = ["Client", "MlflowClient"]


def _configured_registry_uri() -> str | None:
    from runyard.tracking.uri import configured_registry_uri

    return configured_registry_uri()


class Client(RegistryClientMixin, LoggedModelClientMixin):
    """Tracking and registry client bound to one tracking URI (default: the fluent API's).

    Args:
        tracking_uri: ``sqlite:///runyard.db``, ``postgresql://...``, ``http://host:5000``;
            default from ``runyard.set_tracking_uri`` or ``RUNYARD_TRACKING_URI``/
            ``MLFLOW_TRACKING_URI``.
        registry_uri: where registered models live; default ``runyard.set_registry_uri``'s
            value, else the tracking URI.
    """

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        from runyard.tracking.uri import get_tracking_uri

        self._tracking_uri = resolve_tracking_uri(tracking_uri or get_tracking_uri())
        self._registry_uri = resolve_tracking_uri(
            registry_uri or _configured_registry_uri() or self._tracking_uri
        )
        self._settings = Settings.from_env()
        self._store: TrackingStore = get_store(self._tracking_uri)
        self._registry_store = get_store(self._registry_uri)  # type: ignore[assignment]
        self._writer: AsyncWriter = get_writer(self._tracking_uri)

    @property
    def tracking_uri(self) -> str:
        """The tracking URI this client talks to."""
        return self._tracking_uri

    @property
    def store(self) -> TrackingStore:
        """The underlying tracking store."""
        return self._store

    def flush(self) -> None:
        """Write every queued value now; raise if any was refused. While the tracking server is
        unreachable the values stay queued (or spooled) and a warning says so."""
        self._writer.try_flush()

    def _flush_writes(self) -> None:
        self._writer.flush()

    def _sync(self, synchronous: bool | None) -> bool:
        if synchronous is not None:
            return synchronous
        return not self._settings.async_logging

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> str:
        """Create an experiment; returns its id."""
        exp_tags = [ExperimentTag(k, str(v)) for k, v in (tags or {}).items()]
        return self._store.create_experiment(name, artifact_location, exp_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """An experiment by id (deleted ones too)."""
        return self._store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """An experiment by exact name, or None."""
        return self._store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """A page of experiments matching ``filter_string`` (e.g. ``name LIKE 'exp%'``)."""
        return self._store.search_experiments(
            view_type, max_results, filter_string, order_by, page_token
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an active experiment."""
        self._store.rename_experiment(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs."""
        self._writer.flush()
        self._store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment and the runs deleted with it."""
        self._store.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        self._store.set_experiment_tag(str(experiment_id), ExperimentTag(key, str(value)))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment."""
        self._store.delete_experiment_tag(str(experiment_id), key)

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Create a RUNNING run. ``mlflow.user`` defaults to the OS user."""
        all_tags = {"mlflow.user": current_user(), **{k: str(v) for k, v in (tags or {}).items()}}
        run_tags = [RunTag(k, v) for k, v in all_tags.items()]
        return self._store.create_run(
            str(experiment_id),
            all_tags["mlflow.user"],
            start_time if start_time is not None else now_ms(),
            run_tags,
            run_name,
        )

    def get_run(self, run_id: str) -> Run:
        """The run with its latest metrics, params, tags and inputs."""
        self._writer.flush()
        return self._store.get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        """The parent of a nested run, or None."""
        parent_id = self.get_run(run_id).data.tags.get("mlflow.parentRunId")
        return self._store.get_run(parent_id) if parent_id else None

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Change a run's status and/or name."""
        self._writer.flush()
        self._store.update_run_info(run_id, status, None, name)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        """End a run: FINISHED unless another terminal status is given."""
        self._end_run(run_id, status, end_time)
        self._writer.raise_errors()

    def _end_run(self, run_id: str, status: str | None, end_time: int | None = None) -> bool:
        """Write what is queued, then end the run. An unreachable server is waited for at most
        ``RUNYARD_END_RUN_TIMEOUT`` seconds; then the rest and the run's end stay in the spool
        (False). Raises only when the run could not be ended; refused values are raised by the
        next flush."""
        status = status or "FINISHED"
        if not RunStatus.is_terminated(status):
            raise InvalidParameterValue(
                f"Status {status} is not terminal; use FINISHED, FAILED or KILLED."
            )
        return self._writer.terminate_run(
            run_id, status, end_time or now_ms(), ENV.END_RUN_TIMEOUT.get()
        )

    def _raise_write_errors(self) -> None:
        self._writer.raise_errors()

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self._writer.flush()
        self._store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run."""
        self._store.restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """A page of runs of the experiments that match ``filter_string``."""
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [str(experiment_ids)]
        self._writer.flush()
        return self._store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string or None,
            run_view_type,
            max_results,
            order_by,
            page_token,
        )

    # -- logging -----------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        model_id: str | None = None,
        **_ignored: Any,
    ) -> None:
        """Log one metric point (step defaults to 0, timestamp to now); with ``model_id`` (and
        a dataset's name and digest) the point also belongs to that logged model, as in
        MLflow 3."""
        ts = timestamp if timestamp is not None else now_ms()
        step = step or 0
        validate_metric(key, value, ts, step)
        if type(step) is not int or type(ts) is not int:  # numpy integers: store plain ints
            ts, step = int(ts), int(step)
        if model_id is not None or dataset_name is not None or dataset_digest is not None:
            point = Metric(
                key, float(value), ts, step, None, model_id, dataset_name, dataset_digest
            )
            self.log_batch(run_id, metrics=[point], synchronous=synchronous)
            return
        if self._sync(synchronous):
            self._writer.flush()
            self._store.log_batch(run_id, [Metric(key, float(value), ts, step)])
        else:
            self._writer.add_metric(run_id, key, float(value), ts, step)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        """Log a parameter (immutable once set); returns ``value``."""
        self.log_batch(run_id, params=[Param(key, value)], synchronous=synchronous)
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        """Set a run tag (tags can be overwritten)."""
        self.log_batch(run_id, tags=[RunTag(key, value)], synchronous=synchronous)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag."""
        self._writer.flush()
        self._store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        """Log metrics, params and tags together (MLflow's limits: 1000/100/100)."""
        checked_metrics, checked_params, checked_tags = validated_batch(
            metrics, params, tags, self._settings.truncate_long_values
        )
        if self._sync(synchronous):
            self._writer.flush()
            self._store.log_batch(run_id, checked_metrics, checked_params, checked_tags)
        else:
            self._writer.add(run_id, checked_metrics, checked_params, checked_tags)

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[Any] | None = None,
    ) -> None:
        """Record datasets used by the run."""
        self._writer.flush()
        self._store.log_inputs(run_id, list(datasets or []))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged point of a metric, ordered by step."""
        self._writer.flush()
        return list(self._store.get_metric_history(run_id, key))

    # -- artifacts ---------------------------------------------------------------------------
    def _artifact_repo(self, run_id: str) -> ArtifactRepository:
        return get_artifact_repository(
            self._store.get_run(run_id).info.artifact_uri, self._tracking_uri
        )

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a local file (or directory) to the run's artifacts."""
        repo = self._artifact_repo(run_id)
        if os.path.isdir(local_path):
            name = os.path.basename(os.path.normpath(local_path))
            dest = f"{artifact_path}/{name}" if artifact_path else name
            repo.log_artifacts(local_path, dest)
        elif os.path.isfile(local_path):
            repo.log_artifact(local_path, artifact_path)
        else:
            raise InvalidParameterValue(f"No such file or directory: '{local_path}'")

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload a directory's contents to the run's artifacts."""
        if not os.path.isdir(local_dir):
            raise InvalidParameterValue(f"Not a directory: '{local_dir}'")
        self._artifact_repo(run_id).log_artifacts(local_dir, artifact_path)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """Files and directories directly under ``path`` in the run's artifacts."""
        return self._artifact_repo(run_id).list_artifacts(path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Download a run artifact (file or directory); returns the local path.

        MLflow 3 keeps a run's models as logged models outside the run's artifacts; a ``path``
        naming one of them (``"model"``) downloads that model, as MLflow's client does.
        """
        try:
            return self._artifact_repo(run_id).download_artifacts(path, dst_path)
        except ResourceDoesNotExist:
            model = run_logged_model(self, self.get_run(run_id), path)
            if model is None:
                raise
        repo = get_artifact_repository(model.artifact_location, self._tracking_uri)
        dest = os.path.join(dst_path or tempfile.mkdtemp(prefix="runyard-dl-"), path)
        return repo.download_artifacts("", dest)

    def _log_file(self, run_id: str, artifact_file: str, write: Any) -> None:
        directory, name = os.path.split(artifact_file.replace("\\", "/"))
        with tempfile.TemporaryDirectory(prefix="runyard-") as tmp:
            local = os.path.join(tmp, name)
            write(local)
            self._artifact_repo(run_id).log_artifact(local, directory or None)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Save ``text`` as a UTF-8 artifact file."""
        self._log_file(run_id, artifact_file, lambda p: artifact_files.write_text(p, text))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Save a dict as JSON (or YAML for ``.yaml``/``.yml``)."""
        self._log_file(run_id, artifact_file, lambda p: artifact_files.write_dict(p, dictionary))

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Save a matplotlib or plotly figure."""
        self._log_file(
            run_id,
            artifact_file,
            lambda p: artifact_files.write_figure(p, figure, save_kwargs or {}),
        )

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """Save a numpy array or PIL image as PNG (``artifact_file`` or ``images/<key>/...``)."""
        if artifact_file is None:
            if key is None:
                raise InvalidParameterValue("log_image needs either artifact_file or key.")
            validate_key(key, "image key")
            ts = timestamp if timestamp is not None else now_ms()
            safe = key.replace("/", "#")
            artifact_file = f"images/{safe}%step%{step or 0}%timestamp%{ts}.png"
        self._log_file(run_id, artifact_file, lambda p: artifact_files.write_image(p, image))

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Save a dict of columns or a DataFrame as a JSON table; logging again appends rows."""
        repo = self._artifact_repo(run_id)
        existing = None
        if any(
            f.path == artifact_file for f in repo.list_artifacts(posixpath.dirname(artifact_file))
        ):
            with tempfile.TemporaryDirectory(prefix="runyard-") as tmp:
                existing = artifact_files.read_table(repo.download_artifacts(artifact_file, tmp))
        self._log_file(
            run_id, artifact_file, lambda p: artifact_files.write_table(p, data, existing)
        )
        # The UI finds tables through this tag: a JSON list of {"path", "type"} entries.
        logged = json.loads(self.get_run(run_id).data.tags.get("mlflow.loggedArtifacts", "[]"))
        entry = {"path": artifact_file, "type": "table"}
        if entry not in logged:
            logged.append(entry)
            self.set_tag(run_id, "mlflow.loggedArtifacts", json.dumps(logged), synchronous=True)


#: MLflow's name for the client.
MlflowClient = Client
