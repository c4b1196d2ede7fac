"""Experiment operations of the SQL tracking store."""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import urlparse

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from runyard.entities import Experiment, ExperimentTag, LifecycleStage, PagedList, ViewType
from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from runyard.store.base import SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD
from runyard.store.search.paging import decode_page_token, encode_page_token
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase
from runyard.store.sql.rows import experiment_from_row, load_experiment_tags
from runyard.store.sql.search_sql import select_experiments
from runyard.utils.time import now_ms
from runyard.utils.validation import (
    MAX_EXPERIMENT_TAG_VALUE_LENGTH,
    validate_experiment_name,
    validate_key,
)

__all__ = ["DEFAULT_EXPERIMENT_ID", "ExperimentOps"]

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_ARTIFACT_LOCATION_LENGTH = 2048


def _validate_experiment_tag(tag: ExperimentTag) -> None:
    validate_key(tag.key, "experiment tag")
    if tag.value is not None and len(str(tag.value)) > MAX_EXPERIMENT_TAG_VALUE_LENGTH:
        raise InvalidParameterValue(
            f"Experiment tag '{tag.key}' has a value of {len(str(tag.value))} characters;"
            f" the limit is {MAX_EXPERIMENT_TAG_VALUE_LENGTH}."
        )


def _absolute_location(location: str) -> str:
    """Relative local paths are resolved now, not against whatever directory reads them later."""
    if len(location) > MAX_ARTIFACT_LOCATION_LENGTH:
        raise InvalidParameterValue(
            f"Artifact location is {len(location)} characters long; "
            f"the limit is {MAX_ARTIFACT_LOCATION_LENGTH}."
        )
    scheme = urlparse(location).scheme
    if scheme == "" or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return os.path.abspath(location)
    return location


class ExperimentOps(SqlBase):
    """create/get/search/rename/delete/restore experiments and their tags."""

    _artifact_root: str

    def _artifact_location_for(self, experiment_id: int) -> str:
        return f"{self._artifact_root.rstrip('/')}/{experiment_id}"

    def _ensure_default_experiment(self) -> None:
        with self._write() as conn:
            found = conn.execute(
                select(t.experiments.c.experiment_id).where(
                    t.experiments.c.experiment_id == DEFAULT_EXPERIMENT_ID
                )
            ).first()
            if found is None:
                now = now_ms()
                conn.execute(
                    self._insert(t.experiments)
                    .values(
                        experiment_id=DEFAULT_EXPERIMENT_ID,
                        name=DEFAULT_EXPERIMENT_NAME,
                        artifact_location=self._artifact_location_for(DEFAULT_EXPERIMENT_ID),
                        lifecycle_stage=LifecycleStage.ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .on_conflict_do_nothing()
                )

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        """Create an experiment; names are unique, including deleted experiments'."""
        validate_experiment_name(name)
        for tag in tags:
            _validate_experiment_tag(tag)
        if artifact_location:
            artifact_location = _absolute_location(artifact_location)
        now = now_ms()
        try:
            with self._write() as conn:
                exp_id = conn.execute(
                    t.experiments.insert()
                    .values(
                        name=name,
                        artifact_location=artifact_location,
                        lifecycle_stage=LifecycleStage.ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .returning(t.experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        update(t.experiments)
                        .where(t.experiments.c.experiment_id == exp_id)
                        .values(artifact_location=self._artifact_location_for(exp_id))
                    )
                if tags:
                    conn.execute(
                        t.experiment_tags.insert(),
                        [{"experiment_id": exp_id, "key": g.key, "value": g.value} for g in tags],
                    )
        except IntegrityError:
            raise ResourceAlreadyExists(f"Experiment(name={name}) already exists.") from None
        return str(exp_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment, deleted or not."""
        with self._read() as conn:
            row = self._experiment_row(conn, experiment_id)
            tags = load_experiment_tags(conn, [row.experiment_id])
        return experiment_from_row(row, tags.get(row.experiment_id, {}))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with exactly this name, or None."""
        with self._read() as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
            if row is None:
                return None
            tags = load_experiment_tags(conn, [row.experiment_id])
        return experiment_from_row(row, tags.get(row.experiment_id, {}))

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """A page of experiments; the token is present only when more remain."""
        if not isinstance(max_results, int) or not 0 < max_results <= SEARCH_MAX_RESULTS_THRESHOLD:
            raise InvalidParameterValue(
                "Invalid value for max_results. It must be a positive integer at most "
                f"{SEARCH_MAX_RESULTS_THRESHOLD}, but got {max_results}"
            )
        offset = decode_page_token(page_token)
        query = select_experiments(
            view_type, filter_string, list(order_by or []), offset, max_results + 1
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
            page = rows[:max_results]
            tags = load_experiment_tags(conn, [r.experiment_id for r in page])
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        return PagedList(
            [experiment_from_row(r, tags.get(r.experiment_id, {})) for r in page], token
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an active experiment to an unused name."""
        validate_experiment_name(new_name)
        try:
            with self._write() as conn:
                row = self._experiment_row(conn, experiment_id)
                if row.lifecycle_stage != LifecycleStage.ACTIVE:
                    raise InvalidParameterValue(
                        "Cannot rename a non-active experiment "
                        f"(experiment {experiment_id} is {row.lifecycle_stage})."
                    )
                conn.execute(
                    update(t.experiments)
                    .where(t.experiments.c.experiment_id == row.experiment_id)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except IntegrityError:
            raise ResourceAlreadyExists(f"Experiment(name={new_name}) already exists.") from None

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        now = now_ms()
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage == stage:
                raise InvalidParameterValue(
                    f"Experiment {experiment_id} is already {stage}; nothing to do."
                )
            exp, runs = t.experiments, t.runs.c
            in_exp = runs.experiment_id == row.experiment_id
            if stage == LifecycleStage.DELETED:
                # Runs deleted with their experiment get its deletion time, so a restore brings
                # back exactly those: make that time later than any earlier run deletion, even
                # one in the same millisecond.
                latest = conn.execute(select(func.max(runs.deleted_time)).where(in_exp)).scalar()
                now = max(now, (latest or 0) + 1)
                conn.execute(
                    update(t.runs)
                    .where(in_exp, runs.lifecycle_stage == LifecycleStage.ACTIVE)
                    .values(lifecycle_stage=LifecycleStage.DELETED, deleted_time=now)
                )
            else:
                conn.execute(
                    update(t.runs)
                    .where(in_exp, runs.deleted_time == row.last_update_time)
                    .values(lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
                )
            conn.execute(
                update(exp)
                .where(exp.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=stage, last_update_time=now)
            )

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its active runs; its name stays reserved."""
        self._set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment and the runs deleted with it."""
        self._set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        """Create or replace a tag of an active experiment."""
        _validate_experiment_tag(tag)
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidParameterValue(
                    f"The experiment {experiment_id} must be in the 'active' state. "
                    f"Current state is {row.lifecycle_stage}."
                )
            stmt = self._insert(t.experiment_tags).values(
                experiment_id=row.experiment_id, key=tag.key, value=tag.value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["experiment_id", "key"], set_={"value": stmt.excluded.value}
                )
            )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag; RESOURCE_DOES_NOT_EXIST when the experiment has no such tag."""
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            done = conn.execute(
                delete(t.experiment_tags).where(
                    t.experiment_tags.c.experiment_id == row.experiment_id,
                    t.experiment_tags.c.key == key,
                )
            )
            if done.rowcount == 0:
                raise ResourceDoesNotExist(
                    f"No tag with name: {key} in experiment with id {experiment_id}"
                )
