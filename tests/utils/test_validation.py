"""MLflow's validation rules and messages."""

from __future__ import annotations

import numpy as np
import pytest

from runyard.errors import InvalidParameterValue
from runyard.utils import validation as v


@pytest.mark.parametrize(
    "key", ["loss", "a/b", "val loss", "x:y", "m-1.2_b", "a" * 250, "über", "数字"]
)
def test_valid_keys(key: str) -> None:
    assert v.validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("bad!", "Names may only contain alphanumerics"),
        ("", "Names may only contain"),
        ("a//b", "normalized paths"),
        ("./a", "normalized paths"),
        ("../x", "normalized paths"),
        ("/abs", "normalized paths"),
        (".", "normalized paths"),
        ("a" * 251, "the limit is 250"),
        (5, "Names must be strings"),
    ],
)
def test_invalid_keys(key: object, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        v.validate_key(key, "param")


@pytest.mark.parametrize(
    "value", [1, 1.5, np.float32(2.5), np.int64(3), float("nan"), float("inf")]
)
def test_metric_values_accepted(value: object) -> None:
    v.validate_metric("m", value, 0, 0)


@pytest.mark.parametrize(
    ("value", "ts", "step", "message"),
    [
        (True, 0, 0, "booleans are not metrics"),
        ("abc", 0, 0, "valid double"),
        (None, 0, 0, "valid double"),
        (1.0, -1, 0, "nonnegative"),
        (1.0, 1.5, 0, "Timestamp must be"),
        (1.0, 0, "1", "Step must be"),
        (1.0, 0, True, "Step must be"),
    ],
)
def test_metric_errors(value: object, ts: object, step: object, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        v.validate_metric("m", value, ts, step)


def test_numpy_integer_steps_are_fine() -> None:
    v.validate_metric("m", 1.0, np.int64(5), np.int32(3))


def test_value_lengths_truncate_or_raise() -> None:
    assert v.validate_param_value("p", "x" * 7000) == "x" * 6000
    assert v.validate_tag_value("t", "x" * 9000) == "x" * 8000
    assert v.validate_param_value("p", 12) == "12"
    with pytest.raises(InvalidParameterValue, match="the limit is 6000"):
        v.validate_param_value("p", "x" * 6001, truncate=False)
    with pytest.raises(InvalidParameterValue, match="the limit is 8000"):
        v.validate_tag_value("t", "x" * 8001, truncate=False)


def test_sanitize_metric_value() -> None:
    assert v.sanitize_metric_value(float("nan")) == (True, 0.0)
    assert v.sanitize_metric_value(float("inf")) == (False, v.MAX_DOUBLE)
    assert v.sanitize_metric_value(float("-inf")) == (False, -v.MAX_DOUBLE)
    assert v.sanitize_metric_value(0.5) == (False, 0.5)


@pytest.mark.parametrize("run_id", ["", "-abc", "a/b", "x" * 300, None])
def test_invalid_run_ids(run_id: object) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid run ID"):
        v.validate_run_id(run_id)


@pytest.mark.parametrize("key", [{}, [], {"a": 1}, ["loss"]])
def test_unhashable_keys_are_refused(key: object) -> None:
    """Found by the API fuzz run: a JSON object sent as a key (runs/import) raised TypeError
    from the known-keys cache, a 500."""
    with pytest.raises(InvalidParameterValue, match="Names must be strings"):
        v.validate_key(key, "tag")
    with pytest.raises(InvalidParameterValue, match="Names must be strings"):
        v.validate_metric(key, 1.0, 0, 0)  # type: ignore[arg-type]
