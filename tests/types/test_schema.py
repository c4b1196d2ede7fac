"""Schema types: MLflow's JSON forms round-trip exactly, and invalid schemas are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.types import (
    AnyType,
    Array,
    ColSpec,
    DataType,
    Map,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
    TensorSpec,
)

# Literal schema strings as MLflow 3.17.2 writes them into MLmodel files.
MLFLOW_SCHEMAS = [
    '[{"type": "long", "name": "a", "required": true}, {"type": "double", "name": "b", '
    '"required": true}, {"type": "string", "name": "c", "required": true}]',
    '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]',
    '[{"name": "x", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}, '
    '{"name": "y", "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2, 2]}}]',
    '[{"type": "array", "items": {"type": "long"}, "name": "a", "required": true}, '
    '{"type": "array", "items": {"type": "string"}, "name": "b", "required": true}]',
    '[{"type": "string", "required": true}]',
    '[{"type": "object", "properties": {"k": {"type": "string", "required": true}, "n": {"type": '
    '"array", "items": {"type": "double"}, "required": false}}, "name": "doc", "required": true}]',
    '[{"type": "map", "values": {"type": "long"}, "name": "m", "required": true}, '
    '{"type": "any", "name": "free", "required": false}]',
    '[{"type": "binary", "name": "raw", "required": true}, {"type": "datetime", "name": "when", '
    '"required": true}, {"type": "boolean", "name": "flag", "required": false}]',
]
MLFLOW_PARAMS = (
    '[{"name": "k", "default": 1, "shape": null, "type": "long"}, {"name": "t", "default": "s", '
    '"shape": null, "type": "string"}, {"name": "f", "default": [1.0, 2.0], "shape": [-1], '
    '"type": "double"}, {"name": "when", "default": "2020-01-02T03:04:05", "shape": null, '
    '"type": "datetime"}]'
)


@pytest.mark.parametrize("text", MLFLOW_SCHEMAS)
def test_schema_json_round_trips_byte_for_byte(text: str) -> None:
    schema = Schema.from_json(text)
    assert schema.to_json() == text
    assert Schema.from_json(schema.to_json()) == schema


def test_param_schema_round_trip_and_values() -> None:
    params = ParamSchema.from_json(MLFLOW_PARAMS)
    assert params.to_json() == MLFLOW_PARAMS
    by_name = {p.name: p for p in params}
    assert by_name["k"].dtype is DataType.long
    assert by_name["k"].default == 1
    assert by_name["f"].shape == (-1,)
    assert by_name["f"].default == [1.0, 2.0]
    assert by_name["when"].default.year == 2020  # parsed to a datetime, written back as ISO


def test_colspec_accessors_and_schema_queries() -> None:
    schema = Schema(
        [
            ColSpec("long", "a"),
            ColSpec(DataType.string, "b", required=False),
            ColSpec("double", "c"),
        ]
    )
    assert schema.input_names() == ["a", "b", "c"]
    assert schema.required_input_names() == ["a", "c"]
    assert schema.optional_input_names() == ["b"]
    assert schema.has_input_names()
    assert not schema.is_tensor_spec()
    assert schema.column_types() == [DataType.long, DataType.string, DataType.double]
    assert schema.numpy_types() == [np.dtype("int64"), np.dtype("str"), np.dtype("float64")]
    assert schema.pandas_types() == [np.dtype("int64"), object, np.dtype("float64")]
    assert schema.input_types_dict() == {
        "a": DataType.long,
        "b": DataType.string,
        "c": DataType.double,
    }
    unnamed = Schema([ColSpec("double"), ColSpec("double")])
    assert unnamed.input_names() == [0, 1]
    assert not unnamed.has_input_names()


def test_tensor_schema_queries() -> None:
    schema = Schema([TensorSpec(np.dtype("float32"), (-1, 28, 28), "img")])
    assert schema.is_tensor_spec()
    assert schema.numpy_types() == [np.dtype("float32")]
    assert schema.inputs[0].shape == (-1, 28, 28)
    with pytest.raises(RunyardError, match="TensorSpec only supports numpy types"):
        schema.pandas_types()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "empty inputs is not allowed"),
        ([ColSpec("long", "a"), ColSpec("long")], "combination of named and unnamed"),
        (
            [ColSpec("long", "a"), TensorSpec(np.dtype("int64"), (-1,), "b")],
            "combination of ColSpec and TensorSpec",
        ),
        (
            [TensorSpec(np.dtype("int64"), (-1,)), TensorSpec(np.dtype("int64"), (-1,))],
            "multiple unnamed TensorSpecs",
        ),
        ([ColSpec("long", required=False)], "unnamed optional inputs"),
    ],
)
def test_invalid_schemas_are_refused(inputs: list[object], message: str) -> None:
    with pytest.raises(RunyardError, match=message):
        Schema(inputs)  # type: ignore[arg-type]


def test_unknown_type_names_and_sized_string_dtypes() -> None:
    with pytest.raises(RunyardError, match="Unsupported type 'long64'"):
        ColSpec("long64", "a")
    with pytest.raises(RunyardError, match="size information in flexible numpy data types"):
        TensorSpec(np.dtype("<U5"), (-1,))
    with pytest.raises(TypeError):
        ColSpec(42, "a")  # type: ignore[arg-type]


def test_composite_types_and_merging() -> None:
    obj1 = Object([Property("a", "string"), Property("b", DataType.double)])
    obj2 = Object([Property("a", "string"), Property("c", "boolean")])
    merged = obj1._merge(obj2)
    assert merged == Object(
        [
            Property("a", DataType.string),
            Property("b", DataType.double, required=False),
            Property("c", DataType.boolean, required=False),
        ]
    )
    assert [p.name for p in Object([Property("z", "long"), Property("a", "long")]).properties] == [
        "a",
        "z",
    ]
    assert Array("long")._merge(AnyType()) == Array(DataType.long)
    assert Map(Array("string")).to_dict() == {
        "type": "map",
        "values": {"type": "array", "items": {"type": "string"}},
    }
    with pytest.raises(RunyardError, match="incompatible"):
        Array("long")._merge(Array("string"))
    with pytest.raises(InvalidParameterValue, match="duplicated property names"):
        Object([Property("a", "long"), Property("a", "string")])


def test_param_spec_validation() -> None:
    assert ParamSpec("n", "long", 3).default == 3
    assert ParamSpec("x", "double", 2).default == 2.0  # widened to a float
    with pytest.raises(InvalidParameterValue, match="Binary type is not supported"):
        ParamSpec("b", DataType.binary, b"x")
    with pytest.raises(InvalidParameterValue, match="Failed to validate type and shape"):
        ParamSpec("n", "long", "three")
    with pytest.raises(InvalidParameterValue, match="1D array with shape"):
        ParamSpec("l", "long", 1, shape=(-1,))
    with pytest.raises(InvalidParameterValue, match="Duplicated parameters"):
        ParamSchema([ParamSpec("a", "long", 1), ParamSpec("a", "long", 2)])
    obj = ParamSpec("cfg", Object([Property("k", "long")]), {"k": 1})
    assert json.loads(ParamSchema([obj]).to_json()) == [
        {
            "name": "cfg",
            "default": {"k": 1},
            "shape": None,
            "type": "object",
            "properties": {"k": {"type": "long", "required": True}},
        }
    ]


def test_datatype_mappings() -> None:
    assert DataType.long.to_numpy() == np.dtype("int64")
    assert DataType.string.to_pandas() is object
    assert DataType.float.to_python() is float
    assert DataType.from_numpy_type(np.dtype("float32")) is DataType.float
    assert DataType.check_type(DataType.long, 3)
    assert not DataType.check_type(DataType.long, 3.0)
    assert repr(DataType.boolean) == "boolean"
    assert [t.name for t in DataType.all_types()][:3] == ["boolean", "integer", "long"]
