"""``runyard.data``: dataset digests, schemas, profiles and sources."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

import runyard.data
from runyard.data import NumpyDataset, PandasDataset, from_numpy, from_pandas
from runyard.entities import Dataset as DatasetEntity
from runyard.exceptions import MlflowException


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i64": np.array([1, 2, 3], dtype=np.int64),
            "i32": np.array([1, 2, 3], dtype=np.int32),
            "f64": [0.5, 1.5, 2.5],
            "f32": np.array([0.5, 1.5, 2.5], dtype=np.float32),
            "b": [True, False, True],
            "s": ["a", "b", "c"],
        }
    )


# -- digests ----------------------------------------------------------------------------------
def test_pandas_digest_is_stable() -> None:
    first = from_pandas(frame())
    second = from_pandas(frame())
    assert first.digest == second.digest
    assert len(first.digest) == 8
    assert all(c in "0123456789abcdef" for c in first.digest)
    # the name and source describe the data; they do not change its digest
    assert from_pandas(frame(), name="x", source="s3://b/k").digest == first.digest


@pytest.mark.parametrize(
    "change",
    [
        lambda df: df.assign(f64=[0.5, 1.5, 2.6]),  # one value
        lambda df: df.rename(columns={"s": "t"}),  # a column name
        lambda df: df.iloc[:2],  # fewer rows
        lambda df: pd.concat([df, df.iloc[:1]], ignore_index=True),  # more rows
        lambda df: df.drop(columns=["b"]),  # fewer columns
        lambda df: df[list(reversed(df.columns))],  # column order
        lambda df: df.iloc[[2, 1, 0]].reset_index(drop=True),  # row order
    ],
)
def test_pandas_digest_changes_with_the_data(change: Any) -> None:
    assert from_pandas(change(frame())).digest != from_pandas(frame()).digest


def test_pandas_digest_ignores_the_index() -> None:
    shifted = frame()
    shifted.index = [10, 11, 12]
    assert from_pandas(shifted).digest == from_pandas(frame()).digest


def test_explicit_digest_is_kept() -> None:
    assert from_pandas(frame(), digest="custom").digest == "custom"
    assert from_numpy(np.zeros(3), digest="given").digest == "given"


def test_numpy_digest_stable_and_sensitive() -> None:
    x = np.arange(12.0).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    base = from_numpy(x, targets=y)
    assert from_numpy(x.copy(), targets=y.copy()).digest == base.digest
    assert len(base.digest) == 8
    assert from_numpy(x).digest != base.digest  # targets count
    assert from_numpy(x, targets=y[::-1].copy()).digest != base.digest
    changed = x.copy()
    changed[3, 2] = -1
    assert from_numpy(changed, targets=y).digest != base.digest
    assert from_numpy(x.reshape(3, 4), targets=y).digest != base.digest  # same bytes, new shape
    assert from_numpy(x.T, targets=y[:3]).digest != base.digest  # non-contiguous input works
    assert from_numpy([[1, 2], [3, 4]]).digest == from_numpy(np.array([[1, 2], [3, 4]])).digest


# -- schema and profile -----------------------------------------------------------------------
def test_pandas_schema_and_profile() -> None:
    ds = from_pandas(frame(), targets="b")
    assert ds.schema == {
        "mlflow_colspec": [
            {"type": "long", "name": "i64", "required": True},
            {"type": "integer", "name": "i32", "required": True},
            {"type": "double", "name": "f64", "required": True},
            {"type": "float", "name": "f32", "required": True},
            {"type": "boolean", "name": "b", "required": True},
            {"type": "string", "name": "s", "required": True},
        ]
    }
    assert ds.profile == {"num_rows": 3, "num_elements": 18}
    assert ds.targets == "b"
    entity = ds.to_entity()
    assert json.loads(entity.schema or "") == ds.schema
    assert json.loads(entity.profile or "") == ds.profile


def test_numpy_schema_and_profile() -> None:
    ds = from_numpy(np.zeros((5, 3), dtype=np.float32), targets=np.zeros(5, dtype=np.int64))
    schema = ds.schema["mlflow_tensorspec"]
    assert json.loads(schema["features"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}
    ]
    assert json.loads(schema["targets"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]
    assert ds.profile == {
        "features_shape": [5, 3],
        "features_size": 15,
        "targets_shape": [5],
        "targets_size": 5,
    }
    no_targets = from_numpy(np.zeros((2, 2)))
    assert set(no_targets.schema["mlflow_tensorspec"]) == {"features"}
    assert no_targets.profile == {"features_shape": [2, 2], "features_size": 4}


def test_entity_and_dict() -> None:
    ds = from_pandas(frame(), source="/data/train.parquet", name="train")
    entity = ds.to_entity()
    assert isinstance(entity, DatasetEntity)
    assert (entity.name, entity.digest, entity.source_type) == ("train", ds.digest, "local")
    assert json.loads(entity.source) == {"uri": "/data/train.parquet"}
    assert ds._to_mlflow_entity() == entity
    as_dict = ds.to_dict()
    assert as_dict == {
        "name": "train",
        "digest": ds.digest,
        "source": entity.source,
        "source_type": "local",
        "schema": entity.schema,
        "profile": entity.profile,
    }
    assert all(isinstance(v, str) for v in as_dict.values())


# -- sources ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "source_type", "parsed"),
    [
        ("s3://bucket/data.csv", "s3", {"uri": "s3://bucket/data.csv"}),
        ("gs://bucket/data.csv", "gcs", {"uri": "gs://bucket/data.csv"}),
        ("https://example.com/d.csv", "http", {"url": "https://example.com/d.csv"}),
        ("http://example.com/d.csv", "http", {"url": "http://example.com/d.csv"}),
        ("/abs/path.csv", "local", {"uri": "/abs/path.csv"}),
        ("relative/path.csv", "local", {"uri": "relative/path.csv"}),
    ],
)
def test_source_types(source: str, source_type: str, parsed: dict[str, str]) -> None:
    for ds in (from_pandas(frame(), source=source), from_numpy(np.zeros(2), source=source)):
        assert ds.source_type == source_type
        assert json.loads(ds.source) == parsed


def test_no_source_means_code() -> None:
    ds = from_pandas(frame())
    assert ds.source_type == "code"
    tags = json.loads(ds.source)["tags"]
    assert tags["mlflow.source.name"] == sys.argv[0]
    assert tags["mlflow.user"]
    assert ds.name == "dataset"


# -- errors and types -------------------------------------------------------------------------
def test_invalid_inputs() -> None:
    with pytest.raises(MlflowException) as info:
        from_pandas({"a": [1]})  # type: ignore[arg-type]
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    for kwargs in ({"targets": "nope"}, {"predictions": "nope"}):
        with pytest.raises(MlflowException, match="nope"):
            from_pandas(frame(), **kwargs)


def test_public_names() -> None:
    assert isinstance(runyard.data.from_pandas(frame()), PandasDataset)
    assert isinstance(runyard.data.from_numpy(np.zeros(1)), NumpyDataset)
    assert issubclass(PandasDataset, runyard.data.Dataset)
    ds = from_pandas(frame(), predictions="f64")
    assert ds.predictions == "f64"
    assert ds.df is not None
