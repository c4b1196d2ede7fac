"""Schema and params enforcement at predict time (MLflow's rules and messages)."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.models.enforce import (
    enforce_params,
    enforce_schema,
    validate_prediction_input,
    validate_schema,
)
from runyard.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

AB = Schema([ColSpec("long", "a"), ColSpec("double", "b")])


def test_named_columns_are_reordered_and_extras_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runyard.models.enforce"):
        out = enforce_schema(pd.DataFrame({"z": ["x"], "b": [1.5], "a": [1]}), AB)
    assert list(out.columns) == ["a", "b"]
    assert "Found extra inputs" in caplog.text
    assert "'z'" in caplog.text


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(InvalidParameterValue) as info:
        validate_prediction_input(pd.DataFrame({"b": [1.5], "q": [0]}), None, AB, None)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Model is missing inputs ['a']. Note that there were extra inputs: ['q']." in (
        info.value.message
    )
    assert info.value.message.startswith("Failed to enforce schema of data")


def test_object_strings_with_none_pass_unchanged() -> None:
    out = enforce_schema(pd.DataFrame({"s": ["x", None]}), Schema([ColSpec("string", "s")]))
    assert out["s"].tolist()[0] == "x"
    assert pd.isna(out["s"].tolist()[1])


def test_long_to_double_only_for_zero_one_values() -> None:
    # MLflow refuses int64 -> double (precision) except for 0/1 columns.
    schema = Schema([ColSpec("double", "c")])
    assert enforce_schema(pd.DataFrame({"c": [0, 1]}), schema)["c"].dtype == np.float64
    with pytest.raises(RunyardError, match="Can not safely convert int64 to float64"):
        enforce_schema(pd.DataFrame({"c": [1, 2]}), schema)


def test_optional_columns_may_be_absent() -> None:
    schema = Schema([ColSpec("long", "a"), ColSpec("double", "b", required=False)])
    assert list(enforce_schema(pd.DataFrame({"a": [1]}), schema).columns) == ["a"]


@pytest.mark.parametrize(
    ("column", "spec", "dtype"),
    [
        (np.array([1, 2], dtype=np.int32), "long", "int64"),
        (np.array([1, 2], dtype=np.int32), "double", "float64"),
        (np.array([1.5], dtype=np.float32), "double", "float64"),
        (pd.to_datetime(["2020-01-01"]).astype("datetime64[us]"), "datetime", "datetime64[ns]"),
        (np.array([0, 1], dtype=np.int64), "float", "float32"),
    ],
)
def test_safe_widening_is_accepted(column: object, spec: str, dtype: str) -> None:
    out = enforce_schema(pd.DataFrame({"c": column}), Schema([ColSpec(spec, "c")]))
    assert str(out["c"].dtype) == dtype


@pytest.mark.parametrize(
    ("column", "spec", "fragment"),
    [
        ([1.5], "long", "Can not safely convert float64 to int64."),
        ([1.5], "float", "Can not safely convert float64 to float32."),
        (["x"], "double", "Can not safely convert"),
        ([1, 2], "boolean", "Can not safely convert int64 to bool."),
        ([1.0, None], "long", "Hint: the type mismatch is likely caused by missing values."),
    ],
)
def test_mistyped_column_names_column_and_types(
    column: list[object], spec: str, fragment: str
) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        validate_prediction_input(
            pd.DataFrame({"price": column}), None, Schema([ColSpec(spec, "price")]), None
        )
    assert "Incompatible input types for column price." in info.value.message
    assert fragment in info.value.message


def test_inputs_of_every_kind_become_frames() -> None:
    one = Schema([ColSpec("long", "a"), ColSpec("string", "b")])
    assert enforce_schema({"a": 1, "b": "x"}, one).to_dict("list") == {"a": [1], "b": ["x"]}
    assert enforce_schema([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], one).shape == (2, 2)
    assert enforce_schema({"a": np.array([1, 2])}, Schema([ColSpec("long", "a")])).shape == (2, 1)
    assert enforce_schema(pd.Series([1.0], name="a"), Schema([ColSpec("double", "a")])).shape == (
        1,
        1,
    )
    unnamed = Schema([ColSpec("string")])
    assert enforce_schema("hello", unnamed).iloc[0, 0] == "hello"
    assert enforce_schema(["a", "b"], unnamed).shape == (2, 1)
    pair = Schema([ColSpec("double"), ColSpec("double")])
    assert enforce_schema(np.array([[1.0, 2.0]]), pair).shape == (1, 2)
    with pytest.raises(RunyardError, match="The model signature declares 2 inputs"):
        enforce_schema(np.array([[1.0], [2.0]]), pair)


def test_composite_columns() -> None:
    schema = Schema.from_json(
        '[{"type": "array", "items": {"type": "long"}, "name": "a", "required": true}, '
        '{"type": "object", "properties": {"k": {"type": "string", "required": true}}, '
        '"name": "o", "required": true}]'
    )
    out = enforce_schema({"a": [1, 2], "o": {"k": "v"}}, schema)
    assert out.iloc[0]["a"] == [1, 2]
    assert out.iloc[0]["o"] == {"k": "v"}
    with pytest.raises(RunyardError, match="Missing required properties"):
        enforce_schema({"a": [1], "o": {"z": "v"}}, schema)
    with pytest.raises(RunyardError, match="Can not safely convert str to int64"):
        enforce_schema({"a": ["x"], "o": {"k": "v"}}, schema)


def test_tensor_shape_and_dtype_checks() -> None:
    schema = Schema([TensorSpec(np.dtype("float32"), (-1, 3))])
    ok = np.zeros((2, 3), dtype=np.float32)
    assert enforce_schema(ok, schema) is ok
    with pytest.raises(
        RunyardError, match=r"Shape of input \(2, 4\) does not match expected shape \(-1, 3\)"
    ):
        enforce_schema(np.zeros((2, 4), dtype=np.float32), schema)
    with pytest.raises(RunyardError, match=r"Shape of input \(2, 3, 1\)"):
        enforce_schema(np.zeros((2, 3, 1), dtype=np.float32), schema)
    with pytest.raises(
        RunyardError, match="dtype of input float64 does not match expected dtype float32"
    ):
        enforce_schema(np.zeros((2, 3)), schema)
    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}).astype("float32")
    assert enforce_schema(frame, schema).shape == (1, 3)
    with pytest.raises(
        InvalidParameterValue, match="tensor-based model signature with no input names"
    ):
        enforce_schema([[1.0, 2.0, 3.0]], schema)


def test_named_tensors() -> None:
    schema = Schema(
        [TensorSpec(np.dtype("int64"), (-1,), "x"), TensorSpec(np.dtype("float64"), (-1, 2), "y")]
    )
    out = enforce_schema({"x": np.array([1, 2]), "y": np.zeros((2, 2))}, schema)
    assert set(out) == {"x", "y"}
    with pytest.raises(RunyardError, match=r"Model is missing inputs \['y'\]"):
        enforce_schema({"x": np.array([1])}, schema)
    lists = pd.DataFrame({"x": [1, 2], "y": [[1.0, 2.0], [3.0, 4.0]]})
    reshaped = enforce_schema(lists, schema)
    assert reshaped["y"].shape == (2, 2)
    assert reshaped["x"].dtype == np.int64


def test_validate_schema_public_helper() -> None:
    validate_schema(pd.DataFrame({"a": [1], "b": [2.0]}), AB)
    with pytest.raises(RunyardError, match="Model is missing inputs"):
        validate_schema(pd.DataFrame({"a": [1]}), AB)


PARAMS = ParamSchema(
    [
        ParamSpec("k", "long", 1),
        ParamSpec("temperature", "double", 0.5),
        ParamSpec("stops", "string", ["a"], shape=(-1,)),
        ParamSpec("when", "datetime", dt.datetime(2020, 1, 1)),
    ]
)


def test_params_defaults_widening_and_unknown(caplog: pytest.LogCaptureFixture) -> None:
    assert enforce_params(None, PARAMS) == {
        "k": 1,
        "temperature": 0.5,
        "stops": ["a"],
        "when": dt.datetime(2020, 1, 1),
    }
    with caplog.at_level(logging.WARNING, logger="runyard.models.enforce"):
        got = enforce_params({"temperature": 1, "extra": 3, "when": "2021-02-03"}, PARAMS)
    assert got is not None
    assert got["temperature"] == 1.0
    assert isinstance(got["temperature"], float)
    assert got["when"] == dt.date(2021, 2, 3)
    assert "extra" not in got
    assert "Unrecognized params ['extra'] are ignored" in caplog.text


def test_params_type_errors() -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid parameters found") as info:
        enforce_params({"k": "seven"}, PARAMS)
    assert "Can not safely convert" in info.value.message
    with pytest.raises(InvalidParameterValue, match="Invalid parameters found"):
        enforce_params({"k": 1.5}, PARAMS)
    with pytest.raises(InvalidParameterValue, match="1D array"):
        enforce_params({"stops": "a"}, PARAMS)
    with pytest.raises(InvalidParameterValue, match="Parameters must be a dictionary"):
        enforce_params([1], PARAMS)  # type: ignore[arg-type]


def test_params_without_schema_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    assert enforce_params(None, None) is None
    with caplog.at_level(logging.WARNING, logger="runyard.models.enforce"):
        assert enforce_params({"k": 1}, None) == {}
    assert "Ignoring provided params: ['k']" in caplog.text
