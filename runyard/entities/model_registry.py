"""The model registry: registered models, their versions, tags, aliases, stages and history.

Field names are MLflow's (``mlflow.entities.model_registry``). Version numbers travel as strings,
as on MLflow's wire; a version's ``status`` is the status name (``"READY"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from runyard.entities.enums import _IntEnumLike
from runyard.errors import InvalidParameterValue

__all__ = [
    "DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS",
    "STAGES",
    "STAGE_ARCHIVED",
    "STAGE_NONE",
    "STAGE_PRODUCTION",
    "STAGE_STAGING",
    "ModelVersion",
    "ModelVersionStatus",
    "ModelVersionTag",
    "RegisteredModel",
    "RegisteredModelAlias",
    "RegisteredModelTag",
    "RegistryEvent",
    "get_canonical_stage",
]

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
#: Every stage a model version can be in, in MLflow's order.
STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
#: The "active" stages: the only ones ``archive_existing_versions`` applies to.
DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS = (STAGE_STAGING, STAGE_PRODUCTION)
_CANONICAL = {stage.lower(): stage for stage in STAGES}


def get_canonical_stage(stage: str) -> str:
    """The stage's canonical spelling (``"staging"`` → ``"Staging"``).

    Raises:
        InvalidParameterValue: With MLflow's message for anything that is not a stage.
    """
    found = _CANONICAL.get(str(stage).lower())
    if found is None:
        raise InvalidParameterValue(
            f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}."
        )
    return found


class ModelVersionStatus(_IntEnumLike):
    """Registration status of a model version; runyard's versions are READY at once."""

    PENDING_REGISTRATION = 1
    FAILED_REGISTRATION = 2
    READY = 3
    _names: ClassVar[dict[str, int]] = {
        "PENDING_REGISTRATION": 1,
        "FAILED_REGISTRATION": 2,
        "READY": 3,
    }

    @staticmethod
    def all_status() -> list[int]:
        """Every status number (MLflow's helper name)."""
        return ModelVersionStatus.all()


@dataclass(frozen=True, slots=True)
class RegisteredModelTag:
    """A key/value tag on a registered model."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ModelVersionTag:
    """A key/value tag on a model version."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RegisteredModelAlias:
    """A named pointer (``champion``) from a registered model to one of its versions."""

    alias: str
    version: str


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One numbered version of a registered model.

    ``source`` is what the version was registered from (``models:/m-...``, ``runs:/...``, a
    URI); the files themselves are at ``get_model_version_download_uri``. ``aliases`` lists the
    aliases that point at this version.
    """

    name: str
    version: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    user_id: str | None = None
    current_stage: str = STAGE_NONE
    source: str | None = None
    run_id: str | None = None
    status: str = "READY"
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_link: str | None = None
    aliases: list[str] = field(default_factory=list)
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model with numbered versions.

    ``latest_versions`` holds the highest version in each stage that has one; ``aliases`` maps
    each alias to the version (a string) it points at.
    """

    name: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One entry of a registered model's append-only history.

    ``action`` is one of ``create_version``, ``delete_version``, ``transition_stage``,
    ``promote``, ``set_alias`` and ``delete_alias``. Stage changes fill ``from_stage`` and
    ``to_stage``; alias changes fill ``alias`` and, when an alias moved, ``previous_version``.
    ``evidence`` holds what a gated promotion was checked against.
    """

    timestamp: int
    user_id: str | None
    action: str
    name: str
    version: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    alias: str | None = None
    previous_version: str | None = None
    evidence: dict[str, Any] | None = None
