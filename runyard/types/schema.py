"""Schemas of model inputs/outputs (``Schema`` of ``ColSpec`` or ``TensorSpec``) and parameters.

The JSON is MLflow's, so MLmodel files stay interchangeable::

    [{"type": "long", "name": "a", "required": true}]                         # ColSpec
    [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]  # TensorSpec
    [{"name": "k", "default": 1, "shape": null, "type": "long"}]              # ParamSpec
"""

from __future__ import annotations

import datetime as dt
import json
import string
from collections.abc import Iterator
from typing import Any

import numpy as np

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.types.coerce import enforce_param_value
from runyard.types.composite import (
    ANY_TYPE,
    ARRAY_TYPE,
    MAP_TYPE,
    OBJECT_TYPE,
    AnyType,
    Array,
    Map,
    Object,
    Property,
    SpecType,
    _as_spec_type,
    parse_spec_type,
    type_to_dict,
)
from runyard.types.datatype import DataType

# The composite types and DataType are re-exported: MLflow users import them from here too.
__all__ = [
    "AnyType",
    "Array",
    "ColSpec",
    "DataType",
    "Map",
    "Object",
    "ParamSchema",
    "ParamSpec",
    "Property",
    "Schema",
    "TensorInfo",
    "TensorSpec",
]


class ColSpec:
    """One column of a dataset: its type and, optionally, its name; ``required`` by default."""

    def __init__(
        self, type: SpecType | str, name: str | None = None, required: bool = True
    ) -> None:
        self._name = name
        self._required = True if required is None else required
        try:
            self._type = _as_spec_type(type, "type")
        except RunyardError as exc:
            if isinstance(type, str):
                raise RunyardError(
                    f"Unsupported type '{type}', expected instance of DataType or "
                    f"one of {[t.name for t in DataType]}"
                ) from None
            raise TypeError(exc.message) from None

    @property
    def type(self) -> SpecType:
        """The column type."""
        return self._type

    @property
    def name(self) -> str | None:
        """The column name, or None for an unnamed column."""
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value

    @property
    def required(self) -> bool:
        """Whether the column must be present at predict time."""
        return self._required

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., "name"?: ..., "required": bool}`` (keys in MLflow's order)."""
        doc = type_to_dict(self.type)
        if self.name is not None:
            doc["name"] = self.name
        doc["required"] = self.required
        return doc

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ColSpec)
            and self.name == other.name
            and self.type == other.type
            and self.required == other.required
        )

    def __repr__(self) -> str:
        required = "required" if self.required else "optional"
        if self.name is None:
            return f"{self.type!r} ({required})"
        return f"{self.name!r}: {self.type!r} ({required})"

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> ColSpec:
        """Read one column's JSON dict."""
        if "type" not in kwargs:
            raise RunyardError("Missing keys in ColSpec JSON. Expected to find key `type`")
        name = kwargs.get("name")
        required = kwargs.get("required", True)
        if kwargs["type"] in (ARRAY_TYPE, OBJECT_TYPE, MAP_TYPE, ANY_TYPE):
            return cls(parse_spec_type(kwargs), name=name, required=required)
        return cls(kwargs["type"], name=name, required=required)


