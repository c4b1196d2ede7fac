"""MLflow 3 logged models: a model's identity, status, tags, params and metrics, and the links
between runs and the models they used (inputs) or produced (outputs)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runyard.errors import InvalidParameterValue

if TYPE_CHECKING:  # run.py imports RunOutputs from here: no import of it at runtime
    from runyard.entities.run import Metric

__all__ = [
    "LoggedModel",
    "LoggedModelInput",
    "LoggedModelOutput",
    "LoggedModelParameter",
    "LoggedModelRegistration",
    "LoggedModelStatus",
    "LoggedModelTag",
    "RunOutputs",
]


class LoggedModelStatus(str, enum.Enum):
    """Status of a logged model, as MLflow's ``str`` enum (``READY == "READY"``).

    On the wire and in the database a status is a number (``to_int``) or a proto name
    (``LOGGED_MODEL_READY``, ``proto_name``). ``UPLOAD_FAILED`` is the proto's word for
    ``FAILED`` and an alias of it here.
    """

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"
    UPLOAD_FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    def to_int(self) -> int:
        """The enum number: 0 unspecified, 1 pending, 2 ready, 3 upload failed."""
        return _NUMBERS[self]

    @property
    def proto_name(self) -> str:
        """The proto enum name, e.g. ``LOGGED_MODEL_READY``."""
        return _PROTO_NAMES[self]

    @classmethod
    def from_int(cls, number: int) -> LoggedModelStatus:
        """The status of an enum number."""
        for status, value in _NUMBERS.items():
            if value == number:
                return status
        raise InvalidParameterValue(f"Unknown model status: {number}")

    @classmethod
    def parse(cls, value: object) -> LoggedModelStatus:
        """A status from itself, its number, its name or its proto name (any case)."""
        if isinstance(value, LoggedModelStatus):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.from_int(value)
        if isinstance(value, str):
            text = value.strip().upper()
            if text.isascii() and text.isdigit():  # not "²", which isdigit() also accepts
                return cls.from_int(int(text))
            found = _BY_NAME.get(text.removeprefix("LOGGED_MODEL_"))
            if found is not None:
                return found
        valid = ", ".join(_PROTO_NAMES.values())
        raise InvalidParameterValue(f"Invalid logged model status '{value}'. Valid values: {valid}")

    @staticmethod
    def is_finalized(status: object) -> bool:
        """True for READY and FAILED: no further status change is expected."""
        return status in (LoggedModelStatus.READY, LoggedModelStatus.FAILED)


_NUMBERS = {
    LoggedModelStatus.UNSPECIFIED: 0,
    LoggedModelStatus.PENDING: 1,
    LoggedModelStatus.READY: 2,
    LoggedModelStatus.FAILED: 3,
}
_PROTO_NAMES = {
    LoggedModelStatus.UNSPECIFIED: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModelStatus.READY: "LOGGED_MODEL_READY",
    LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}
_BY_NAME = {
    "STATUS_UNSPECIFIED": LoggedModelStatus.UNSPECIFIED,
    "UNSPECIFIED": LoggedModelStatus.UNSPECIFIED,
    "PENDING": LoggedModelStatus.PENDING,
    "READY": LoggedModelStatus.READY,
    "FAILED": LoggedModelStatus.FAILED,
    "UPLOAD_FAILED": LoggedModelStatus.FAILED,
}


@dataclass(frozen=True, slots=True)
class LoggedModelTag:
    """A mutable key/value tag on a logged model."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class LoggedModelParameter:
    """A parameter of a logged model."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class LoggedModelRegistration:
    """A registered model version made from a logged model."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model logged to an experiment (MLflow 3), ``models:/<model_id>``.

    ``metrics`` holds every metric point logged with this model's id (None when not loaded).
    ``registrations`` lists the registry versions made from it (from its
    ``mlflow.modelVersions`` tag).
    """

    experiment_id: str
    model_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    model_type: str | None = None
    source_run_id: str | None = None
    status: LoggedModelStatus = LoggedModelStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] | None = None
    registrations: list[LoggedModelRegistration] = field(default_factory=list)

    @property
    def model_uri(self) -> str:
        """``models:/<model_id>``, the URI that loads this model."""
        return f"models:/{self.model_id}"


@dataclass(frozen=True, slots=True)
class LoggedModelInput:
    """A logged model a run used."""

    model_id: str


@dataclass(frozen=True, slots=True)
class LoggedModelOutput:
    """A logged model a run produced, at ``step``."""

    model_id: str
    step: int = 0


@dataclass(frozen=True, slots=True)
class RunOutputs:
    """Outputs of a run: the logged models it produced."""

    model_outputs: list[LoggedModelOutput] = field(default_factory=list)
