"""The error hierarchy: MLflow codes, HTTP statuses, wire shape, compat names."""

from __future__ import annotations

import pytest

from runyard import errors, exceptions


def test_mlflow_exception_is_the_root() -> None:
    assert exceptions.MlflowException is errors.RunyardError
    assert issubclass(errors.InvalidFilter, exceptions.MlflowException)


@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        (errors.InvalidParameterValue, "INVALID_PARAMETER_VALUE", 400),
        (errors.InvalidFilter, "INVALID_PARAMETER_VALUE", 400),
        (errors.ResourceAlreadyExists, "RESOURCE_ALREADY_EXISTS", 400),
        (errors.ResourceDoesNotExist, "RESOURCE_DOES_NOT_EXIST", 404),
        (errors.InvalidState, "INVALID_STATE", 500),
        (errors.PermissionDenied, "PERMISSION_DENIED", 403),
        (errors.RunyardError, "INTERNAL_ERROR", 500),
    ],
)
def test_codes_and_statuses(cls: type[errors.RunyardError], code: str, status: int) -> None:
    err = cls("boom")
    assert err.error_code == code
    assert err.get_http_status_code() == status
    assert err.serialize_as_json() == {"error_code": code, "message": "boom"}
    assert str(err) == "boom"


def test_explicit_code_and_round_trip() -> None:
    err = errors.RunyardError("slow down", error_code="REQUEST_LIMIT_EXCEEDED")
    assert err.get_http_status_code() == 429
    again = errors.error_from_code("RESOURCE_DOES_NOT_EXIST", "gone")
    assert isinstance(again, errors.ResourceDoesNotExist)
    assert again.message == "gone"
    unknown = errors.error_from_code("SOMETHING_NEW", "?")
    assert type(unknown) is errors.RunyardError
    assert unknown.error_code == "SOMETHING_NEW"


def test_mlflow_style_constructor() -> None:
    err = exceptions.MlflowException.invalid_parameter_value("bad")
    assert err.error_code == "INVALID_PARAMETER_VALUE"
