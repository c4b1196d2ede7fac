"""Input examples and serving payloads: the exact files MLflow 3.17.2 writes, read back as saved."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from runyard.errors import InvalidParameterValue
from runyard.models import Model, convert_input_example_to_serving_input
from runyard.models.examples import Example, save_example

FRAME = pd.DataFrame({"a": [1, 2], "b": [1.5, 2.5], "c": ["x", "y"]})

# (example, input_example.json, serving_input_example.json as MLflow 3.17.2 writes them, info)
CASES: list[tuple[str, Any, str, dict[str, Any], dict[str, Any]]] = [
    (
        "dataframe+params",
        (FRAME, {"k": 2}),
        '{"inputs": {"columns": ["a", "b", "c"], "data": [[1, 1.5, "x"], [2, 2.5, "y"]]}, '
        '"params": {"k": 2}}',
        {
            "dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 1.5, "x"], [2, 2.5, "y"]]},
            "params": {"k": 2},
        },
        {"type": "dataframe", "pandas_orient": "split", "params": "true"},
    ),
    (
        "ndarray",
        np.zeros((2, 3), dtype=np.float32),
        "[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]",
        {"inputs": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]},
        {"type": "ndarray"},
    ),
    (
        "dict",
        {"a": [1, 2], "b": ["x", "y"]},
        '{"a": [1, 2], "b": ["x", "y"]}',
        {"inputs": {"a": [1, 2], "b": ["x", "y"]}},
        {"type": "json_object"},
    ),
    (
        "strings",
        ["hello", "world"],
        '["hello", "world"]',
        {"inputs": ["hello", "world"]},
        {"type": "json_object"},
    ),
    (
        "records",
        [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
        '[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]',
        {"inputs": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]},
        {"type": "json_object"},
    ),
]


@pytest.mark.parametrize(
    ("example", "stored", "serving", "info"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_files_match_mlflow(
    tmp_path: Path, example: Any, stored: str, serving: dict[str, Any], info: dict[str, Any]
) -> None:
    model = Model()
    save_example(model, example, tmp_path)
    assert (tmp_path / "input_example.json").read_text() == stored
    serving_text = (tmp_path / "serving_input_example.json").read_text()
    assert serving_text == json.dumps(serving, indent=2)
    assert model.saved_input_example_info == {
        "artifact_path": "input_example.json",
        "serving_input_path": "serving_input_example.json",
        **info,
    }
    assert model.get_serving_input(tmp_path) == serving_text


def test_read_back_as_saved(tmp_path: Path) -> None:
    model = Model()
    save_example(model, (FRAME, {"k": 2}), tmp_path)
    frame = model.load_input_example(tmp_path)
    pd.testing.assert_frame_equal(frame, FRAME)
    assert model.load_input_example_params(tmp_path) == {"k": 2}

    other = tmp_path / "nd"
    other.mkdir()
    model = Model()
    save_example(model, {"x": np.arange(4).reshape(2, 2)}, other)
    loaded = model.load_input_example(other)
    np.testing.assert_array_equal(loaded["x"], np.arange(4).reshape(2, 2))
    assert model.load_input_example_params(other) is None
    assert Model().load_input_example(other) is None


def test_nan_datetime_binary_and_sparse(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"f": [1.0, np.nan], "t": pd.to_datetime(["2020-01-01", "2020-01-02"]), "b": [b"hi", b"yo"]}
    )
    example = Example(frame)
    assert json.loads(example.json_input_example) == {
        "columns": ["f", "t", "b"],
        "data": [[1.0, "2020-01-01T00:00:00", "aGk=\n"], [None, "2020-01-02T00:00:00", "eW8=\n"]],
    }
    sparse = Example(csr_matrix(np.eye(2)))
    assert sparse.info["type"] == "sparse_matrix_csr"
    assert json.loads(sparse.json_input_example) == {
        "data": [1.0, 1.0],
        "indices": [0, 1],
        "indptr": [0, 1, 2],
        "shape": [2, 2],
    }
    model = Model()
    save_example(model, csr_matrix(np.eye(2)), tmp_path)
    assert (model.load_input_example(tmp_path).toarray() == np.eye(2)).all()
    assert Example(dt.datetime(2020, 1, 1)).info["type"] == "json_object"


def test_unified_llm_payload_and_bad_examples() -> None:
    example = Example(({"messages": [{"role": "user", "content": "hi"}]}, {"temperature": 0.5}))
    assert json.loads(example.json_serving_input or "") == {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
    }
    with pytest.raises(InvalidParameterValue, match="Mixed types in dictionary"):
        Example({"a": np.zeros(2), "b": [1]})
    with pytest.raises(InvalidParameterValue, match="Expected one of the following types"):
        Example(object())


def test_convert_input_example_to_serving_input() -> None:
    assert convert_input_example_to_serving_input(None) is None
    text = convert_input_example_to_serving_input(FRAME.head(1), params={"k": 1})
    assert json.loads(text or "") == {
        "dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 1.5, "x"]]},
        "params": {"k": 1},
    }
    assert json.loads(convert_input_example_to_serving_input(np.array([1, 2])) or "") == {
        "inputs": [1, 2]
    }
