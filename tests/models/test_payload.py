"""Scoring payload parsing: every data key, schema casts, and MLflow's errors for bad bodies."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from runyard.errors import RunyardError
from runyard.models.payload import (
    NumpyEncoder,
    decode_json_payload,
    parse_scoring_payload,
    to_jsonable,
)
from runyard.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

AB = Schema([ColSpec("long", "a"), ColSpec("string", "b")])
TENSOR = Schema([TensorSpec(np.dtype("float32"), (-1, 2))])


def parse(body: str, schema: Schema | None = AB) -> tuple[object, object]:
    return parse_scoring_payload(decode_json_payload(body), schema)


def test_dataframe_split_and_records() -> None:
    data, params = parse(
        '{"dataframe_split": {"columns": ["a","b"], "data": [[1,"x"],[2,"y"]]}, "params": {"k": 1}}'
    )
    assert isinstance(data, pd.DataFrame)
    assert data.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
    assert data["a"].dtype == np.int64
    assert params == {"k": 1}
    data, params = parse(
        '{"dataframe_split": {"index": [5, 6], "data": [[1, "x"], [2, "y"]], '
        '"columns": ["a", "b"]}}'
    )
    assert isinstance(data, pd.DataFrame)
    assert list(data.index) == [5, 6]
    assert params is None
    data, _ = parse('{"dataframe_records": [{"a": 1, "b": "x"}]}')
    assert isinstance(data, pd.DataFrame)
    assert data.to_dict("records") == [{"a": 1, "b": "x"}]


def test_instances_and_inputs() -> None:
    data, _ = parse('{"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}')
    assert isinstance(data, dict)
    assert data["a"].tolist() == [1, 2]
    assert data["a"].dtype == np.int64
    data, _ = parse('{"inputs": {"a": [1, 2], "b": ["x", "y"]}}')
    assert isinstance(data, dict)
    assert data["b"].tolist() == ["x", "y"]
    tensor, _ = parse('{"inputs": [[1, 2], [3, 4]]}', TENSOR)
    assert isinstance(tensor, np.ndarray)
    assert tensor.dtype == np.float32
    assert tensor.shape == (2, 2)
    raw, _ = parse('{"inputs": [[1, 2]]}', None)
    assert isinstance(raw, np.ndarray)
    assert raw.tolist() == [[1, 2]]
    with pytest.raises(RunyardError, match="The length of values for each input/column name"):
        parse('{"instances": [{"a": 1, "b": "x"}, {"a": 2}]}')


def test_binary_and_datetime_columns_are_decoded() -> None:
    schema = Schema([ColSpec("binary", "raw"), ColSpec("datetime", "when")])
    data, _ = parse(
        '{"dataframe_records": [{"raw": "aGVsbG8=\\n", "when": "2020-01-02T03:04:05"}]}', schema
    )
    assert isinstance(data, pd.DataFrame)
    assert data["raw"][0] == b"hello"
    assert data["when"][0] == pd.Timestamp("2020-01-02T03:04:05")
    assert str(data["when"].dtype) == "datetime64[ns]"


def test_unified_llm_bodies_pass_through() -> None:
    params = ParamSchema([ParamSpec("temperature", "double", 0.1)])
    data, got = parse_scoring_payload(
        {"messages": [{"role": "user"}], "temperature": 0.3, "other": 1}, None, params
    )
    assert data == {"messages": [{"role": "user"}], "other": 1}
    assert got == {"temperature": 0.3}


def test_type_hint_models_get_raw_inputs() -> None:
    assert parse_scoring_payload({"inputs": ["a"]}, None, raw_inputs=True) == (["a"], None)
    with pytest.raises(RunyardError, match="must be a dictionary with 'inputs' key"):
        parse_scoring_payload({"instances": ["a"]}, None, raw_inputs=True)


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (
            '{"inputs": [1], "instances": [1]}',
            "BAD_REQUEST",
            "The input must be a JSON dictionary with exactly one of the input fields "
            "{'inputs', 'dataframe_records', 'dataframe_split', 'instances'}. Received dictionary "
            "with input fields: ['inputs', 'instances']. IMPORTANT: The MLflow Model scoring",
        ),
        ('{"foo": 1}', "BAD_REQUEST", "Received dictionary with input fields: []."),
        ("[1, 2]", "BAD_REQUEST", "Received a list."),
        (
            '{"inputs": ',
            "BAD_REQUEST",
            "Invalid input. Ensure that input is a valid JSON formatted string.",
        ),
        ('{"dataframe_split": [1]}', "BAD_REQUEST", "Dataframe split format must be a dictionary"),
        (
            '{"dataframe_split": {"data": [], "bogus": 1}}',
            "BAD_REQUEST",
            "Dataframe split format must have 'data' field",
        ),
        (
            '{"dataframe_records": {"a": 1}}',
            "BAD_REQUEST",
            "Dataframe records format must be a list of records. Got dictionary.",
        ),
        (
            '{"dataframe_split": {"columns": ["a","b"], "data": [["x","y"]]}}',
            "BAD_REQUEST",
            "Invalid input. Data is not compatible with model signature. Failed to convert column "
            "a to type 'int64'.",
        ),
    ],
)
def test_bad_payloads(body: str, code: str, fragment: str) -> None:
    with pytest.raises(RunyardError) as info:
        parse(body)
    assert info.value.error_code == code
    assert fragment in info.value.message


def test_json_helpers() -> None:
    payload = {
        "arr": np.array([[1, 2]]),
        "f": np.float32(1.5),
        "b": b"hi",
        "t": dt.datetime(2020, 1, 2),
        "d64": np.datetime64("2020-01-02T00:00:00"),
        "objs": np.array([np.int64(1), "x"], dtype=object),
    }
    assert json.loads(json.dumps(payload, cls=NumpyEncoder)) == {
        "arr": [[1, 2]],
        "f": 1.5,
        "b": "aGk=\n",
        "t": "2020-01-02T00:00:00",
        "d64": "2020-01-02T00:00:00",
        "objs": [1, "x"],
    }
    assert to_jsonable(pd.DataFrame({"a": [1]})) == [{"a": 1}]
    assert to_jsonable(pd.Series([1, 2], name="p")) == [{"p": 1}, {"p": 2}]
    assert to_jsonable(np.array([1, 2])) == [1, 2]
    assert to_jsonable({"x": 1}) == {"x": 1}
