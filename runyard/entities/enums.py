"""Enumerations with MLflow's names and numbers: ViewType, RunStatus, LifecycleStage."""

from __future__ import annotations

from typing import ClassVar

from runyard.errors import InvalidParameterValue

__all__ = ["LifecycleStage", "RunStatus", "SourceType", "ViewType"]


class _IntEnumLike:
    """MLflow's enums are classes of int constants with string helpers; so are ours."""

    _names: ClassVar[dict[str, int]] = {}

    @classmethod
    def from_string(cls, name: str) -> int:
        """The number for a name (case-insensitive), or INVALID_PARAMETER_VALUE."""
        try:
            return cls._names[str(name).upper()]
        except KeyError:
            valid = ", ".join(cls._names)
            raise InvalidParameterValue(
                f"Invalid {cls.__name__} '{name}'. Valid values: {valid}"
            ) from None

    @classmethod
    def to_string(cls, value: int) -> str:
        """The name for a number."""
        for name, number in cls._names.items():
            if number == value:
                return name
        raise InvalidParameterValue(f"Invalid {cls.__name__} value {value!r}")

    @classmethod
    def all(cls) -> list[int]:
        """Every value, in declaration order."""
        return list(cls._names.values())


class ViewType(_IntEnumLike):
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3
    _names: ClassVar[dict[str, int]] = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}

    @classmethod
    def from_string(cls, name: str) -> int:
        """Also accepts the CLI spellings ``active_only``, ``deleted_only``, ``all``."""
        return super().from_string(str(name).strip())


class RunStatus(_IntEnumLike):
    """Run status; FINISHED, FAILED and KILLED are terminal."""

    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5
    _names: ClassVar[dict[str, int]] = {
        "RUNNING": 1,
        "SCHEDULED": 2,
        "FINISHED": 3,
        "FAILED": 4,
        "KILLED": 5,
    }

    @staticmethod
    def is_terminated(status: int | str) -> bool:
        """True for FINISHED, FAILED and KILLED (name or number)."""
        if isinstance(status, str):
            status = RunStatus.from_string(status)
        return status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)

    @staticmethod
    def all_status() -> list[int]:
        """Every status number (MLflow's helper name)."""
        return RunStatus.all()


class SourceType(_IntEnumLike):
    """Legacy run source types (kept for the ``mlflow.source.type`` tag)."""

    NOTEBOOK = 1
    JOB = 2
    PROJECT = 3
    LOCAL = 4
    UNKNOWN = 1000
    _names: ClassVar[dict[str, int]] = {
        "NOTEBOOK": 1,
        "JOB": 2,
        "PROJECT": 3,
        "LOCAL": 4,
        "UNKNOWN": 1000,
    }


class LifecycleStage:
    """Lifecycle of experiments and runs: soft-deleted objects stay readable."""

    ACTIVE = "active"
    DELETED = "deleted"

    @staticmethod
    def view_type_to_stages(view_type: int = ViewType.ALL) -> list[str]:
        """The stages a ViewType selects."""
        if view_type == ViewType.ACTIVE_ONLY:
            return [LifecycleStage.ACTIVE]
        if view_type == ViewType.DELETED_ONLY:
            return [LifecycleStage.DELETED]
        return [LifecycleStage.ACTIVE, LifecycleStage.DELETED]

    @staticmethod
    def is_valid(stage: str) -> bool:
        """True for ``active`` and ``deleted``."""
        return stage in (LifecycleStage.ACTIVE, LifecycleStage.DELETED)
