"""One error hierarchy for all of runyard, carrying MLflow's error codes.

Every error a user can see is a :class:`RunyardError`. Its ``error_code`` is one of MLflow's
``databricks.ErrorCode`` names and decides the HTTP status on the wire, so a server can render any
error as ``{"error_code": ..., "message": ...}`` and a REST client can raise the same class again.

::

    RunyardError (MlflowException)              INTERNAL_ERROR             500
    ├── InvalidParameterValue                   INVALID_PARAMETER_VALUE    400
    │   └── InvalidFilter                        INVALID_PARAMETER_VALUE    400
    ├── ResourceAlreadyExists                   RESOURCE_ALREADY_EXISTS    400
    ├── ResourceDoesNotExist                    RESOURCE_DOES_NOT_EXIST    404
    ├── InvalidState                            INVALID_STATE              500
    └── PermissionDenied                        PERMISSION_DENIED          403

Codes without a subclass (``BAD_REQUEST``, ``NOT_IMPLEMENTED``, ...) are raised as
``RunyardError(message, error_code="...")``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ERROR_CODE_TO_HTTP_STATUS",
    "InvalidFilter",
    "InvalidParameterValue",
    "InvalidState",
    "PermissionDenied",
    "ResourceAlreadyExists",
    "ResourceDoesNotExist",
    "RunyardError",
    "Unauthenticated",
    "error_from_code",
]

ERROR_CODE_TO_HTTP_STATUS: dict[str, int] = {
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
    "IO_ERROR": 500,
    "BAD_REQUEST": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "ENDPOINT_NOT_FOUND": 404,
    "MALFORMED_REQUEST": 400,
    "INVALID_STATE": 500,
    "PERMISSION_DENIED": 403,
    "FEATURE_DISABLED": 501,
    "CUSTOMER_UNAUTHORIZED": 401,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_EXHAUSTED": 429,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 400,
    "NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "NOT_IMPLEMENTED": 501,
    "DEADLINE_EXCEEDED": 504,
    "ABORTED": 409,
    "CANCELLED": 499,
    "UNAVAILABLE": 503,
}


class RunyardError(Exception):
    """Root of every runyard error; ``runyard.exceptions.MlflowException`` is this class."""

    default_code = "INTERNAL_ERROR"

    def __init__(self, message: object, error_code: str | None = None, **kwargs: Any) -> None:
        self.message = str(message)
        code = error_code or self.default_code
        # MLflow accepts either the code's name or its protobuf number; we keep names.
        self.error_code = code if isinstance(code, str) else self.default_code
        self.json_kwargs = kwargs
        super().__init__(self.message)

    def get_http_status_code(self) -> int:
        """The HTTP status MLflow's server answers with for this error code."""
        return ERROR_CODE_TO_HTTP_STATUS.get(self.error_code, 500)

    def serialize_as_json(self) -> dict[str, Any]:
        """The error body on the wire: ``{"error_code": ..., "message": ...}``."""
        return {"error_code": self.error_code, "message": self.message, **self.json_kwargs}

    @classmethod
    def invalid_parameter_value(cls, message: object, **kwargs: Any) -> RunyardError:
        """MLflow's constructor shortcut for an INVALID_PARAMETER_VALUE error."""
        return InvalidParameterValue(message, **kwargs)


class InvalidParameterValue(RunyardError):
    """A value the caller sent is malformed, too long, or not allowed here."""

    default_code = "INVALID_PARAMETER_VALUE"


class InvalidFilter(InvalidParameterValue):
    """A search filter or order-by clause could not be parsed; the message points at the token."""


class ResourceAlreadyExists(RunyardError):
    """Creating something whose name is taken (including by a deleted experiment)."""

    default_code = "RESOURCE_ALREADY_EXISTS"


class ResourceDoesNotExist(RunyardError):
    """The experiment, run, artifact or model asked for does not exist."""

    default_code = "RESOURCE_DOES_NOT_EXIST"


class InvalidState(RunyardError):
    """The operation is not allowed in the resource's current state."""

    default_code = "INVALID_STATE"


class PermissionDenied(RunyardError):
    """The caller may not do this."""

    default_code = "PERMISSION_DENIED"


class Unauthenticated(RunyardError):
    """No credentials, or credentials that do not identify a user (HTTP 401)."""

    default_code = "UNAUTHENTICATED"


_BY_CODE: dict[str, type[RunyardError]] = {
    cls.default_code: cls
    for cls in (
        InvalidParameterValue,
        ResourceAlreadyExists,
        ResourceDoesNotExist,
        InvalidState,
        PermissionDenied,
        Unauthenticated,
    )
}


def error_from_code(error_code: str, message: str) -> RunyardError:
    """Rebuild the most specific error class for a code received over the wire."""
    cls = _BY_CODE.get(error_code, RunyardError)
    return cls(message, error_code=error_code)