class TensorInfo:
    """A tensor's numpy dtype and shape (``-1`` marks a variable dimension)."""

    def __init__(self, dtype: np.dtype[Any], shape: tuple[int, ...] | list[int]) -> None:
        if not isinstance(dtype, np.dtype):
            raise TypeError(
                f"Expected `dtype` to be instance of `{np.dtype}`, received `{dtype.__class__}`"
            )
        if dtype.char in ("U", "S") and not dtype.name.isalpha():
            raise RunyardError(
                "MLflow does not support size information in flexible numpy data types. Use"
                f' np.dtype("{dtype.name.rstrip(string.digits)}") instead'
            )
        if not isinstance(shape, (tuple, list)):
            raise TypeError(
                f"Expected `shape` to be instance of `{tuple}` or `{list}`, "
                f"received `{shape.__class__}`"
            )
        self._dtype = dtype
        self._shape = tuple(shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype."""
        return self._dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, ``-1`` for variable dimensions."""
        return self._shape

    def to_dict(self) -> dict[str, Any]:
        """``{"dtype": "<numpy name>", "shape": [...]}``."""
        return {"dtype": self._dtype.name, "shape": list(self._shape)}

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> TensorInfo:
        """Read ``{"dtype": ..., "shape": [...]}``."""
        if not {"dtype", "shape"} <= kwargs.keys():
            raise RunyardError(
                "Missing keys in TensorSpec JSON. Expected to find keys `dtype` and `shape`"
            )
        return cls(np.dtype(kwargs["dtype"]), tuple(kwargs["shape"]))

    def __repr__(self) -> str:
        return f"Tensor({self.dtype.name!r}, {self.shape!r})"


class TensorSpec:
    """One (optionally named) tensor input or output."""

    def __init__(
        self, type: np.dtype[Any], shape: tuple[int, ...] | list[int], name: str | None = None
    ) -> None:
        self._name = name
        self._info = TensorInfo(type, shape)

    @property
    def type(self) -> np.dtype[Any]:
        """The numpy dtype."""
        return self._info.dtype

    @property
    def name(self) -> str | None:
        """The tensor name, or None."""
        return self._name

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, ``-1`` for variable dimensions."""
        return self._info.shape

    @property
    def required(self) -> bool:
        """Tensors are always required."""
        return True

    def to_dict(self) -> dict[str, Any]:
        """``{"name"?: ..., "type": "tensor", "tensor-spec": {...}}``."""
        doc: dict[str, Any] = {} if self.name is None else {"name": self.name}
        doc.update({"type": "tensor", "tensor-spec": self._info.to_dict()})
        return doc

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> TensorSpec:
        """Read one tensor's JSON dict."""
        if not {"tensor-spec", "type"} <= kwargs.keys():
            raise RunyardError(
                "Missing keys in TensorSpec JSON. Expected to find keys `tensor-spec` and `type`"
            )
        if kwargs["type"] != "tensor":
            raise RunyardError("Type mismatch, TensorSpec expects `tensor` as the type")
        info = TensorInfo.from_json_dict(**kwargs["tensor-spec"])
        return cls(info.dtype, info.shape, kwargs.get("name"))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TensorSpec)
            and self.name == other.name
            and self.type == other.type
            and self.shape == other.shape
        )

    def __repr__(self) -> str:
        return repr(self._info) if self.name is None else f"{self.name!r}: {self._info!r}"


def _check_schema_inputs(inputs: Any) -> None:
    if not isinstance(inputs, list):
        raise InvalidParameterValue(
            f"Inputs of Schema must be a list, got type {type(inputs).__name__}"
        )
    if not inputs:
        raise InvalidParameterValue("Creating Schema with empty inputs is not allowed.")
    named = [x.name is not None for x in inputs]
    if any(named) and not all(named):
        raise RunyardError(
            "Creating Schema with a combination of named and unnamed inputs "
            f"is not allowed. Got input names {[x.name for x in inputs]}"
        )
    tensors = [isinstance(x, TensorSpec) for x in inputs]
    if not (all(tensors) or all(isinstance(x, ColSpec) for x in inputs)):
        raise RunyardError(
            "Creating Schema with a combination of ColSpec and TensorSpec is not supported. "
            "Please choose one of ColSpec or TensorSpec"
        )
    if all(tensors) and len(inputs) > 1 and not any(named):
        raise RunyardError(
            "Creating Schema with multiple unnamed TensorSpecs is not supported. "
            "Please provide names for each TensorSpec."
        )
    if not any(named) and any(not x.required for x in inputs):
        raise RunyardError(
            "Creating Schema with unnamed optional inputs is not supported. "
            "Please name all inputs or make all inputs required."
        )


