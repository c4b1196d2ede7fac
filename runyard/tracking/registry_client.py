"""The model-registry half of ``runyard.Client``: MLflow's ``MlflowClient`` registry methods, plus
the registry history and gated promotion (``promote_model_version``).

The registry lives in the store of the registry URI (by default the tracking store). Calls go
straight to the store: registry writes are rare and their callers wait for the answer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from runyard.entities import (
    ModelVersion,
    ModelVersionTag,
    PagedList,
    RegisteredModel,
    RegisteredModelTag,
    RegistryEvent,
)
from runyard.errors import InvalidParameterValue
from runyard.store.registry_base import ModelRegistryStore
from runyard.tracking.context import current_user
from runyard.tracking.promotion import PromotionRefused, check_requirements

__all__ = ["PromotionRefused", "RegistryClientMixin"]

#: Every stage a version can be in, as MLflow lists them.
ALL_STAGES = ["None", "Staging", "Production", "Archived"]


def _version(version: int | str) -> str:
    return str(version)


class RegistryClientMixin:
    """Registered models, versions, stages, aliases and history (mixed into ``Client``)."""

    _registry_store: ModelRegistryStore

    # -- registered models ------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        deployment_job_id: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model; RESOURCE_ALREADY_EXISTS when the name is taken."""
        tag_list = [RegisteredModelTag(k, str(v)) for k, v in (tags or {}).items()]
        return self._registry_store.create_registered_model(name, tag_list, description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The registered model with its latest version per stage, tags and aliases."""
        return self._registry_store.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model; its versions follow."""
        return self._registry_store.rename_registered_model(name, new_name)

    def update_registered_model(
        self, name: str, description: str | None = None, deployment_job_id: str | None = None
    ) -> RegisteredModel:
        """Change the description of a registered model (MLflow's error when nothing is given)."""
        if description is None:
            if deployment_job_id is None:
                raise InvalidParameterValue(
                    "Attempting to update registered model with no new field values."
                )
            return self.get_registered_model(name)  # deployment jobs are not kept here
        return self._registry_store.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions, tags and aliases."""
        self._registry_store.delete_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """A page of registered models matching the filter (``name LIKE 'fraud%'``)."""
        return self._registry_store.search_registered_models(
            filter_string, max_results, order_by, page_token
        )

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage when omitted)."""
        return self._registry_store.get_latest_versions(name, stages)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Create or replace a tag on a registered model."""
        self._registry_store.set_registered_model_tag(name, RegisteredModelTag(key, str(value)))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        self._registry_store.delete_registered_model_tag(name, key)

    # -- model versions ---------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = 300,
        local_model_path: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Register ``source`` (``models:/<model_id>``, ``runs:/<run>/<path>``, an artifact URI)
        as the next version of ``name``."""
        tag_list = [ModelVersionTag(k, str(v)) for k, v in (tags or {}).items()]
        version = self._registry_store.create_model_version(
            name,
            source,
            run_id,
            tag_list,
            run_link,
            description,
            model_id=model_id,
            user_id=current_user(),
        )
        return self._await_ready(version, await_creation_for)

    def _await_ready(self, version: ModelVersion, timeout: int) -> ModelVersion:
        """Versions are READY at once on runyard; another server may make us poll."""
        deadline = time.monotonic() + max(0, timeout)
        while version.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(1)
            version = self.get_model_version(version.name, version.version)
        return version

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version of a registered model."""
        return self._registry_store.get_model_version(name, _version(version))

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        """Change a version's description (MLflow's error when none is given)."""
        if description is None:
            raise InvalidParameterValue(
                "Attempting to update model version with no new field values."
            )
        return self._registry_store.update_model_version(name, _version(version), description)

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version; its number is never handed out again and its aliases go with it."""
        self._registry_store.delete_model_version(name, _version(version), user_id=current_user())

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version to None/Staging/Production/Archived (recorded in the history)."""
        return self._registry_store.transition_model_version_stage(
            name, _version(version), stage, archive_existing_versions, user_id=current_user()
        )

    def get_model_version_stages(self, name: str, version: int | str) -> list[str]:
        """The stages a version can move to (all of them)."""
        return list(ALL_STAGES)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are stored."""
        return self._registry_store.get_model_version_download_uri(name, _version(version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """A page of versions matching the filter (``name = 'fraud'``, ``run_id IN (...)``)."""
        return self._registry_store.search_model_versions(
            filter_string, max_results, order_by, page_token
        )

    def _stage_version(self, name: str, version: int | str | None, stage: str | None) -> str:
        if (version is None) == (stage is None):
            raise InvalidParameterValue("Pass exactly one of version or stage.")
        if version is not None:
            return _version(version)
        latest = self.get_latest_versions(name, [str(stage)])
        if not latest:
            raise InvalidParameterValue(f"No version of model '{name}' is in stage '{stage}'.")
        return latest[0].version

    def set_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Create or replace a tag on a version (chosen by number, or by stage)."""
        if key is None:
            raise InvalidParameterValue("Missing value for required parameter 'key'.")
        number = self._stage_version(name, version, stage)
        self._registry_store.set_model_version_tag(name, number, ModelVersionTag(key, str(value)))

    def delete_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        stage: str | None = None,
    ) -> None:
        """Remove a tag from a version (chosen by number, or by stage)."""
        if key is None:
            raise InvalidParameterValue("Missing value for required parameter 'key'.")
        self._registry_store.delete_model_version_tag(
            name, self._stage_version(name, version, stage), key
        )

    # -- aliases ----------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at a version (moving it atomically if it pointed elsewhere)."""
        self._registry_store.set_registered_model_alias(
            name, alias, _version(version), user_id=current_user()
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self._registry_store.delete_registered_model_alias(name, alias, user_id=current_user())

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return self._registry_store.get_model_version_by_alias(name, alias)

    def copy_model_version(self, src_model_uri: str, dst_name: str) -> ModelVersion:
        """Copy the version ``models:/<name>/<version|stage|latest>`` or ``models:/<name>@<alias>``
        names to a new version of ``dst_name`` (created when needed).

        As in MLflow, the copy's source is ``models:/<name>/<version>`` and its run, logged model,
        tags, run link and description are the original's. Any other model URI is registered
        as ``register_model`` would.
        """
        from urllib.parse import urlparse

        from runyard.models.download import (
            parse_models_uri,
            registered_version,
            resolve_registry_source,
        )

        ref = (
            parse_models_uri(src_model_uri) if urlparse(src_model_uri).scheme == "models" else None
        )
        if ref is None or ref.model_id is not None:
            source, run_id = resolve_registry_source(self, src_model_uri)  # type: ignore[arg-type]
            self._ensure_registered_model(dst_name)
            return self.create_model_version(dst_name, source, run_id)
        name, number = registered_version(self, ref, src_model_uri)  # type: ignore[arg-type]
        src = self.get_model_version(name, number)
        self._ensure_registered_model(dst_name)
        return self.create_model_version(
            dst_name,
            f"models:/{src.name}/{src.version}",
            src.run_id,
            tags=dict(src.tags),
            run_link=src.run_link,
            description=src.description,
            model_id=src.model_id,
        )

    def _ensure_registered_model(self, name: str) -> None:
        from runyard.errors import ResourceAlreadyExists

        with contextlib.suppress(ResourceAlreadyExists):
            self.create_registered_model(name)

    # -- beyond MLflow: history and gated promotion --------------------------------------------
    def get_registered_model_history(
        self, name: str, max_results: int = 1000, page_token: str | None = None
    ) -> PagedList[RegistryEvent]:
        """Every version creation, stage transition, alias move and promotion of ``name``,
        oldest first: who, when, from which version or stage to which."""
        return self._registry_store.get_registered_model_history(name, max_results, page_token)

    def promote_model_version(
        self,
        name: str,
        version: int | str,
        stage: str | None = None,
        alias: str | None = None,
        require: Sequence[str] = (),
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version to ``stage`` or point ``alias`` at it, only if its source run meets
        every condition in ``require`` (search syntax: ``"metrics.auc >= 0.9"``).

        Raises:
            PromotionRefused: naming each failed condition; nothing changes.
        """
        if (stage is None) == (alias is None):
            raise InvalidParameterValue("Promote to exactly one of a stage or an alias.")
        mv = self.get_model_version(name, version)
        evidence = check_requirements(self, mv, list(require))  # type: ignore[arg-type]
        user = current_user()
        if stage is not None:
            return self._registry_store.transition_model_version_stage(
                name,
                mv.version,
                stage,
                archive_existing_versions,
                user_id=user,
                evidence=evidence,
                action="promote",
            )
        assert alias is not None
        self._registry_store.set_registered_model_alias(
            name, alias, mv.version, user_id=user, evidence=evidence, action="promote"
        )
        return self.get_model_version(name, mv.version)
