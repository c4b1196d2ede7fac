"""Helpers shared by the client test modules."""

from __future__ import annotations

from typing import Any

import pytest

from runyard import Client
from runyard.exceptions import MlflowException

INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


def expect_error(code: str, func: Any, *args: Any, **kwargs: Any) -> MlflowException:
    """Call ``func``; it must raise an MlflowException with ``error_code == code``."""
    with pytest.raises(MlflowException) as info:
        func(*args, **kwargs)
    assert info.value.error_code == code, info.value
    return info.value


def logged_then_flushed(client: Client, func: Any, *args: Any) -> None:
    """A write refused by the store: at once (sync) or by the next flush (async)."""
    func(*args)
    client.flush()
