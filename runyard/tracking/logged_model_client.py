"""The logged-model half of ``runyard.Client`` (MLflow 3's LoggedModel API)."""

from __future__ import annotations

from typing import Any

from runyard.entities import (
    LoggedModel,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelTag,
    PagedList,
    Run,
)
from runyard.store.base import TrackingStore

__all__ = ["LoggedModelClientMixin", "run_logged_model"]


class LoggedModelClientMixin:
    """create/get/finalize/search logged models and link them to runs (mixed into ``Client``)."""

    _store: TrackingStore

    def _flush_writes(self) -> None:
        """Overridden by Client: write queued values before a read."""

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model in ``experiment_id`` (files go to its artifact location)."""
        return self._store.create_logged_model(
            str(experiment_id),
            name,
            source_run_id,
            [LoggedModelTag(k, str(v)) for k, v in (tags or {}).items()],
            [LoggedModelParameter(k, str(v)) for k, v in (params or {}).items()],
            model_type,
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """The logged model ``m-...``."""
        self._flush_writes()
        return self._store.get_logged_model(model_id)

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        """Mark a logged model READY (files uploaded) or UPLOAD_FAILED."""
        return self._store.finalize_logged_model(model_id, status)

    def delete_logged_model(self, model_id: str) -> None:
        """Soft-delete a logged model."""
        self._store.delete_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        """Create or replace tags on a logged model."""
        self._store.set_logged_model_tags(
            model_id, [LoggedModelTag(k, str(v)) for k, v in tags.items()]
        )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag from a logged model."""
        self._store.delete_logged_model_tag(model_id, key)

    def log_model_params(self, model_id: str, params: dict[str, Any]) -> None:
        """Record parameters of a logged model."""
        self._store.log_logged_model_params(
            model_id, [LoggedModelParameter(k, str(v)) for k, v in params.items()]
        )

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """A page of logged models of the experiments matching ``filter_string``."""
        self._flush_writes()
        return self._store.search_logged_models(
            [str(e) for e in experiment_ids],
            filter_string,
            datasets,
            max_results,
            order_by,
            page_token,
        )

    def log_outputs(self, run_id: str, models: list[LoggedModelOutput]) -> None:
        """Record that a run produced these logged models."""
        self._store.log_outputs(run_id, models)


def run_logged_model(client: LoggedModelClientMixin, run: Run, name: str) -> LoggedModel | None:
    """The logged model ``name`` produced by ``run`` (newest if several), or None.

    MLflow 3 keeps a run's models outside the run's artifacts, yet ``runs:/<run>/<name>`` and
    ``download_artifacts(run_id, "<name>")`` still name them; this is the lookup both use.
    """
    name = name.strip("/")
    if not name or "'" in name:  # not a model name the filter grammar can quote
        return None
    found = client.search_logged_models(
        [run.info.experiment_id],
        f"name = '{name}' AND source_run_id = '{run.info.run_id}'",
        max_results=1,
    )
    return found[0] if len(found) else None
