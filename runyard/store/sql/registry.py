"""Model registry operations of the SQL store (MLflow's model-registry store API).

Registered models are keyed by an integer ``model_key``, so a rename updates one row. Version
numbers come from ``registered_models.last_version``, incremented in the same write transaction
that inserts the version, so two concurrent registrations get different numbers and a deleted
number is never handed out again. Deleting a version removes its row, tags and aliases.

Every change to what a model serves (a version created or deleted, a stage transition, an alias
set, moved or removed) appends a ``registry_events`` row in the transaction that makes it, so the
history can never disagree with the registry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from runyard.entities import (
    ModelVersion,
    ModelVersionTag,
    PagedList,
    RegisteredModel,
    RegisteredModelTag,
    RegistryEvent,
)
from runyard.entities.model_registry import (
    DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS,
    STAGE_ARCHIVED,
    STAGE_NONE,
    STAGES,
    get_canonical_stage,
)
from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from runyard.protocol.requests import missing_parameter
from runyard.store.registry_base import (
    HISTORY_MAX_RESULTS_DEFAULT,
    HISTORY_MAX_RESULTS_THRESHOLD,
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
)
from runyard.store.search.paging import decode_page_token
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase
from runyard.store.sql.registry_search import (
    ALIAS_ACTIONS,
    COLUMN_LIMITS,
    STAGE_ACTIONS,
    check_action,
    check_max_results,
    check_model_name,
    check_widths,
    event_from_row,
    load_latest_versions,
    load_model_versions,
    load_registered_models,
    page_of,
    parse_version,
    select_model_versions,
    select_registered_models,
    unique_tags,
    validate_alias,
    validate_new_model_name,
    validate_registry_tag,
    version_select,
)
from runyard.utils.time import now_ms
from runyard.utils.validation import validate_key

__all__ = ["RegistryOps"]

rm = t.registered_models
mv = t.model_versions


class RegistryOps(SqlBase):
    """Registered models, model versions, tags, stages, aliases and their history."""

    # -- lookups inside a transaction -------------------------------------------------------
    @staticmethod
    def _registered_row(conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(select(rm).where(rm.c.name == check_model_name(name))).first()
        if row is None:
            raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
        return row

    @staticmethod
    def _mv_row(conn: Connection, name: str, version: object) -> Row[Any]:
        number = parse_version(version)
        row = conn.execute(
            version_select().where(rm.c.name == check_model_name(name), mv.c.version == number)
        ).first()
        if row is None:
            raise ResourceDoesNotExist(f"Model Version (name={name}, version={number}) not found")
        return row

    @staticmethod
    def _load_mv(conn: Connection, model_key: int, version: int) -> ModelVersion:
        rows = conn.execute(
            version_select().where(mv.c.model_key == model_key, mv.c.version == version)
        ).all()
        return load_model_versions(conn, rows)[0]

    @staticmethod
    def _touch_registry(
        conn: Connection, model_key: int, now: int, version: int | None = None
    ) -> None:
        """Bump the last-updated time of the model, or of one of its versions."""
        if version is None:
            conn.execute(
                update(rm).where(rm.c.model_key == model_key).values(last_updated_time=now)
            )
        else:
            conn.execute(
                update(mv)
                .where(mv.c.model_key == model_key, mv.c.version == version)
                .values(last_updated_time=now)
            )

    @staticmethod
    def _record_event(
        conn: Connection,
        model_key: int,
        action: str,
        now: int,
        user_id: str | None,
        **fields: Any,
    ) -> None:
        """Append one history event (in the caller's transaction)."""
        check_widths(user_id=user_id)
        evidence = fields.pop("evidence", None)
        conn.execute(
            t.registry_events.insert().values(
                model_key=model_key,
                timestamp=now,
                user_id=user_id,
                action=action,
                evidence=None if evidence is None else json.dumps(evidence, default=str),
                **fields,
            )
        )

    # -- registered models ------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: Sequence[RegisteredModelTag] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model; RESOURCE_ALREADY_EXISTS when the name is taken."""
        validate_new_model_name(name)
        tag_values = unique_tags(tags, "registered model tag")
        now = now_ms()
        try:
            with self._write() as conn:
                key = conn.execute(
                    rm.insert()
                    .values(
                        name=name,
                        creation_time=now,
                        last_updated_time=now,
                        description=description,
                        last_version=0,
                    )
                    .returning(rm.c.model_key)
                ).scalar_one()
                if tag_values:
                    conn.execute(
                        t.registered_model_tags.insert(),
                        [{"model_key": key, "key": k, "value": v} for k, v in tag_values.items()],
                    )
        except IntegrityError:
            raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.") from None
        return RegisteredModel(
            name=name,
            creation_timestamp=now,
            last_updated_timestamp=now,
            description=description,
            tags=tag_values,
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its latest version per stage, tags and aliases."""
        with self._read() as conn:
            return load_registered_models(conn, [self._registered_row(conn, name)])[0]

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Replace the description."""
        with self._write() as conn:
            key = self._registered_row(conn, name).model_key
            conn.execute(
                update(rm)
                .where(rm.c.model_key == key)
                .values(description=description, last_updated_time=now_ms())
            )
            return load_registered_models(conn, [self._registered_row(conn, name)])[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename; versions, tags, aliases and history follow (one row changes)."""
        validate_new_model_name(new_name, "new_name")
        try:
            with self._write() as conn:
                key = self._registered_row(conn, name).model_key
                conn.execute(
                    update(rm)
                    .where(rm.c.model_key == key)
                    .values(name=new_name, last_updated_time=now_ms())
                )
                return load_registered_models(conn, [self._registered_row(conn, new_name)])[0]
        except IntegrityError:
            raise ResourceAlreadyExists(
                f"Registered Model (name={new_name}) already exists."
            ) from None

    def delete_registered_model(self, name: str) -> None:
        """Delete the model with its versions, tags, aliases and history."""
        with self._write() as conn:
            key = self._registered_row(conn, name).model_key
            # Children first: correct even on a connection without foreign-key enforcement.
            for table in (
                t.registered_model_aliases,
                t.model_version_tags,
                t.model_versions,
                t.registered_model_tags,
                t.registry_events,
            ):
                conn.execute(delete(table).where(table.c.model_key == key))
            conn.execute(delete(rm).where(rm.c.model_key == key))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """A page of registered models matching the filter (prompts left out unless asked)."""
        check_max_results(max_results, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD)
        offset = decode_page_token(page_token)
        query = select_registered_models(filter_string, order_by, offset, max_results + 1)
        with self._read() as conn:
            page, token = page_of(conn.execute(query).all(), offset, max_results)
            return PagedList(load_registered_models(conn, page), token)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The highest version in each of ``stages`` (every stage when empty or None)."""
        wanted = {get_canonical_stage(s) for s in stages} if stages else set(STAGES)
        with self._read() as conn:
            key = self._registered_row(conn, name).model_key
            latest = load_latest_versions(conn, [key]).get(key, [])
        return [v for v in latest if v.current_stage in wanted]

    def set_registered_model_tag(self, name: str, tag: RegisteredModelTag) -> None:
        """Create or replace a tag."""
        value = validate_registry_tag("registered model tag", tag.key, tag.value)
        now = now_ms()
        with self._write() as conn:
            key = self._registered_row(conn, name).model_key
            stmt = self._insert(t.registered_model_tags).values(
                model_key=key, key=tag.key, value=value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_key", "key"], set_={"value": stmt.excluded.value}
                )
            )
            self._touch_registry(conn, key, now)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag; as in MLflow, a tag that is not there is not an error."""
        validate_key(key, "registered model tag")
        with self._write() as conn:
            model_key = self._registered_row(conn, name).model_key
            tags = t.registered_model_tags
            done = conn.execute(
                delete(tags).where(tags.c.model_key == model_key, tags.c.key == key)
            )
            if done.rowcount:
                self._touch_registry(conn, model_key, now_ms())

    # -- model versions ---------------------------------------------------------------------
    def _mv_storage_location(
        self, conn: Connection, source: str, run_id: str | None, model_id: str | None
    ) -> tuple[str, str | None, str | None]:
        """Where a source's files are, with the run and logged model it implies.

        ``models:/<model_id>`` is a logged model (its artifact location; its source run),
        ``models:/<name>/<version>`` and ``models:/<name>@<alias>`` another version (its
        storage location); any other source is its own location.
        """
        if not source.startswith("models:"):
            return source, run_id, model_id
        path = source[len("models:") :].lstrip("/")
        if "/" not in path and "@" not in path and path:
            lm = t.logged_models
            row = conn.execute(
                select(lm.c.artifact_location, lm.c.source_run_id).where(
                    lm.c.model_id == path, lm.c.lifecycle_stage == "active"
                )
            ).first()
            if row is None:
                raise ResourceDoesNotExist(
                    f"Unable to fetch model from model URI source artifact location '{source}'. "
                    f"Error: Logged model with ID '{path}' not found."
                )
            return row.artifact_location, run_id or row.source_run_id, model_id or path
        if "@" in path and "/" not in path:
            model_name, _, alias = path.partition("@")
            found = self._alias_target(conn, model_name, alias)
            referenced = self._mv_row(conn, model_name, found)
        elif path.count("/") == 1 and path.split("/")[1].isdigit():
            model_name, number = path.split("/")
            referenced = self._mv_row(conn, model_name, number)
        else:
            raise InvalidParameterValue(
                f"Unable to fetch model from model URI source artifact location '{source}': "
                "use models:/<model_id>, models:/<name>/<version> or models:/<name>@<alias>."
            )
        location = referenced.storage_location or referenced.source
        return location, run_id or referenced.run_id, model_id or referenced.model_id

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Sequence[ModelVersionTag] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        local_model_path: str | None = None,
        model_id: str | None = None,
        *,
        user_id: str | None = None,
    ) -> ModelVersion:
        """Register ``source`` as the next version of ``name``, READY at once.

        The number is one more than the highest ever given to this model, deleted or not.
        ``local_model_path`` is accepted for MLflow compatibility and unused.
        """
        check_model_name(name)
        if not source:
            raise missing_parameter("source")
        tag_values = unique_tags(tags, "model version tag")
        now = now_ms()
        with self._write() as conn:
            location, run_id, model_id = self._mv_storage_location(conn, source, run_id, model_id)
            check_widths(
                source=source, run_id=run_id, run_link=run_link, user_id=user_id, model_id=model_id
            )
            if len(location) > COLUMN_LIMITS["source"]:
                raise InvalidParameterValue(f"Storage location '{location[:80]}...' is too long.")
            counter = conn.execute(
                update(rm)
                .where(rm.c.name == name)
                .values(last_version=rm.c.last_version + 1, last_updated_time=now)
                .returning(rm.c.model_key, rm.c.last_version)
            ).first()
            if counter is None:
                raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
            key, number = counter
            conn.execute(
                mv.insert().values(
                    model_key=key,
                    version=number,
                    creation_time=now,
                    last_updated_time=now,
                    description=description,
                    user_id=user_id,
                    current_stage=STAGE_NONE,
                    source=source,
                    run_id=run_id,
                    run_link=run_link,
                    status="READY",
                    storage_location=location,
                    model_id=model_id,
                )
            )
            if tag_values:
                conn.execute(
                    t.model_version_tags.insert(),
                    [
                        {"model_key": key, "version": number, "key": k, "value": v}
                        for k, v in tag_values.items()
                    ],
                )
            self._record_event(
                conn, key, "create_version", now, user_id, version=number, to_stage=STAGE_NONE
            )
            return self._load_mv(conn, key, number)

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        """Replace a version's description."""
        with self._write() as conn:
            row = self._mv_row(conn, name, version)
            conn.execute(
                update(mv)
                .where(mv.c.model_key == row.model_key, mv.c.version == row.version)
                .values(description=description, last_updated_time=now_ms())
            )
            return self._load_mv(conn, row.model_key, row.version)

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool,
        *,
        user_id: str | None = None,
        evidence: dict[str, Any] | None = None,
        action: str = "transition_stage",
    ) -> ModelVersion:
        """Move a version to ``stage`` (any case); with ``archive_existing_versions`` the
        other versions in that stage (Staging or Production only) move to Archived.

        Each change is recorded: the version's own with ``action`` (``"promote"`` for a gated
        promotion, with its ``evidence``), each archived version's as ``transition_stage``.
        """
        target = get_canonical_stage(stage)
        check_action(action, STAGE_ACTIONS)
        if archive_existing_versions and target not in DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS:
            raise InvalidParameterValue(
                "Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are "
                f"{list(DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS)}"
            )
        now = now_ms()
        with self._write() as conn:
            row = self._mv_row(conn, name, version)
            key, number = row.model_key, row.version
            conn.execute(
                update(mv)
                .where(mv.c.model_key == key, mv.c.version == number)
                .values(current_stage=target, last_updated_time=now)
            )
            self._record_event(
                conn,
                key,
                action,
                now,
                user_id,
                version=number,
                from_stage=row.current_stage,
                to_stage=target,
                evidence=evidence,
            )
            if archive_existing_versions:
                self._archive_stage(conn, key, number, target, now, user_id)
            self._touch_registry(conn, key, now)
            return self._load_mv(conn, key, number)

    def _archive_stage(
        self, conn: Connection, key: int, keep: int, stage: str, now: int, user_id: str | None
    ) -> None:
        others = conn.execute(
            select(mv.c.version)
            .where(mv.c.model_key == key, mv.c.version != keep, mv.c.current_stage == stage)
            .order_by(mv.c.version)
        ).scalars()
        for other in list(others):
            conn.execute(
                update(mv)
                .where(mv.c.model_key == key, mv.c.version == other)
                .values(current_stage=STAGE_ARCHIVED, last_updated_time=now)
            )
            self._record_event(
                conn,
                key,
                "transition_stage",
                now,
                user_id,
                version=other,
                from_stage=stage,
                to_stage=STAGE_ARCHIVED,
            )

    def delete_model_version(
        self, name: str, version: int | str, *, user_id: str | None = None
    ) -> None:
        """Delete a version with its tags and the aliases pointing at it (each recorded)."""
        now = now_ms()
        with self._write() as conn:
            row = self._mv_row(conn, name, version)
            key, number = row.model_key, row.version
            aliases = t.registered_model_aliases
            dropped = conn.execute(
                select(aliases.c.alias)
                .where(aliases.c.model_key == key, aliases.c.version == number)
                .order_by(aliases.c.alias)
            ).scalars()
            for alias in list(dropped):
                self._record_event(
                    conn, key, "delete_alias", now, user_id, version=number, alias=alias
                )
            self._record_event(
                conn,
                key,
                "delete_version",
                now,
                user_id,
                version=number,
                from_stage=row.current_stage,
            )
            for table in (aliases, t.model_version_tags, mv):
                conn.execute(
                    delete(table).where(table.c.model_key == key, table.c.version == number)
                )
            self._touch_registry(conn, key, now)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version, with its tags and aliases."""
        with self._read() as conn:
            return load_model_versions(conn, [self._mv_row(conn, name, version)])[0]

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """The resolved storage location (a logged model's artifact location for
        ``models:/<model_id>`` sources)."""
        with self._read() as conn:
            row = self._mv_row(conn, name, version)
        return str(row.storage_location or row.source)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """A page of model versions matching the filter (prompt versions left out unless
        asked for)."""
        check_max_results(max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD)
        offset = decode_page_token(page_token)
        query = select_model_versions(filter_string, order_by, offset, max_results + 1)
        with self._read() as conn:
            page, token = page_of(conn.execute(query).all(), offset, max_results)
            return PagedList(load_model_versions(conn, page), token)

    def set_model_version_tag(self, name: str, version: int | str, tag: ModelVersionTag) -> None:
        """Create or replace a version tag."""
        value = validate_registry_tag("model version tag", tag.key, tag.value)
        with self._write() as conn:
            row = self._mv_row(conn, name, version)
            stmt = self._insert(t.model_version_tags).values(
                model_key=row.model_key, version=row.version, key=tag.key, value=value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_key", "version", "key"],
                    set_={"value": stmt.excluded.value},
                )
            )
            self._touch_registry(conn, row.model_key, now_ms(), row.version)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a version tag; a tag that is not there is not an error (MLflow's rule)."""
        validate_key(key, "model version tag")
        with self._write() as conn:
            row = self._mv_row(conn, name, version)
            tags = t.model_version_tags
            done = conn.execute(
                delete(tags).where(
                    tags.c.model_key == row.model_key,
                    tags.c.version == row.version,
                    tags.c.key == key,
                )
            )
            if done.rowcount:
                self._touch_registry(conn, row.model_key, now_ms(), row.version)

    # -- aliases ----------------------------------------------------------------------------
    def _alias_target(self, conn: Connection, name: str, alias: str) -> int:
        key = self._registered_row(conn, name).model_key
        aliases = t.registered_model_aliases
        found = conn.execute(
            select(aliases.c.version).where(aliases.c.model_key == key, aliases.c.alias == alias)
        ).scalar()
        if found is None:
            raise InvalidParameterValue(f"Registered model alias {alias} not found.")
        return int(found)

    def set_registered_model_alias(
        self,
        name: str,
        alias: str,
        version: int | str,
        *,
        user_id: str | None = None,
        evidence: dict[str, Any] | None = None,
        action: str = "set_alias",
    ) -> None:
        """Point ``alias`` at a version; an alias that pointed elsewhere moves atomically and
        the history records the version it left (``previous_version``)."""
        validate_alias(alias)
        check_action(action, ALIAS_ACTIONS)
        number = parse_version(version)
        now = now_ms()
        aliases = t.registered_model_aliases
        with self._write() as conn:
            key = self._registered_row(conn, name).model_key
            self._mv_row(conn, name, number)
            previous = conn.execute(
                select(aliases.c.version).where(
                    aliases.c.model_key == key, aliases.c.alias == alias
                )
            ).scalar()
            stmt = self._insert(aliases).values(model_key=key, alias=alias, version=number)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_key", "alias"], set_={"version": stmt.excluded.version}
                )
            )
            moved = previous is not None and previous != number
            self._record_event(
                conn,
                key,
                action,
                now,
                user_id,
                version=number,
                alias=alias,
                previous_version=previous if moved else None,
                evidence=evidence,
            )
            self._touch_registry(conn, key, now)

    def delete_registered_model_alias(
        self, name: str, alias: str, *, user_id: str | None = None
    ) -> None:
        """Remove an alias (recorded); an alias that is not there is not an error."""
        validate_alias(alias)
        aliases = t.registered_model_aliases
        with self._write() as conn:
            key = self._registered_row(conn, name).model_key
            version = conn.execute(
                select(aliases.c.version).where(
                    aliases.c.model_key == key, aliases.c.alias == alias
                )
            ).scalar()
            if version is None:
                return
            conn.execute(
                delete(aliases).where(aliases.c.model_key == key, aliases.c.alias == alias)
            )
            now = now_ms()
            self._record_event(
                conn, key, "delete_alias", now, user_id, version=version, alias=alias
            )
            self._touch_registry(conn, key, now)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at; INVALID_PARAMETER_VALUE for an unknown alias.

        ``latest`` (any case, reserved for this) is the model's highest version, as in MLflow.
        """
        if isinstance(alias, str) and alias.lower() == "latest":
            with self._read() as conn:
                key = self._registered_row(conn, name).model_key
                number = conn.execute(
                    select(func.max(mv.c.version)).where(mv.c.model_key == key)
                ).scalar()
                if number is None:
                    raise InvalidParameterValue(f"Registered model alias {alias} not found.")
                return self._load_mv(conn, key, number)
        validate_alias(alias)
        with self._read() as conn:
            number = self._alias_target(conn, name, alias)
            return load_model_versions(conn, [self._mv_row(conn, name, number)])[0]

    # -- history ----------------------------------------------------------------------------
    def get_registered_model_history(
        self,
        name: str,
        max_results: int = HISTORY_MAX_RESULTS_DEFAULT,
        page_token: str | None = None,
    ) -> PagedList[RegistryEvent]:
        """The model's recorded changes, oldest first, in pages."""
        check_max_results(max_results, HISTORY_MAX_RESULTS_THRESHOLD)
        offset = decode_page_token(page_token)
        events = t.registry_events
        with self._read() as conn:
            model = self._registered_row(conn, name)
            rows = conn.execute(
                select(events)
                .where(events.c.model_key == model.model_key)
                .order_by(events.c.event_id)
                .offset(offset)
                .limit(max_results + 1)
            ).all()
        page, token = page_of(rows, offset, max_results)
        return PagedList([event_from_row(r, model.name) for r in page], token)
