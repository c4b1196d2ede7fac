"""Signature inference for every input kind; expected JSON is what MLflow 3.17.2 infers."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runyard.errors import InvalidParameterValue
from runyard.models import ModelSignature, infer_signature
from runyard.models.infer import infer_schema
from runyard.types import AnyType, ColSpec, ParamSchema, ParamSpec, Schema


def inputs_of(signature: ModelSignature) -> list[dict[str, Any]]:
    assert signature.inputs is not None
    doc: list[dict[str, Any]] = json.loads(signature.inputs.to_json())
    return doc


def test_dataframe_of_every_column_kind() -> None:
    frame = pd.DataFrame(
        {
            "i": [1, 2],
            "f": [1.5, 2.5],
            "s": ["x", "y"],
            "b": [True, False],
            "i32": np.array([1, 2], dtype=np.int32),
            "f32": np.array([1, 2], dtype=np.float32),
            "t": pd.to_datetime(["2020-01-01", "2020-01-02"]),
            "by": [b"a", b"b"],
            "lst": [[1, 2], [3]],
            "obj": [{"a": 1}, {"a": 2, "b": "x"}],
            "opt": [1.0, None],
        }
    )
    assert inputs_of(infer_signature(frame)) == [
        {"type": "long", "name": "i", "required": True},
        {"type": "double", "name": "f", "required": True},
        {"type": "string", "name": "s", "required": True},
        {"type": "boolean", "name": "b", "required": True},
        {"type": "integer", "name": "i32", "required": True},
        {"type": "float", "name": "f32", "required": True},
        {"type": "datetime", "name": "t", "required": True},
        {"type": "binary", "name": "by", "required": True},
        {"type": "array", "items": {"type": "long"}, "name": "lst", "required": True},
        {
            "type": "object",
            "properties": {
                "a": {"type": "long", "required": True},
                "b": {"type": "string", "required": False},
            },
            "name": "obj",
            "required": True,
        },
        {"type": "double", "name": "opt", "required": False},
    ]


def test_series_ndarray_and_outputs() -> None:
    assert inputs_of(infer_signature(pd.Series([1, 2], name="x"))) == [
        {"type": "long", "name": "x", "required": True}
    ]
    signature = infer_signature(np.zeros((4, 3, 2)), np.array([1, 2]))
    assert signature.to_dict() == {
        "inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3, 2]}}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
        "params": None,
    }
    assert inputs_of(infer_signature(np.array(["a", "bb"]))) == [
        {"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}}
    ]


def test_dict_of_arrays_is_named_tensors() -> None:
    signature = infer_signature({"a": np.zeros((2, 3), dtype=np.int32), "b": np.ones(2)})
    assert inputs_of(signature) == [
        {"name": "a", "type": "tensor", "tensor-spec": {"dtype": "int32", "shape": [-1, 3]}},
        {"name": "b", "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}},
    ]


def test_json_dicts_records_strings_and_scalars() -> None:
    doc = {"q": "hi", "ids": [1, 2], "m": {"k": "v"}, "n": None}
    assert inputs_of(infer_signature(doc)) == [
        {"type": "string", "name": "q", "required": True},
        {"type": "array", "items": {"type": "long"}, "name": "ids", "required": True},
        {
            "type": "object",
            "properties": {"k": {"type": "string", "required": True}},
            "name": "m",
            "required": True,
        },
        {"type": "any", "name": "n", "required": False},
    ]
    assert inputs_of(infer_signature([{"a": 1, "b": "x"}, {"a": 2}])) == [
        {"type": "long", "name": "a", "required": True},
        {"type": "string", "name": "b", "required": False},
    ]
    strings = infer_signature(["a", "b"], ["c"])
    assert strings.to_dict()["inputs"] == '[{"type": "string", "required": true}]'
    assert strings.to_dict()["outputs"] == '[{"type": "string", "required": true}]'
    scalar = infer_signature("text", 1.5)
    assert scalar.to_dict()["outputs"] == '[{"type": "double", "required": true}]'
    assert inputs_of(infer_signature([])) == [{"type": "string", "required": True}]
    nested = infer_signature([{"a": [{"x": 1}], "b": {"c": [1.5]}}])
    assert inputs_of(nested)[0] == {
        "type": "array",
        "items": {"type": "object", "properties": {"x": {"type": "long", "required": True}}},
        "name": "a",
        "required": True,
    }


def test_params_inference() -> None:
    signature = infer_signature(
        pd.DataFrame({"x": [1.0]}),
        params={
            "i": 1,
            "f": 0.5,
            "s": "a",
            "b": True,
            "l": [1, 2],
            "ls": ["a"],
            "d": dt.datetime(2020, 1, 2, 3, 4, 5),
            "o": {"a": 1, "b": [1.0]},
        },
    )
    assert signature.params is not None
    assert json.loads(signature.params.to_json()) == [
        {"name": "i", "default": 1, "shape": None, "type": "long"},
        {"name": "f", "default": 0.5, "shape": None, "type": "double"},
        {"name": "s", "default": "a", "shape": None, "type": "string"},
        {"name": "b", "default": True, "shape": None, "type": "boolean"},
        {"name": "l", "default": [1, 2], "shape": [-1], "type": "long"},
        {"name": "ls", "default": ["a"], "shape": [-1], "type": "string"},
        {"name": "d", "default": "2020-01-02T03:04:05", "shape": None, "type": "datetime"},
        {
            "name": "o",
            "default": {"a": 1, "b": [1.0]},
            "shape": None,
            "type": "object",
            "properties": {
                "a": {"type": "long", "required": True},
                "b": {"type": "array", "items": {"type": "double"}, "required": True},
            },
        },
    ]
    with pytest.raises(InvalidParameterValue, match="Failed to infer schema for parameters"):
        infer_signature(params={"bad": [[1, 2]]})


def test_uninferable_data_becomes_any(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runyard.models.signature"):
        signature = infer_signature(object())
    assert signature.inputs == Schema([ColSpec(AnyType())])
    assert "Failed to infer schema for inputs" in caplog.text
    with pytest.raises(InvalidParameterValue, match="same type"):
        # Mixed item types inside one column are refused rather than guessed.
        infer_schema([{"a": 1}, {"a": "x"}])


def test_signature_dict_round_trip_and_equality() -> None:
    signature = ModelSignature(
        Schema([ColSpec("long", "a")]),
        Schema([ColSpec("double")]),
        ParamSchema([ParamSpec("k", "long", 1)]),
    )
    again = ModelSignature.from_dict(signature.to_dict())
    assert again == signature
    assert "inputs:" in repr(again)
    assert "'a': long (required)" in repr(again)
    assert (
        ModelSignature.from_dict({"inputs": None, "outputs": '[{"type": "long"}]'}).inputs is None
    )
    with pytest.raises(ValueError, match="At least one of inputs, outputs or params"):
        ModelSignature()
    with pytest.raises(TypeError, match="inputs must be"):
        ModelSignature(inputs=[1])  # type: ignore[arg-type]
