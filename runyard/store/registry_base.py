"""The model registry store interface, implemented by the SQL store and the REST store.

Method names and signatures are those of MLflow's ``mlflow.store.model_registry.abstract_store``,
plus runyard's history: writes that change what a model serves (version creation and deletion,
stage transitions, alias moves) take an optional ``user_id`` and are recorded, with their time, in
an append-only history read by :meth:`ModelRegistryStore.get_registered_model_history`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from runyard.entities import (
    ModelVersion,
    ModelVersionTag,
    PagedList,
    RegisteredModel,
    RegisteredModelTag,
    RegistryEvent,
)

__all__ = [
    "HISTORY_MAX_RESULTS_DEFAULT",
    "HISTORY_MAX_RESULTS_THRESHOLD",
    "SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT",
    "SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD",
    "SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT",
    "SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD",
    "ModelRegistryStore",
]

SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT = 100
SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD = 1000
SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT = 10000
SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD = 200000
HISTORY_MAX_RESULTS_DEFAULT = 1000
HISTORY_MAX_RESULTS_THRESHOLD = 10000


class ModelRegistryStore(Protocol):
    """What a model registry backend implements. Versions are passed as ``int`` or numeric
    ``str`` and returned as ``str``."""

    # -- registered models ------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: Sequence[RegisteredModelTag] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model; RESOURCE_ALREADY_EXISTS when the name is taken."""
        ...

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Replace the description."""
        ...

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename; the versions, tags, aliases and history follow."""
        ...

    def delete_registered_model(self, name: str) -> None:
        """Delete the model with its versions, tags, aliases and history."""
        ...

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its latest version per stage, tags and aliases."""
        ...

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """A page of registered models matching the filter."""
        ...

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The highest version in each of ``stages`` (every stage when empty or None)."""
        ...

    def set_registered_model_tag(self, name: str, tag: RegisteredModelTag) -> None:
        """Create or replace a tag."""
        ...

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag (nothing happens when the model has no such tag)."""
        ...

    # -- model versions ---------------------------------------------------------------------
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
        """Register ``source`` as the next version of ``name`` (numbers are never reused)."""
        ...

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        """Replace a version's description."""
        ...

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
        """Move a version to a stage, optionally archiving the others in that stage."""
        ...

    def delete_model_version(
        self, name: str, version: int | str, *, user_id: str | None = None
    ) -> None:
        """Delete a version and the aliases pointing at it."""
        ...

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version, with its tags and aliases."""
        ...

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are (the resolved storage location)."""
        ...

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """A page of model versions matching the filter."""
        ...

    def set_model_version_tag(self, name: str, version: int | str, tag: ModelVersionTag) -> None:
        """Create or replace a version tag."""
        ...

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a version tag (nothing happens when there is no such tag)."""
        ...

    # -- aliases ----------------------------------------------------------------------------
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
        """Point ``alias`` at a version, moving it if it pointed elsewhere."""
        ...

    def delete_registered_model_alias(
        self, name: str, alias: str, *, user_id: str | None = None
    ) -> None:
        """Remove an alias (nothing happens when the model has no such alias)."""
        ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        ...

    # -- history ----------------------------------------------------------------------------
    def get_registered_model_history(
        self,
        name: str,
        max_results: int = HISTORY_MAX_RESULTS_DEFAULT,
        page_token: str | None = None,
    ) -> PagedList[RegistryEvent]:
        """The model's recorded changes, oldest first."""
        ...
