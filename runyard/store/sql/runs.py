"""Run operations of the SQL tracking store (create, read, update, delete, search, inputs)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, update

from runyard.entities import (
    DatasetInput,
    LifecycleStage,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    PagedList,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
    ViewType,
)
from runyard.entities.run import new_metric
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.base import SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD
from runyard.store.search.paging import decode_page_token, encode_page_token
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase, parse_experiment_id
from runyard.store.sql.engine import planned_each_time
from runyard.store.sql.logged_models import link_run_models
from runyard.store.sql.rows import load_inputs, load_runs, metric_value, run_info_from_row
from runyard.store.sql.run_docs import load_run_docs
from runyard.store.sql.search_sql import driving_clause, fetch_run_page, plan_runs
from runyard.store.sql.statements import RUN_COLUMNS, Statements
from runyard.utils.gc_pause import gc_paused
from runyard.utils.names import random_run_name
from runyard.utils.time import now_ms
from runyard.utils.validation import validate_key, validate_run_id, validate_tag_value

__all__ = ["RUN_NAME_TAG", "RunOps"]

RUN_NAME_TAG = "mlflow.runName"
#: Columns of a ``runs`` row at the start of each row of ``Statements.run_read``.
_RUN_WIDTH = len(RUN_COLUMNS)
#: A metric range clause selecting fewer runs than this drives a search on SQLite.
_FEW_RUNS = 1000
_T = TypeVar("_T")
_DATASET_LIMITS = {
    "name": 500,
    "digest": 36,
    "source": 65535,
    "schema": 1048575,
    "profile": 16777215,
}


def _resolve_run_name(run_name: str | None, tags: Sequence[RunTag]) -> str:
    tag_name = next((tag.value for tag in tags if tag.key == RUN_NAME_TAG), None)
    if run_name and tag_name and run_name != tag_name:
        raise InvalidParameterValue(
            f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with "
            f"different values (run_name='{run_name}', {RUN_NAME_TAG}='{tag_name}')."
        )
    return run_name or tag_name or random_run_name()


def _new_run_info(
    run_id: str, exp_id: int, user_id: str, start_time: int, name: str, artifact_uri: str
) -> RunInfo:
    """The info of a run just created (RUNNING, active)."""
    return RunInfo(
        run_id=run_id,
        experiment_id=str(exp_id),
        user_id=user_id,
        status="RUNNING",
        start_time=start_time,
        end_time=None,
        lifecycle_stage=LifecycleStage.ACTIVE,
        artifact_uri=artifact_uri,
        run_name=name,
    )


def _validate_dataset_input(item: DatasetInput) -> None:
    ds = item.dataset
    for field, limit in _DATASET_LIMITS.items():
        value = getattr(ds, field)
        required = field in ("name", "digest", "source")
        if required and not value:
            raise InvalidParameterValue(f"Dataset {field} must be provided.")
        if value is not None and len(value) > limit:
            raise InvalidParameterValue(
                f"Dataset {field} is {len(value)} characters long; the limit is {limit}."
            )
    for tag in item.tags:
        if len(tag.key) > 255 or len(tag.value) > 500:
            raise InvalidParameterValue(
                f"Input tag '{tag.key[:40]}' is too long (key limit 255, value limit 500)."
            )


class RunOps(SqlBase):
    """Runs: lifecycle, tags, search, dataset inputs."""

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag],
        run_name: str | None,
    ) -> Run:
        """Create a RUNNING run; its name is mirrored in the ``mlflow.runName`` tag."""
        name = _resolve_run_name(run_name, tags)
        all_tags = {
            validate_key(tag.key, "tag"): validate_tag_value(tag.key, tag.value) for tag in tags
        }
        all_tags[RUN_NAME_TAG] = name
        run_id = uuid.uuid4().hex
        exp_id = parse_experiment_id(experiment_id)
        if self._sql.create_run_one is not None:
            return self._create_run_one(exp_id, run_id, user_id, start_time, name, all_tags)
        with self._write() as conn:
            exp = self._sql.experiment_state.run(conn, experiment_id=exp_id).fetchone()
            if exp is None:
                raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists")
            _, stage, location = exp
            if stage != LifecycleStage.ACTIVE:
                raise InvalidParameterValue(
                    f"Could not create run under non-active experiment with ID {experiment_id}."
                )
            artifact_uri = f"{(location or '').rstrip('/')}/{run_id}/artifacts"
            info = _new_run_info(run_id, exp_id, user_id, start_time, name, artifact_uri)
            self._sql.insert_run.run(
                conn,
                run_uuid=run_id,
                experiment_id=exp_id,
                name=name,
                user_id=user_id,
                status=info.status,
                start_time=start_time,
                end_time=None,
                lifecycle_stage=info.lifecycle_stage,
                artifact_uri=artifact_uri,
                deleted_time=None,
            )
            self._sql.upsert_tags.run_rows(conn, [(run_id, k, v) for k, v in all_tags.items()])
        return Run(info, RunData(tags=all_tags))

    def _create_run_one(
        self,
        exp_id: int,
        run_id: str,
        user_id: str,
        start_time: int,
        name: str,
        all_tags: dict[str, str],
    ) -> Run:
        """create_run in one statement (PostgreSQL, :mod:`~runyard.store.sql.pg_writes`)."""
        assert self._sql.create_run_one is not None
        with self._autocommit() as conn:
            row = self._sql.create_run_one.run(
                conn,
                experiment_id=exp_id,
                run_uuid=run_id,
                name=name,
                user_id=user_id,
                start_time=start_time,
                keys=list(all_tags),
                tag_values=list(all_tags.values()),
            ).fetchone()
        if row is None:
            raise ResourceDoesNotExist(f"No Experiment with id={exp_id} exists")
        if row[1] is None:
            raise InvalidParameterValue(
                f"Could not create run under non-active experiment with ID {exp_id}."
            )
        info = _new_run_info(run_id, exp_id, user_id, start_time, name, row[1])
        return Run(info, RunData(tags=all_tags))

    def get_run(self, run_id: str) -> Run:
        """The run, deleted or not; RESOURCE_DOES_NOT_EXIST when unknown."""
        validate_run_id(run_id)
        sql = self._sql
        with self._read() as conn:
            # Params, tags, latest metrics, "has dataset inputs?" and the logged models the run
            # used or produced in one statement; on PostgreSQL the run's row too (repeated on
            # each row): one round trip, and the server answers requests between round trips.
            if conn.dialect.name == "postgresql":
                rows = sql.run_read.run(conn, run_uuid=run_id).fetchall()
                if not rows:
                    raise ResourceDoesNotExist(f"Run with id={run_id} not found")
                info = run_info_from_row(rows[0][:_RUN_WIDTH])
                children = [row[_RUN_WIDTH:] for row in rows]
            else:
                info = run_info_from_row(self._run_row(conn, run_id))
                children = sql.run_children.run(conn, run_uuid=run_id).fetchall()
            params: dict[str, str] = {}
            tags: dict[str, str] = {}
            metrics: list[Metric] = []
            has_inputs = False
            model_inputs: list[LoggedModelInput] = []
            model_outputs: list[LoggedModelOutput] = []
            for kind, key, text, num, ts, step, is_nan in children:
                if kind == "p":
                    params[key] = text
                elif kind == "t":
                    tags[key] = text
                elif kind == "m":
                    metrics.append(new_metric(key, metric_value(num, is_nan), ts, step, None))
                elif kind == "r":
                    if text == "input":
                        model_inputs.append(LoggedModelInput(key))
                    else:
                        model_outputs.append(LoggedModelOutput(key, step))
                else:
                    has_inputs = key is not None
            inputs = load_inputs(conn, sql, [run_id]).get(run_id, []) if has_inputs else []
        metric_objs = tuple(metrics)
        data = RunData({m.key: m.value for m in metric_objs}, params, tags, metric_objs)
        model_outputs.sort(key=lambda o: (o.step, o.model_id))
        model_inputs.sort(key=lambda i: i.model_id)
        return Run(info, data, RunInputs(inputs, model_inputs), RunOutputs(model_outputs))

    def update_run_info(
        self, run_id: str, run_status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        """Update status/end time/name; a new name also rewrites the ``mlflow.runName`` tag."""
        status = None
        if run_status is not None:
            status = RunStatus.to_string(RunStatus.from_string(run_status))
        changes = {"status": status, "end_time": end_time, "name": run_name or None}
        # PostgreSQL: one statement that also rewrites the tag (pg_writes); else a transaction.
        one = self._sql.update_run_one
        stmt = one or self._sql.update_active_run
        with self._autocommit() if one else self._write() as conn:
            row = stmt.run(conn, run_uuid=run_id, **changes).fetchone()
            if row is None:
                # Says why: no such run, or not active (else restored meanwhile: again).
                self._check_run_active(conn, run_id)
                row = stmt.run(conn, run_uuid=run_id, **changes).fetchone()
                if row is None:
                    raise ResourceDoesNotExist(f"Run with id={run_id} not found")
            if run_name and one is None:
                self._sql.upsert_tags.run_rows(conn, [(run_id, RUN_NAME_TAG, run_name)])
            return run_info_from_row(row)

    def _set_run_stage(self, run_id: str, stage: str) -> None:
        with self._write() as conn:
            self._run_row(conn, run_id)
            deleted_time = now_ms() if stage == LifecycleStage.DELETED else None
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_uuid == run_id)
                .values(lifecycle_stage=stage, deleted_time=deleted_time)
            )

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run: it stays readable and can be restored."""
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run."""
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag."""
        with self._write() as conn:
            self._check_run_active(conn, run_id)
            done = conn.execute(
                delete(t.run_tags).where(t.run_tags.c.run_uuid == run_id, t.run_tags.c.key == key)
            )
            if done.rowcount == 0:
                raise ResourceDoesNotExist(f"No tag with name: {key} in run with id {run_id}")

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """A page of runs; filtering, ordering and paging all happen in SQL."""
        return self._search(load_runs, experiment_ids, filter_string, run_view_type,
                            max_results, order_by, page_token)  # fmt: skip

    def search_run_docs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[dict[str, Any]]:
        """:meth:`search_runs` as MLflow's JSON ``Run`` messages, built from the rows
        (:mod:`~runyard.store.sql.run_docs`): what the server's ``runs/search`` sends."""
        return self._search(load_run_docs, experiment_ids, filter_string, run_view_type,
                            max_results, order_by, page_token)  # fmt: skip

    def _search(
        self,
        load: Callable[[Connection, Statements, Sequence[Any]], list[_T]],
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[_T]:
        if not isinstance(max_results, int) or not 0 < max_results <= SEARCH_MAX_RESULTS_THRESHOLD:
            raise InvalidParameterValue(
                "Invalid value for max_results. It must be a positive integer at most "
                f"{SEARCH_MAX_RESULTS_THRESHOLD}, but got {max_results}"
            )
        offset = decode_page_token(page_token)
        exp_ids = [parse_experiment_id(e) for e in experiment_ids]
        # A page of 1,000 runs is ~15,000 objects: the collector waits (utils/gc_pause.py).
        with gc_paused(), self._read() as conn:
            driver = None
            if self._engine.dialect.name == "sqlite":
                driver = driving_clause(conn, filter_string, _FEW_RUNS)
            plan = plan_runs(exp_ids, filter_string, run_view_type, list(order_by or []), driver)
            with planned_each_time(conn):
                rows = fetch_run_page(conn, plan, offset, max_results + 1)
            found = load(conn, self._sql, rows[:max_results])
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        return PagedList(found, token)

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[LoggedModelInput] | None = None,
    ) -> None:
        """Record dataset inputs (a dataset is stored once per experiment by name and digest)
        and the logged models the run used."""
        datasets = datasets or ()
        if len(datasets) > 1000:
            raise InvalidParameterValue("At most 1000 datasets can be logged in one call.")
        for item in datasets:
            _validate_dataset_input(item)
        with self._write() as conn:
            experiment_id = self._check_run_active(conn, run_id)
            link_run_models(self, conn, run_id, "input", [(m.model_id, 0) for m in models or ()])
            for item in datasets:
                dataset_uuid = self._upsert_dataset(conn, experiment_id, item)
                input_uuid = uuid.uuid5(uuid.NAMESPACE_OID, f"{run_id}/{dataset_uuid}").hex
                conn.execute(
                    self._insert(t.dataset_inputs)
                    .values(input_uuid=input_uuid, run_uuid=run_id, dataset_uuid=dataset_uuid)
                    .on_conflict_do_nothing()
                )
                if item.tags:
                    stmt = self._insert(t.input_tags)
                    conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["input_uuid", "name"],
                            set_={"value": stmt.excluded.value},
                        ),
                        [
                            {"input_uuid": input_uuid, "name": g.key, "value": g.value}
                            for g in item.tags
                        ],
                    )

    def _upsert_dataset(self, conn: Connection, experiment_id: int, item: DatasetInput) -> str:
        ds = item.dataset
        identity = f"{experiment_id}/{ds.name}/{ds.digest}"
        dataset_uuid = hashlib.md5(identity.encode(), usedforsecurity=False).hexdigest()
        conn.execute(
            self._insert(t.datasets)
            .values(
                dataset_uuid=dataset_uuid,
                experiment_id=experiment_id,
                name=ds.name,
                digest=ds.digest,
                source_type=ds.source_type,
                source=ds.source,
                schema=ds.schema,
                profile=ds.profile,
            )
            .on_conflict_do_nothing()
        )
        return dataset_uuid
