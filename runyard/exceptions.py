"""MLflow-compatible exception names (``from runyard.exceptions import MlflowException``)."""

from runyard.errors import (
    InvalidFilter,
    InvalidParameterValue,
    InvalidState,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    RunyardError,
)

#: MLflow's root exception name; the same class as :class:`runyard.errors.RunyardError`.
MlflowException = RunyardError
RestException = RunyardError

__all__ = [
    "InvalidFilter",
    "InvalidParameterValue",
    "InvalidState",
    "MlflowException",
    "PermissionDenied",
    "ResourceAlreadyExists",
    "ResourceDoesNotExist",
    "RestException",
    "RunyardError",
]