class Schema:
    """A dataset's shape: a list of ``ColSpec`` (columns) or of ``TensorSpec`` (tensors)."""

    def __init__(self, inputs: list[ColSpec] | list[TensorSpec] | list[ColSpec | TensorSpec]):
        _check_schema_inputs(inputs)
        self._inputs: list[Any] = list(inputs)

    def __len__(self) -> int:
        return len(self._inputs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._inputs)

    @property
    def inputs(self) -> list[Any]:
        """The column or tensor specs."""
        return self._inputs

    def is_tensor_spec(self) -> bool:
        """True when the schema is made of TensorSpecs."""
        return bool(self._inputs) and isinstance(self._inputs[0], TensorSpec)

    def input_names(self) -> list[str | int]:
        """The names, or the positions when the schema is unnamed."""
        return [x.name or i for i, x in enumerate(self._inputs)]

    def required_input_names(self) -> list[str | int]:
        """Names (or positions) of the required inputs."""
        return [x.name or i for i, x in enumerate(self._inputs) if x.required]

    def optional_input_names(self) -> list[str | int]:
        """Names (or positions) of the optional inputs."""
        return [x.name or i for i, x in enumerate(self._inputs) if not x.required]

    def has_input_names(self) -> bool:
        """True when the inputs are named."""
        return bool(self._inputs) and self._inputs[0].name is not None

    def input_types(self) -> list[Any]:
        """The type of each input (DataType/composite for columns, numpy dtype for tensors)."""
        return [x.type for x in self._inputs]

    def input_types_dict(self) -> dict[str, Any]:
        """Name → type; only for named schemas."""
        if not self.has_input_names():
            raise RunyardError("Cannot get input types as a dict for schema without names.")
        return {x.name: x.type for x in self._inputs}

    def input_dict(self) -> dict[str, Any]:
        """Name → spec; only for named schemas."""
        if not self.has_input_names():
            raise RunyardError("Cannot get input dict for schema without names.")
        return {x.name: x for x in self._inputs}

    def column_types(self) -> list[Any]:
        """The column types (alias of :meth:`input_types`)."""
        return self.input_types()

    def numpy_types(self) -> list[np.dtype[Any]]:
        """The numpy dtype of each input."""
        if self.is_tensor_spec():
            return [x.type for x in self._inputs]
        if all(isinstance(x.type, DataType) for x in self._inputs):
            return [x.type.to_numpy() for x in self._inputs]
        raise RunyardError(
            "Failed to get numpy types as some of the inputs types are not DataType."
        )

    def pandas_types(self) -> list[Any]:
        """The pandas dtype of each column (not for tensor schemas)."""
        if self.is_tensor_spec():
            raise RunyardError("TensorSpec only supports numpy types, use numpy_types() instead")
        if all(isinstance(x.type, DataType) for x in self._inputs):
            return [x.type.to_pandas() for x in self._inputs]
        raise RunyardError(
            "Failed to get pandas types as some of the inputs types are not DataType."
        )

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON list."""
        return [x.to_dict() for x in self._inputs]

    def to_json(self) -> str:
        """The JSON string stored in MLmodel files."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str) -> Schema:
        """Read a schema's JSON string."""
        docs = json.loads(json_str)
        specs: list[Any] = [
            TensorSpec.from_json_dict(**d) if d["type"] == "tensor" else ColSpec.from_json_dict(**d)
            for d in docs
        ]
        return cls(specs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self._inputs == other._inputs

    def __repr__(self) -> str:
        return repr(self._inputs)


def _is_1d_array(value: Any) -> bool:
    return isinstance(value, (list, np.ndarray)) and np.array(value).ndim == 1


class ParamSpec:
    """An inference parameter: name, type, default, shape (None: scalar, ``(-1,)``: list)."""

    def __init__(
        self,
        name: str,
        dtype: DataType | Object | str,
        default: Any,
        shape: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        self._name = str(name)
        self._shape = tuple(shape) if shape is not None else None
        if isinstance(dtype, str):
            try:
                dtype = DataType[dtype]
            except KeyError:
                supported = [t.name for t in DataType if t.name != "binary"]
                raise InvalidParameterValue(
                    f"Unsupported type '{dtype}', expected instance of DataType or "
                    f"one of {supported}"
                ) from None
        if not isinstance(dtype, (DataType, Object)):
            raise TypeError(f"'dtype' must be DataType, Object or str, got {dtype}")
        if dtype is DataType.binary:
            raise InvalidParameterValue(
                f"Binary type is not supported for parameters, ParamSpec '{self._name}'"
                "has dtype 'binary'"
            )
        self._dtype: DataType | Object = dtype
        self._default = default
        self._default = self.validate_type_and_shape(repr(self), default, dtype, self._shape)

    @classmethod
    def validate_param_spec(cls, value: Any, param_spec: ParamSpec) -> Any:
        """``value`` checked (and widened) against ``param_spec``."""
        return cls.validate_type_and_shape(
            repr(param_spec), value, param_spec.dtype, param_spec.shape
        )

    @classmethod
    def validate_type_and_shape(
        cls, spec: str, value: Any, value_type: DataType | Object, shape: tuple[int, ...] | None
    ) -> Any:
        """Check a value's type and shape; return it as plain Python values."""
        if shape == (-1,) and not _is_1d_array(value):
            raise InvalidParameterValue(
                f"Value must be a 1D array with shape (-1,) for param {spec}, "
                f"received {type(value).__name__} with ndim {np.array(value).ndim}"
            )
        if shape is not None and shape != (-1,):
            raise InvalidParameterValue(
                "Shape must be None for scalar or dictionary value, or (-1,) for 1D array value "
                f"for ParamSpec {spec}), received {shape}"
            )
        try:
            if shape is None:
                return enforce_param_value(value, value_type)
            return [enforce_param_value(v, value_type) for v in value]
        except RunyardError as exc:
            raise InvalidParameterValue(
                f"Failed to validate type and shape for {spec}, error: {exc.message}"
            ) from None

    @property
    def name(self) -> str:
        """The parameter name."""
        return self._name

    @property
    def dtype(self) -> DataType | Object:
        """The parameter type."""
        return self._dtype

    @property
    def default(self) -> Any:
        """The value used when a predict call does not pass the parameter."""
        return self._default

    @property
    def shape(self) -> tuple[int, ...] | None:
        """None for a scalar, ``(-1,)`` for a list."""
        return self._shape

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "default", "shape", "type"}`` (datetimes as ISO strings)."""
        default = self.default
        if self.dtype is DataType.datetime and default is not None:
            default = [_iso(v) for v in default] if self.shape == (-1,) else _iso(default)
        doc: dict[str, Any] = {
            "name": self.name,
            "default": default,
            "shape": list(self.shape) if self.shape is not None else None,
        }
        doc.update(type_to_dict(self.dtype))
        return doc

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ParamSpec)
            and self.name == other.name
            and self.dtype == other.dtype
            and self.default == other.default
            and self.shape == other.shape
        )

    def __repr__(self) -> str:
        shape = f" (shape: {self.shape})" if self.shape is not None else ""
        return f"{self.name!r}: {self.dtype!r} (default: {self.default}){shape}"

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> ParamSpec:
        """Read one parameter's JSON dict (``type`` or the older ``dtype`` key)."""
        if not (
            {"name", "type", "default"} <= kwargs.keys()
            or {"name", "dtype", "default"} <= kwargs.keys()
        ):
            raise InvalidParameterValue(
                "Missing keys in ParamSpec JSON. Expected to find keys `name`, `type`(or "
                f"`dtype`) and `default`. Received keys: {kwargs.keys()}"
            )
        type_name = kwargs.get("type") or kwargs.get("dtype")
        dtype: DataType | Object = (
            Object.from_json_dict(**{**kwargs, "type": OBJECT_TYPE})
            if type_name == OBJECT_TYPE
            else DataType[str(type_name)]
        )
        return cls(str(kwargs["name"]), dtype, kwargs["default"], kwargs.get("shape"))


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.time)) else value


class ParamSchema:
    """The parameters a model accepts at predict time."""

    def __init__(self, params: list[ParamSpec]) -> None:
        if not all(isinstance(x, ParamSpec) for x in params):
            raise InvalidParameterValue("ParamSchema inputs only accept ParamSpec")
        names = [p.name for p in params]
        duplicates = [n for i, n in enumerate(names) if n in names[:i]]
        if duplicates:
            raise InvalidParameterValue(f"Duplicated parameters found in schema: {duplicates}")
        self._params = list(params)

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self._params)

    @property
    def params(self) -> list[ParamSpec]:
        """The parameter specs."""
        return self._params

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON list."""
        return [p.to_dict() for p in self._params]

    def to_json(self) -> str:
        """The JSON string stored in MLmodel files."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str) -> ParamSchema:
        """Read a parameter schema's JSON string."""
        return cls([ParamSpec.from_json_dict(**d) for d in json.loads(json_str)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSchema) and self._params == other._params

    def __repr__(self) -> str:
        return repr(self._params)
