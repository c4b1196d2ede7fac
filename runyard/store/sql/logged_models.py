"""Logged-model operations of the SQL tracking store (MLflow 3 ``LoggedModel`` API).

A logged model (``m-<32 hex>``) lives in an experiment, keeps its files under
``<experiment artifact location>/models/<model_id>/artifacts`` and goes PENDING → READY (or
UPLOAD_FAILED) when the client finalizes it. Deleting one is a soft delete: the row stays, but
reads, searches and writes no longer see it. Runs link to models in ``run_models``: ``output``
for models a run produced (``log_outputs``), ``input`` for models it used (``log_inputs``).
Metric points logged with a ``model_id`` are also kept per model (``logged_model_metrics``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from runyard.entities import (
    LifecycleStage,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelRegistration,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    PagedList,
)
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.base import SEARCH_MAX_RESULTS_THRESHOLD
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase, parse_experiment_id
from runyard.store.sql.logged_model_search import (
    PageToken,
    normalize_datasets,
    normalize_order_by,
    select_logged_models,
)
from runyard.utils.names import random_run_name
from runyard.utils.time import now_ms
from runyard.utils.validation import MAX_DOUBLE, validate_key

__all__ = [
    "MODEL_VERSIONS_TAG",
    "SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT",
    "LoggedModelOps",
    "link_run_models",
    "validate_logged_model_name",
    "write_model_metrics",
]

#: The tag holding a logged model's registrations: JSON ``[{"name": ..., "version": ...}]``.
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT = 50
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")
_MAX_NAME_LENGTH = 500
# Keeps IN (...) lists far below every database's bound-parameter limit.
_CHUNK = 500
_lm = t.logged_models


def validate_logged_model_name(name: str | None) -> None:
    """MLflow's rule: a name is non-empty and free of ``/ : . % " '``."""
    if name is None:
        return
    if not name or any(c in name for c in _BAD_NAME_CHARS):
        raise InvalidParameterValue(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string "
            f"and cannot contain the following characters: {_BAD_NAME_CHARS}"
        )
    if len(name) > _MAX_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Model name is {len(name)} characters long; the limit is {_MAX_NAME_LENGTH}."
        )


def _not_found(model_id: str) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# -- rows to entities ------------------------------------------------------------------------
def _registrations(tags: Mapping[str, str]) -> list[LoggedModelRegistration]:
    """The versions recorded in the ``mlflow.modelVersions`` tag (ignored when malformed)."""
    text = tags.get(MODEL_VERSIONS_TAG)
    if not text:
        return []
    try:
        entries = json.loads(text)
    except ValueError:
        return []
    if not isinstance(entries, list):
        return []
    return [
        LoggedModelRegistration(str(e["name"]), str(e["version"]))
        for e in entries
        if isinstance(e, dict) and "name" in e and "version" in e
    ]


def _model_from_row(
    row: Row[Any], tags: dict[str, str], params: dict[str, str], metrics: list[Metric]
) -> LoggedModel:
    return LoggedModel(
        experiment_id=str(row.experiment_id),
        model_id=row.model_id,
        name=row.name,
        artifact_location=row.artifact_location,
        creation_timestamp=row.creation_timestamp_ms,
        last_updated_timestamp=row.last_updated_timestamp_ms,
        model_type=row.model_type,
        source_run_id=row.source_run_id,
        status=LoggedModelStatus.from_int(row.status),
        status_message=row.status_message,
        tags=tags,
        params=params,
        metrics=metrics,
        registrations=_registrations(tags),
    )


def _load_models(
    conn: Connection, rows: Sequence[Row[Any]], include_metrics: bool = True
) -> list[LoggedModel]:
    """Entities for ``logged_models`` rows: three queries per 500 models, whatever they hold
    (two without the metric points)."""
    ids = [r.model_id for r in rows]
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    params: dict[str, dict[str, str]] = defaultdict(dict)
    metrics: dict[str, list[Metric]] = defaultdict(list)
    lt, lp, lmm = t.logged_model_tags.c, t.logged_model_params.c, t.logged_model_metrics.c
    for chunk in _chunks(ids):
        for model_id, key, value in conn.execute(
            select(lt.model_id, lt.key, lt.value).where(lt.model_id.in_(chunk))
        ):
            tags[model_id][key] = value
        for model_id, key, value in conn.execute(
            select(lp.model_id, lp.key, lp.value).where(lp.model_id.in_(chunk))
        ):
            params[model_id][key] = value
        if not include_metrics:
            continue
        points = conn.execute(
            select(
                lmm.model_id,
                lmm.key,
                lmm.value,
                lmm.is_nan,
                lmm.timestamp,
                lmm.step,
                lmm.run_id,
                lmm.dataset_name,
                lmm.dataset_digest,
            )
            .where(lmm.model_id.in_(chunk))
            .order_by(lmm.model_id, lmm.key, lmm.step, lmm.timestamp)
        )
        for model_id, key, value, is_nan, ts, step, run_id, ds_name, ds_digest in points:
            value = math.nan if is_nan else value
            metrics[model_id].append(
                Metric(key, value, ts, step, run_id, model_id, ds_name, ds_digest)
            )
    return [
        _model_from_row(
            r, tags.get(r.model_id, {}), params.get(r.model_id, {}), metrics.get(r.model_id, [])
        )
        for r in rows
    ]


# -- helpers for runs and logging ------------------------------------------------------------
def _check_models(conn: Connection, model_ids: Iterable[str]) -> None:
    """Raise RESOURCE_DOES_NOT_EXIST unless every model exists and is not deleted."""
    wanted = list(dict.fromkeys(model_ids))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(
            conn.execute(
                select(_lm.c.model_id).where(
                    _lm.c.model_id.in_(chunk), _lm.c.lifecycle_stage == LifecycleStage.ACTIVE
                )
            ).scalars()
        )
    for model_id in wanted:
        if model_id not in found:
            raise _not_found(model_id)


def link_run_models(
    store: SqlBase, conn: Connection, run_id: str, direction: str, links: Sequence[tuple[str, int]]
) -> None:
    """Record ``(model_id, step)`` links of a run (``output`` or ``input``); a repeat moves the
    step. The caller has checked the run."""
    if not links:
        return
    _check_models(conn, (model_id for model_id, _ in links))
    stmt = store._insert(t.run_models)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["run_uuid", "direction", "model_id"], set_={"step": stmt.excluded.step}
        ),
        [
            {"run_uuid": run_id, "model_id": model_id, "direction": direction, "step": step}
            for model_id, step in dict(links).items()
        ],
    )


def _stored_value(value: float) -> tuple[float, bool]:
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (MAX_DOUBLE if value > 0 else -MAX_DOUBLE), False
    return value, False


def write_model_metrics(
    store: SqlBase, conn: Connection, run_id: str, metrics: Sequence[Metric]
) -> None:
    """Also keep points logged with a ``model_id`` under that model (same transaction)."""
    rows = []
    for m in metrics:
        if (m.dataset_name is None) != (m.dataset_digest is None):
            raise InvalidParameterValue(
                "Both dataset_name and dataset_digest must be provided if one is provided "
                f"(metric '{m.key}')."
            )
        value, is_nan = _stored_value(m.value)
        rows.append(
            (m.model_id, m.key, m.timestamp, m.step, run_id, value, is_nan)
            + (m.dataset_name, m.dataset_digest)
        )
    _check_models(conn, {str(r[0]) for r in rows})
    store._sql.upsert_model_metrics.run_rows(conn, rows)


# -- the mixin -------------------------------------------------------------------------------
class LoggedModelOps(SqlBase):
    """create/get/finalize/delete/search logged models, their tags and params; run outputs."""

    def _model_row(self, conn: Connection, model_id: str, allow_deleted: bool = False) -> Any:
        row = conn.execute(select(_lm).where(_lm.c.model_id == str(model_id))).first()
        if row is None or (not allow_deleted and row.lifecycle_stage != LifecycleStage.ACTIVE):
            raise _not_found(model_id)
        return row

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Sequence[LoggedModelTag] | None = None,
        params: Sequence[LoggedModelParameter] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """A new PENDING model in an active experiment (a random name when none is given).

        ``source_run_id``, when given, must name a run of the same experiment.
        """
        validate_logged_model_name(name)
        tag_map = {validate_key(g.key, "tag"): str(g.value) for g in tags or ()}
        param_map = {validate_key(p.key, "param"): str(p.value) for p in params or ()}
        model_id = f"m-{uuid.uuid4().hex}"
        name = name or random_run_name()
        now = now_ms()
        with self._write() as conn:
            exp = self._experiment_row(conn, experiment_id)
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidParameterValue(
                    f"The experiment {experiment_id} must be in the 'active' state. "
                    f"Current state is {exp.lifecycle_stage}."
                )
            if source_run_id:
                found = self._sql.run_state.run(conn, run_uuid=source_run_id).fetchone()
                if found is None:
                    raise ResourceDoesNotExist(f"Run with id={source_run_id} not found")
                run_exp = found[1]
                if int(run_exp) != exp.experiment_id:
                    raise InvalidParameterValue(
                        f"Run '{source_run_id}' belongs to experiment {run_exp}, not to "
                        f"experiment {exp.experiment_id} where the model is created."
                    )
            location = f"{(exp.artifact_location or '').rstrip('/')}/models/{model_id}/artifacts"
            values = {
                "model_id": model_id,
                "experiment_id": exp.experiment_id,
                "name": name,
                "artifact_location": location,
                "creation_timestamp_ms": now,
                "last_updated_timestamp_ms": now,
                "status": LoggedModelStatus.PENDING.to_int(),
                "status_message": None,
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "model_type": model_type or None,
                "source_run_id": source_run_id or None,
            }
            conn.execute(_lm.insert().values(**values))
            for table, items in (
                (t.logged_model_tags, tag_map),
                (t.logged_model_params, param_map),
            ):
                if items:
                    conn.execute(
                        table.insert(),
                        [{"model_id": model_id, "key": k, "value": v} for k, v in items.items()],
                    )
        return LoggedModel(
            experiment_id=str(exp.experiment_id),
            model_id=model_id,
            name=name,
            artifact_location=location,
            creation_timestamp=now,
            last_updated_timestamp=now,
            model_type=model_type or None,
            source_run_id=source_run_id or None,
            status=LoggedModelStatus.PENDING,
            tags=tag_map,
            params=param_map,
            metrics=[],
            registrations=_registrations(tag_map),
        )

    def get_logged_model(
        self, model_id: str, allow_deleted: bool = False, include_metrics: bool = True
    ) -> LoggedModel:
        """The model with its tags, params and metric points (every point logged with its id,
        as MLflow returns them; ``include_metrics=False`` skips them); deleted ones only on
        request."""
        with self._read() as conn:
            row = self._model_row(conn, model_id, allow_deleted)
            return _load_models(conn, [row], include_metrics)[0]

    def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus | int | str, include_metrics: bool = True
    ) -> LoggedModel:
        """Set the status (READY once the files are uploaded, or UPLOAD_FAILED)."""
        number = LoggedModelStatus.parse(status).to_int()
        with self._write() as conn:
            self._model_row(conn, model_id)
            conn.execute(
                update(_lm)
                .where(_lm.c.model_id == model_id)
                .values(status=number, last_updated_timestamp_ms=now_ms())
            )
            return _load_models(conn, [self._model_row(conn, model_id)], include_metrics)[0]

    def delete_logged_model(self, model_id: str) -> None:
        """Soft-delete: the model disappears from reads and searches; its files stay."""
        with self._write() as conn:
            self._model_row(conn, model_id)
            conn.execute(
                update(_lm)
                .where(_lm.c.model_id == model_id)
                .values(lifecycle_stage=LifecycleStage.DELETED, last_updated_timestamp_ms=now_ms())
            )

    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        """Create or replace tags."""
        values = {validate_key(g.key, "tag"): str(g.value) for g in tags}
        with self._write() as conn:
            self._model_row(conn, model_id)
            if not values:
                return
            stmt = self._insert(t.logged_model_tags)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_id", "key"], set_={"value": stmt.excluded.value}
                ),
                [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()],
            )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag; RESOURCE_DOES_NOT_EXIST when the model has no such tag."""
        with self._write() as conn:
            self._model_row(conn, model_id)
            lt = t.logged_model_tags.c
            done = conn.execute(
                delete(t.logged_model_tags).where(lt.model_id == model_id, lt.key == key)
            )
            if done.rowcount == 0:
                raise ResourceDoesNotExist(
                    f"No tag with key {key!r} found for model with ID {model_id!r}."
                )

    def log_logged_model_params(
        self, model_id: str, params: Sequence[LoggedModelParameter]
    ) -> None:
        """Record params; like run params they never change once logged."""
        wanted = {validate_key(p.key, "param"): str(p.value) for p in params}
        with self._write() as conn:
            self._model_row(conn, model_id)
            if not wanted:
                return
            lp = t.logged_model_params.c
            existing = dict(
                conn.execute(
                    select(lp.key, lp.value).where(
                        lp.model_id == model_id, lp.key.in_(list(wanted))
                    )
                ).all()
            )
            changed = [k for k, v in wanted.items() if existing.get(k, v) != v]
            if changed:
                key = changed[0]
                raise InvalidParameterValue(
                    f"Changing param values is not allowed. Param with key='{key}' was already "
                    f"logged with value='{existing[key]}' for model ID='{model_id}'. "
                    f"Attempted logging new value '{wanted[key]}'."
                )
            new = [
                {"model_id": model_id, "key": k, "value": v}
                for k, v in wanted.items()
                if k not in existing
            ]
            if new:
                conn.execute(t.logged_model_params.insert(), new)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """A page of the experiments' active models (newest first by default, 50 a page)."""
        limit = max_results or SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 0 < limit <= (SEARCH_MAX_RESULTS_THRESHOLD)
        ):
            raise InvalidParameterValue(
                "Invalid value for max_results. It must be a positive integer at most "
                f"{SEARCH_MAX_RESULTS_THRESHOLD}, but got {max_results}"
            )
        wanted_datasets = normalize_datasets(datasets)
        ordering = normalize_order_by(order_by)
        request = PageToken(
            [str(e) for e in experiment_ids], filter_string or None, ordering or None, 0
        )
        offset = 0
        if page_token:
            token = PageToken.decode(page_token)
            token.check_matches(request)
            offset = token.offset
        query = select_logged_models(
            [parse_experiment_id(e) for e in experiment_ids],
            filter_string,
            wanted_datasets,
            ordering,
            offset,
            limit + 1,
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
            models = _load_models(conn, rows[:limit])
        more = len(rows) > limit
        next_token = dataclasses.replace(request, offset=offset + limit).encode() if more else None
        return PagedList(models, next_token)

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        """Record the logged models a run produced (an active run; existing models)."""
        with self._write() as conn:
            self._check_run_active(conn, run_id)
            link_run_models(self, conn, run_id, "output", [(m.model_id, m.step) for m in models])
