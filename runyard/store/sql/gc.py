"""Permanent deletion of soft-deleted runs, experiments and logged models (``runyard gc``).

Soft deletion (``delete_run``, ``delete_experiment``, ``delete_logged_model``) only flips a
lifecycle stage; these operations remove the rows for good. Each object goes in its own short
transaction (a run's metric points in batches of series first), so a long collection never
holds the write lock for long and an interrupted one resumes where it stopped: whatever is left
is still soft-deleted and is found again by the next listing.

Artifacts are not touched here: the caller deletes an object's files first and its rows after
(see ``runyard.cli.gc``), so rows never disappear while their files remain unreachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select, true

from runyard.entities import LifecycleStage
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase, parse_experiment_id

__all__ = ["GcExperiment", "GcLoggedModel", "GcOps", "GcRun"]

#: Metric series whose points are deleted per transaction (a series can hold many points).
SERIES_PER_TRANSACTION = 200
#: Ids per ``IN (...)`` list, well below every database's parameter limit.
_ID_CHUNK = 500


@dataclass(frozen=True)
class GcRun:
    """A run that garbage collection can remove (``deleted_time`` in ms, None if unknown)."""

    run_id: str
    experiment_id: str
    artifact_uri: str | None
    lifecycle_stage: str
    deleted_time: int | None


@dataclass(frozen=True)
class GcExperiment:
    """A deleted experiment; ``last_update_time`` is when it was deleted."""

    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str
    last_update_time: int | None


@dataclass(frozen=True)
class GcLoggedModel:
    """A logged model; ``last_updated_timestamp`` is when it was deleted, if it is."""

    model_id: str
    experiment_id: str
    artifact_location: str
    lifecycle_stage: str
    last_updated_timestamp: int


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _ID_CHUNK] for i in range(0, len(items), _ID_CHUNK)]


def _older(column: Any, cutoff_ms: int | None) -> ColumnElement[bool]:
    """``column < cutoff`` (an unknown time counts as old); no cutoff: always true."""
    if cutoff_ms is None:
        return true()
    return func.coalesce(column, 0) < cutoff_ms


def _run(row: Any) -> GcRun:
    return GcRun(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        artifact_uri=row.artifact_uri,
        lifecycle_stage=row.lifecycle_stage,
        deleted_time=row.deleted_time,
    )


def _experiment(row: Any) -> GcExperiment:
    return GcExperiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location,
        lifecycle_stage=row.lifecycle_stage,
        last_update_time=row.last_update_time,
    )


def _model(row: Any) -> GcLoggedModel:
    return GcLoggedModel(
        model_id=row.model_id,
        experiment_id=str(row.experiment_id),
        artifact_location=row.artifact_location,
        lifecycle_stage=row.lifecycle_stage,
        last_updated_timestamp=row.last_updated_timestamp_ms,
    )


_RUN_COLUMNS = (
    t.runs.c.run_uuid,
    t.runs.c.experiment_id,
    t.runs.c.artifact_uri,
    t.runs.c.lifecycle_stage,
    t.runs.c.deleted_time,
)
_LM = t.logged_models


class GcOps(SqlBase):
    """Listing and permanently deleting soft-deleted objects, for ``runyard gc``."""

    # -- listing --------------------------------------------------------------------------------
    def find_gc_runs(self, run_ids: Sequence[str]) -> dict[str, GcRun]:
        """The runs among ``run_ids`` that exist, whatever their stage, by id."""
        found: dict[str, GcRun] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(run_ids))):
                query = select(*_RUN_COLUMNS).where(t.runs.c.run_uuid.in_(chunk))
                found.update((row.run_uuid, _run(row)) for row in conn.execute(query))
        return found

    def find_gc_experiments(self, experiment_ids: Sequence[str]) -> dict[str, GcExperiment]:
        """The experiments among ``experiment_ids`` that exist, whatever their stage, by id."""
        ids = [parse_experiment_id(e) for e in dict.fromkeys(experiment_ids)]
        found: dict[str, GcExperiment] = {}
        with self._read() as conn:
            for chunk in _chunks(ids):
                query = select(t.experiments).where(t.experiments.c.experiment_id.in_(chunk))
                for row in conn.execute(query):
                    found[str(row.experiment_id)] = _experiment(row)
        return found

    def find_gc_logged_models(self, model_ids: Sequence[str]) -> dict[str, GcLoggedModel]:
        """The logged models among ``model_ids`` that exist, whatever their stage, by id."""
        found: dict[str, GcLoggedModel] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(model_ids))):
                query = select(_LM).where(_LM.c.model_id.in_(chunk))
                found.update((row.model_id, _model(row)) for row in conn.execute(query))
        return found

    def deleted_runs(self, cutoff_ms: int | None = None) -> list[GcRun]:
        """Soft-deleted runs deleted before ``cutoff_ms`` (all of them without a cutoff)."""
        query = (
            select(*_RUN_COLUMNS)
            .where(
                t.runs.c.lifecycle_stage == LifecycleStage.DELETED,
                _older(t.runs.c.deleted_time, cutoff_ms),
            )
            .order_by(t.runs.c.deleted_time, t.runs.c.run_uuid)
        )
        with self._read() as conn:
            return [_run(row) for row in conn.execute(query)]

    def deleted_experiments(self, cutoff_ms: int | None = None) -> list[GcExperiment]:
        """Soft-deleted experiments last updated (deleted) before ``cutoff_ms``."""
        exp = t.experiments.c
        query = (
            select(t.experiments)
            .where(
                exp.lifecycle_stage == LifecycleStage.DELETED,
                _older(exp.last_update_time, cutoff_ms),
            )
            .order_by(exp.experiment_id)
        )
        with self._read() as conn:
            return [_experiment(row) for row in conn.execute(query)]

    def deleted_logged_models(self, cutoff_ms: int | None = None) -> list[GcLoggedModel]:
        """Soft-deleted logged models last updated (deleted) before ``cutoff_ms``."""
        query = (
            select(_LM)
            .where(
                _LM.c.lifecycle_stage == LifecycleStage.DELETED,
                _older(_LM.c.last_updated_timestamp_ms, cutoff_ms),
            )
            .order_by(_LM.c.model_id)
        )
        with self._read() as conn:
            return [_model(row) for row in conn.execute(query)]

    def experiment_gc_contents(self, experiment_id: str) -> tuple[list[GcRun], list[GcLoggedModel]]:
        """Every run and logged model of an experiment, whatever their stage: removing the
        experiment removes them all."""
        exp_id = parse_experiment_id(experiment_id)
        with self._read() as conn:
            runs = conn.execute(
                select(*_RUN_COLUMNS)
                .where(t.runs.c.experiment_id == exp_id)
                .order_by(t.runs.c.run_uuid)
            )
            run_list = [_run(row) for row in runs]
            models = conn.execute(
                select(_LM).where(_LM.c.experiment_id == exp_id).order_by(_LM.c.model_id)
            )
            return run_list, [_model(row) for row in models]

    # -- permanent deletion ---------------------------------------------------------------------
    def hard_delete_run(self, run_id: str) -> bool:
        """Remove a run and every row that belongs to it; False when it was already gone.

        Metric points and tiles go first in batches of series (one transaction each), then the
        run with its params, tags, metric summaries, dataset inputs and logged-model links in one.
        References held elsewhere (a registered model version's ``run_id``, a logged model's
        ``source_run_id``) stay, as in MLflow.
        """
        summaries = t.metric_summaries
        while True:
            with self._write() as conn:
                series = (
                    conn.execute(
                        select(summaries.c.series_id)
                        .where(summaries.c.run_uuid == run_id)
                        .order_by(summaries.c.series_id)
                        .limit(SERIES_PER_TRANSACTION)
                    )
                    .scalars()
                    .all()
                )
                if not series:
                    break
                conn.execute(delete(t.metric_points).where(t.metric_points.c.series_id.in_(series)))
                conn.execute(delete(t.metric_tiles).where(t.metric_tiles.c.series_id.in_(series)))
                conn.execute(delete(summaries).where(summaries.c.series_id.in_(series)))
        with self._write() as conn:
            return _delete_run_rows(conn, run_id)

    def hard_delete_logged_model(self, model_id: str) -> bool:
        """Remove a logged model with its tags, params, metrics and run links; False when it
        was already gone."""
        with self._write() as conn:
            return _delete_model_rows(conn, model_id)

    def hard_delete_experiment(self, experiment_id: str) -> bool:
        """Remove an experiment, its tags, datasets, and any runs and logged models still in it;
        False when it was already gone. Its name is free for a new experiment afterwards."""
        exp_id = parse_experiment_id(experiment_id)
        runs, models = self.experiment_gc_contents(str(exp_id))
        for run in runs:
            self.hard_delete_run(run.run_id)
        for model in models:
            self.hard_delete_logged_model(model.model_id)
        with self._write() as conn:
            inputs = select(t.dataset_inputs.c.input_uuid).where(
                t.dataset_inputs.c.dataset_uuid.in_(
                    select(t.datasets.c.dataset_uuid).where(t.datasets.c.experiment_id == exp_id)
                )
            )
            conn.execute(delete(t.input_tags).where(t.input_tags.c.input_uuid.in_(inputs)))
            conn.execute(delete(t.dataset_inputs).where(t.dataset_inputs.c.input_uuid.in_(inputs)))
            conn.execute(delete(t.datasets).where(t.datasets.c.experiment_id == exp_id))
            conn.execute(
                delete(t.experiment_tags).where(t.experiment_tags.c.experiment_id == exp_id)
            )
            done = conn.execute(
                delete(t.experiments).where(t.experiments.c.experiment_id == exp_id)
            )
            return bool(done.rowcount)


def _delete_run_rows(conn: Connection, run_id: str) -> bool:
    inputs = select(t.dataset_inputs.c.input_uuid).where(t.dataset_inputs.c.run_uuid == run_id)
    series = select(t.metric_summaries.c.series_id).where(t.metric_summaries.c.run_uuid == run_id)
    # Points are normally gone already (batched above); this catches a concurrent late write.
    conn.execute(delete(t.metric_points).where(t.metric_points.c.series_id.in_(series)))
    conn.execute(delete(t.metric_tiles).where(t.metric_tiles.c.series_id.in_(series)))
    for statement in (
        delete(t.metric_summaries).where(t.metric_summaries.c.run_uuid == run_id),
        delete(t.params).where(t.params.c.run_uuid == run_id),
        delete(t.run_tags).where(t.run_tags.c.run_uuid == run_id),
        delete(t.input_tags).where(t.input_tags.c.input_uuid.in_(inputs)),
        delete(t.dataset_inputs).where(t.dataset_inputs.c.run_uuid == run_id),
        delete(t.run_models).where(t.run_models.c.run_uuid == run_id),
    ):
        conn.execute(statement)
    done = conn.execute(delete(t.runs).where(t.runs.c.run_uuid == run_id))
    return bool(done.rowcount)


def _delete_model_rows(conn: Connection, model_id: str) -> bool:
    for table in (
        t.logged_model_metrics,
        t.logged_model_params,
        t.logged_model_tags,
        t.run_models,
    ):
        conn.execute(delete(table).where(table.c.model_id == model_id))
    done = conn.execute(delete(_LM).where(_LM.c.model_id == model_id))
    return bool(done.rowcount)
