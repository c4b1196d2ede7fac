"""Importing a run with its own id, times and history (``runyard sync`` of offline runs).

A run logged offline (``RUNYARD_OFFLINE=1``) already has an id, a start and end time, steps and
timestamps; the server must keep all of them. :meth:`RunImportOps.import_run` creates the run
with the given id or, when it exists in the same experiment, merges into it: status, end time and
name are taken from the import, params must match (the same value again is fine), tags are
upserts, and metric points already stored are not stored twice. Importing one run in chunks, or
twice, therefore leaves it as one import would. A run id that exists in another experiment is
refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from runyard.entities import (
    DatasetInput,
    LifecycleStage,
    Metric,
    Param,
    RunInfo,
    RunStatus,
    RunTag,
)
from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from runyard.store.sql.base import parse_experiment_id
from runyard.store.sql.logging_ops import LoggingOps
from runyard.store.sql.rows import run_info_from_row
from runyard.store.sql.runs import RUN_NAME_TAG, RunOps
from runyard.utils.names import random_run_name
from runyard.utils.validation import validate_run_id

__all__ = ["IMPORT_MAX_METRICS", "IMPORT_MAX_PARAMS", "IMPORT_MAX_TAGS", "RunImportOps"]

#: The most metric points, params and tags one import call takes (a run is sent in chunks).
IMPORT_MAX_METRICS = 50_000
IMPORT_MAX_PARAMS = 10_000
IMPORT_MAX_TAGS = 10_000


def _check_limits(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> None:
    for what, items, limit in (
        ("metric points", metrics, IMPORT_MAX_METRICS),
        ("params", params, IMPORT_MAX_PARAMS),
        ("tags", tags, IMPORT_MAX_TAGS),
    ):
        if len(items) > limit:
            raise InvalidParameterValue(
                f"An import takes at most {limit} {what}, got {len(items)}; send the run in "
                "several chunks."
            )


class RunImportOps(RunOps, LoggingOps):
    """``import_run``: a run with its own id, times, params, tags and metric history."""

    def import_run(
        self,
        experiment_id: str,
        info: RunInfo,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        metrics: Sequence[Metric] = (),
        datasets: Sequence[DatasetInput] = (),
    ) -> tuple[RunInfo, bool]:
        """Create the run ``info.run_id`` in the experiment, or merge into it; returns the stored
        run info and whether the run was created. ``info.artifact_uri`` is ignored: the run's
        artifacts live under its experiment's location here."""
        run_id = validate_run_id(info.run_id)
        status = RunStatus.to_string(RunStatus.from_string(info.status))
        stage = info.lifecycle_stage or LifecycleStage.ACTIVE
        if stage not in (LifecycleStage.ACTIVE, LifecycleStage.DELETED):
            raise InvalidParameterValue(f"Invalid lifecycle stage '{stage}' of run {run_id}.")
        _check_limits(metrics, params, tags)
        exp_id = parse_experiment_id(experiment_id)
        name_tags = [g.value for g in tags if g.key == RUN_NAME_TAG]
        name = info.run_name or (name_tags[-1] if name_tags else None)
        try:
            found = self._import_rows(exp_id, run_id, status, name, info, params, tags, metrics)
        except BaseException:
            self._forget_series(run_id, metrics)
            raise
        created = found is None
        current_stage = LifecycleStage.ACTIVE if found is None else found
        if datasets:
            if current_stage != LifecycleStage.ACTIVE:
                self.restore_run(run_id)
                current_stage = LifecycleStage.ACTIVE
            self.log_inputs(run_id, datasets)
        if stage != current_stage:
            if stage == LifecycleStage.DELETED:
                self.delete_run(run_id)
            else:
                self.restore_run(run_id)
        with self._read() as conn:
            return run_info_from_row(self._run_row(conn, run_id)), created

    def _import_rows(
        self,
        exp_id: int,
        run_id: str,
        status: str,
        name: str | None,
        info: RunInfo,
        params: Sequence[Param],
        tags: Sequence[RunTag],
        metrics: Sequence[Metric],
    ) -> str | None:
        """One transaction: the run row, tags, params and points; returns the lifecycle stage
        the run had (None: it was created)."""
        sql = self._sql
        with self._write() as conn:
            exp = sql.experiment_state.run(conn, experiment_id=exp_id).fetchone()
            if exp is None:
                raise ResourceDoesNotExist(f"No Experiment with id={exp_id} exists")
            if exp[1] != LifecycleStage.ACTIVE:
                raise InvalidParameterValue(
                    f"Could not import run {run_id} into non-active experiment with ID {exp_id}."
                )
            found = sql.run_state.run(conn, run_uuid=run_id).fetchone()
            if found is not None and int(found[1]) != exp_id:
                raise ResourceAlreadyExists(
                    f"Run {run_id} already exists in experiment {found[1]}; it cannot be "
                    f"imported into experiment {exp_id}."
                )
            if found is None:
                name = name or random_run_name()
                sql.insert_run.run(
                    conn,
                    run_uuid=run_id,
                    experiment_id=exp_id,
                    name=name,
                    user_id=info.user_id or "",
                    status=status,
                    start_time=info.start_time,
                    end_time=info.end_time,
                    lifecycle_stage=LifecycleStage.ACTIVE,
                    artifact_uri=f"{(exp[2] or '').rstrip('/')}/{run_id}/artifacts",
                    deleted_time=None,
                )
            else:
                sql.update_run.run(
                    conn, run_uuid=run_id, status=status, end_time=info.end_time, name=name
                )
            all_tags = {g.key: g.value for g in tags}
            if name:
                all_tags[RUN_NAME_TAG] = name
            if all_tags:
                sql.upsert_tags.run_rows(conn, [(run_id, k, v) for k, v in all_tags.items()])
            if params:
                self._insert_params(conn, run_id, params)
            if metrics:
                self._write_points(conn, run_id, metrics, fresh=False)
        return None if found is None else str(found[0])
