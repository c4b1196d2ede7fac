"""The tracking store interface: narrow, batch-first, implemented by SQL (and later REST).

Business rules that depend on the client (system tags, run names from the environment, fluent
state) live in ``runyard.tracking``; the store enforces what the data must always satisfy:
existence, lifecycle, immutability of params, uniqueness of names, validation limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from runyard.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)

__all__ = [
    "SEARCH_MAX_RESULTS_DEFAULT",
    "SEARCH_MAX_RESULTS_THRESHOLD",
    "CheckedPoints",
    "GroupWriter",
    "RunDocSearch",
    "TrackingStore",
]

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000


class CheckedPoints(list[tuple[str, str, int, int, float, bool]]):
    """Metric points already checked and normalised by the caller:
    ``(run_uuid, key, step, timestamp, value, is_nan)``, NaN as ``(0.0, True)``, ±Inf as ±max
    double. The server decodes log-batch bodies straight into these for a SQL store's
    ``log_checked_batch``: a thousand ``Metric`` objects cost more than writing the points."""


@runtime_checkable
class GroupWriter(Protocol):
    """A store that writes several queued ``log_batch`` calls of one run in one transaction,
    past MLflow's per-request limits: a local database has no request to bound, and one commit
    (and one update of each series' summary and tiles) per ten thousand values instead of per
    thousand is most of the background writer's cost."""

    def log_group(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
    ) -> None:
        """``log_batch`` of checked values without the per-request limits: all or nothing."""
        ...


@runtime_checkable
class RunDocSearch(Protocol):
    """A store that answers run searches as MLflow's JSON ``Run`` messages built from its rows,
    without entities in between (the server's ``runs/search``)."""

    def search_run_docs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ...,
        max_results: int = ...,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[dict[str, Any]]:
        """``search_runs`` whose runs are ``runyard.protocol.codec.run_to_json`` documents."""
        ...


class TrackingStore(Protocol):
    """What a tracking backend implements."""

    # -- experiments ------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        """Create an experiment and return its id."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment, deleted or not; RESOURCE_DOES_NOT_EXIST when unknown."""
        ...

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this exact name, or None."""
        ...

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """A page of experiments matching the filter."""
        ...

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an active experiment."""
        ...

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs."""
        ...

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo a soft delete, with the runs deleted along with it."""
        ...

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        """Create or replace an experiment tag."""
        ...

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove an experiment tag."""
        ...

    # -- runs -------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag],
        run_name: str | None,
    ) -> Run:
        """Create a RUNNING run in an active experiment."""
        ...

    def get_run(self, run_id: str) -> Run:
        """The run with its latest metrics, params, tags and inputs."""
        ...

    def update_run_info(
        self, run_id: str, run_status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        """Change status, end time and/or name of an active run."""
        ...

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        ...

    def restore_run(self, run_id: str) -> None:
        """Undo a soft delete."""
        ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Write metrics, params and tags of one run in one transaction."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag; RESOURCE_DOES_NOT_EXIST when absent."""
        ...

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[LoggedModelInput] | None = None,
    ) -> None:
        """Record datasets and logged models used by a run."""
        ...

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        """Record logged models a run produced."""
        ...

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """Every point of one metric series, ordered by step then timestamp."""
        ...

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """A page of runs matching the filter, in the requested order."""
        ...

    # -- logged models (MLflow 3) -----------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Sequence[LoggedModelTag] | None = None,
        params: Sequence[LoggedModelParameter] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """Create a PENDING logged model in an active experiment."""
        ...

    def get_logged_model(
        self, model_id: str, allow_deleted: bool = False, include_metrics: bool = True
    ) -> LoggedModel:
        """The logged model; RESOURCE_DOES_NOT_EXIST when unknown or deleted.
        ``include_metrics=False`` lets a store skip loading its metric points (``metrics=[]``)."""
        ...

    def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus | int | str, include_metrics: bool = True
    ) -> LoggedModel:
        """Set a logged model's final status (READY or UPLOAD_FAILED); returns the model
        (``include_metrics=False`` lets a store skip loading its metric points)."""
        ...

    def delete_logged_model(self, model_id: str) -> None:
        """Soft-delete a logged model."""
        ...

    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        """Create or replace tags of a logged model."""
        ...

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag of a logged model."""
        ...

    def log_logged_model_params(
        self, model_id: str, params: Sequence[LoggedModelParameter]
    ) -> None:
        """Record (immutable) params of a logged model."""
        ...

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """A page of logged models of the experiments matching the filter."""
        ...
