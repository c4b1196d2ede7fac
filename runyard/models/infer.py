"""Inferring schemas from data, as MLflow does (``mlflow.types.utils._infer_schema``).

- pandas DataFrame/Series → named ``ColSpec`` columns from the dtypes (object columns: values)
- numpy array → one ``TensorSpec`` with the first dimension variable (``-1``)
- dict of numpy arrays → named ``TensorSpec`` per key
- dict of JSON values → one column per key; list of dicts → one column per key across the rows
- list of scalars → one unnamed column; a scalar → one unnamed column
- parameters: scalars → DataType, 1-D lists → shape ``(-1,)``, dicts → Object
"""

from __future__ import annotations

import logging
from copy import deepcopy
from typing import Any

import numpy as np
import pandas as pd

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.types.coerce import is_none_or_nan
from runyard.types.composite import AnyType, Array, Object, Property, SpecType
from runyard.types.datatype import DataType
from runyard.types.schema import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = ["clean_tensor_type", "infer_param_schema", "infer_schema", "is_sparse_matrix"]

_logger = logging.getLogger(__name__)

MULTIPLE_TYPES_ERROR_MSG = (
    "Expected all values in the list to be of the same type. To specify a model signature "
    "with a list containing elements of multiple types, define the signature manually "
    "using the Array(AnyType()) type from runyard.types."
)
_INTEGER_HINT = (
    "Hint: Inferred schema contains integer column(s). Integer columns in Python cannot represent "
    "missing values. If your input data contains missing values at inference time, it will be "
    "encoded as floats and will cause a schema enforcement error. The best way to avoid this "
    "problem is to infer the model schema based on a realistic data sample (training dataset) "
    "that includes missing values. Alternatively, you can declare integer columns as doubles "
    "(float64) whenever these columns may have missing values."
)
_hinted_integers = False

_SCALAR_TYPES: dict[type, DataType] = {
    bool: DataType.boolean,
    np.bool_: DataType.boolean,
    int: DataType.long,
    np.int64: DataType.long,
    np.int32: DataType.integer,
    float: DataType.double,
    np.float64: DataType.double,
    np.float32: DataType.float,
    str: DataType.string,
    np.str_: DataType.string,
    bytes: DataType.binary,
    np.bytes_: DataType.binary,
    bytearray: DataType.binary,
}


def is_sparse_matrix(data: Any) -> bool:
    """True for scipy's csr/csc matrices (checked without importing scipy)."""
    return type(data).__module__.startswith("scipy.sparse") and type(data).__name__ in (
        "csr_matrix",
        "csc_matrix",
        "csr_array",
        "csc_array",
    )


def clean_tensor_type(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """Drop the size of flexible dtypes (``<U5`` → ``str``, ``|S3`` → ``bytes``)."""
    if not isinstance(dtype, np.dtype):
        raise TypeError(
            f"Expected `type` to be instance of `{np.dtype}`, received `{dtype.__class__}`"
        )
    if dtype.char == "U":
        return np.dtype("str")
    if dtype.char == "S":
        return np.dtype("bytes")
    return dtype


def _tensor_shape(data: Any) -> tuple[int, ...]:
    shape = list(data.shape)
    if not shape:
        raise RunyardError(
            "The specified variable_dimension 0 is out of bounds with respect to the number of "
            "dimensions 0 in the input dataset"
        )
    shape[0] = -1
    return tuple(shape)


def numpy_dtype_to_datatype(dtype: Any) -> DataType:
    """The DataType of a numpy (or pandas extension) dtype; object dtypes cannot be mapped."""
    kind = dtype.kind
    if kind == "b":
        return DataType.boolean
    if kind in ("i", "u"):
        if dtype.itemsize < 4 or (kind == "i" and dtype.itemsize == 4):
            return DataType.integer
        if dtype.itemsize < 8 or (kind == "i" and dtype.itemsize == 8):
            return DataType.long
    elif kind == "f":
        if dtype.itemsize <= 4:
            return DataType.float
        if dtype.itemsize <= 8:
            return DataType.double
    elif kind == "U":
        return DataType.string
    elif kind == "S":
        return DataType.binary
    elif kind == "M":
        return DataType.datetime
    raise RunyardError(f"Unsupported numpy data type '{dtype}', kind '{kind}'")


def _infer_scalar(data: Any) -> DataType:
    found = _SCALAR_TYPES.get(type(data))
    if found is not None:
        return found
    if DataType.check_type(DataType.datetime, data) or isinstance(data, pd.Timestamp):
        return DataType.datetime
    raise InvalidParameterValue(f"Data {data} is not one of the supported DataType")


def _infer_array(data: Any) -> Array | None:
    """The Array type of a list's items; None when there is no item to learn from."""
    result: Array | None = None
    for item in data:
        dtype = infer_datatype(item)
        if dtype is None:
            continue
        if result is None:
            result = Array(dtype)
        elif isinstance(result.dtype, DataType):
            if not isinstance(dtype, AnyType) and dtype != result.dtype:
                raise InvalidParameterValue(MULTIPLE_TYPES_ERROR_MSG)
        else:
            try:
                result = Array(result.dtype._merge(dtype))
            except RunyardError as exc:
                raise InvalidParameterValue(MULTIPLE_TYPES_ERROR_MSG) from exc
    return result


def infer_datatype(data: Any) -> SpecType | None:
    """The type of one value: dict → Object, list/array → Array, scalar → DataType.

    None, NaN and empty containers are ``AnyType``; an empty numpy array gives None (unknown).
    """
    if (not isinstance(data, (list, dict, np.ndarray)) and is_none_or_nan(data)) or (
        isinstance(data, (list, dict)) and not data
    ):
        return AnyType()
    if isinstance(data, dict):
        props = []
        for key, value in data.items():
            dtype = infer_datatype(value)
            if dtype is None:
                raise RunyardError("Dictionary value must not be an empty numpy array.")
            props.append(Property(str(key), dtype, required=not isinstance(dtype, AnyType)))
        return Object(props)
    if isinstance(data, (list, np.ndarray)):
        return _infer_array(data)
    return _infer_scalar(data)


def _colspec_type(data: Any) -> SpecType:
    dtype = infer_datatype(data)
    if dtype is None:
        raise RunyardError(
            f"Numpy array must include at least one non-empty item. Invalid input `{data}`."
        )
    return dtype


def _infer_required(values: Any) -> bool:
    if isinstance(values, (list, pd.Series)):
        return not any(is_none_or_nan(x) for x in values)
    return not is_none_or_nan(values)


def infer_pandas_column(col: pd.Series) -> SpecType:
    """The type of a pandas column: its dtype, or for object columns, its values."""
    if len(col.values.shape) > 1:
        raise RunyardError(f"Expected 1d array, got array with shape {col.shape}")
    if col.dtype.kind == "O":
        col = col.infer_objects()
    if col.dtype.kind != "O":
        return numpy_dtype_to_datatype(col.dtype)
    try:
        array_type = _colspec_type(col.to_list())
    except RunyardError as exc:
        if pd.api.types.is_string_dtype(col):
            return DataType.string
        raise RunyardError(f"Failed to infer schema for pandas.Series {col}. Error: {exc}") from exc
    if isinstance(array_type, Array):
        return array_type.dtype
    return DataType.string


def _records_schema(rows: list[dict[str, Any]]) -> Schema:
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    specs = []
    for name, values in columns.items():
        column_type = _colspec_type(values)
        assert isinstance(column_type, Array)
        required = all(row.get(name) is not None for row in rows)
        specs.append(ColSpec(column_type.dtype, name=name, required=required))
    return Schema(specs)


def _dict_schema(data: dict[Any, Any]) -> Schema:
    if data and all(isinstance(v, np.ndarray) for v in data.values()):
        return Schema(
            [
                TensorSpec(clean_tensor_type(arr.dtype), _tensor_shape(arr), name=name)
                for name, arr in data.items()
            ]
        )
    if any(not isinstance(key, str) for key in data):
        raise RunyardError("The dictionary keys are not all strings.")
    return Schema(
        [
            ColSpec(_colspec_type(value), name=name, required=_infer_required(value))
            for name, value in data.items()
        ]
    )


_EXPECTED_INPUTS = (
    "Failed to infer schema. Expected one of the following types:\n"
    "- pandas.DataFrame\n- pandas.Series\n- numpy.ndarray\n"
    "- dictionary of (name -> numpy.ndarray)\n- scipy.sparse.csr_matrix\n"
    "- scipy.sparse.csc_matrix\n- DataType\n- List[DataType]\n"
    "- Dict[str, Union[DataType, List, Dict]]\n- List[Dict[str, Union[DataType, List, Dict]]]\n"
)


def _infer_schema(data: Any) -> Schema:
    if isinstance(data, list) and not data:
        # MLflow < 2.9 inferred an empty list as a string column; kept for compatibility.
        return Schema([ColSpec(DataType.string)])
    if isinstance(data, list) and all(isinstance(v, dict) for v in data):
        return _records_schema(data)
    if isinstance(data, dict):
        return _dict_schema(data)
    if isinstance(data, pd.Series):
        name = data.name if data.name is not None else None
        return Schema(
            [ColSpec(infer_pandas_column(data), name=name, required=_infer_required(data))]
        )
    if isinstance(data, pd.DataFrame):
        columns = [
            ColSpec(infer_pandas_column(data[c]), name=c, required=_infer_required(data[c]))
            for c in data.columns
        ]
        return Schema(columns)
    if isinstance(data, np.ndarray):
        return Schema([TensorSpec(clean_tensor_type(data.dtype), _tensor_shape(data))])
    if is_sparse_matrix(data):
        return Schema([TensorSpec(clean_tensor_type(data.data.dtype), _tensor_shape(data))])
    if isinstance(data, list):
        list_type = _colspec_type(data)
        item_type = list_type.dtype if isinstance(list_type, Array) else list_type
        return Schema([ColSpec(item_type)])
    try:
        return Schema([ColSpec(_colspec_type(data))])
    except RunyardError as exc:
        raise InvalidParameterValue(
            f"{_EXPECTED_INPUTS}but got '{data}'.\nError: {exc.message}"
        ) from exc


def infer_schema(data: Any) -> Schema:
    """Infer the Schema of a dataset (see the module docstring for the accepted kinds)."""
    global _hinted_integers
    schema = _infer_schema(data)
    if (
        not _hinted_integers
        and not schema.is_tensor_spec()
        and any(t in (DataType.integer, DataType.long) for t in schema.input_types())
    ):
        _hinted_integers = True
        _logger.info(_INTEGER_HINT)
    return schema


def _array_depth(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.ndim)
    if isinstance(value, list):
        return max((_array_depth(item) for item in value), default=0) + 1
    return 0


def _param_type_and_shape(value: Any) -> tuple[DataType | Object, tuple[int, ...] | None]:
    if isinstance(value, (list, np.ndarray)):
        ndim = _array_depth(value)
        if ndim != 1:
            raise InvalidParameterValue(
                f"Expected parameters to be 1D array or scalar, got {ndim}D array"
            )
        if len(value) and all(DataType.check_type(DataType.datetime, v) for v in value):
            return DataType.datetime, (-1,)
        return numpy_dtype_to_datatype(np.array(value).dtype), (-1,)
    if DataType.check_type(DataType.datetime, value):
        return DataType.datetime, None
    if np.isscalar(value):
        try:
            return numpy_dtype_to_datatype(np.array(value).dtype), None
        except RunyardError as exc:
            raise InvalidParameterValue(
                f"Failed to infer schema for parameter {value!s}: {exc!r}"
            ) from exc
    if isinstance(value, dict):
        object_type = _dict_schema({"value": value}).inputs[0].type
        assert isinstance(object_type, Object)
        return object_type, None
    raise InvalidParameterValue(
        f"Expected parameters to be 1D array or scalar, got {type(value).__name__}"
    )


def infer_param_schema(parameters: dict[str, Any]) -> ParamSchema:
    """Infer a ParamSchema whose defaults are the given values."""
    if not isinstance(parameters, dict):
        raise InvalidParameterValue(
            f"Expected parameters to be dict, got {type(parameters).__name__}"
        )
    specs = []
    invalid = []
    for name, value in parameters.items():
        try:
            dtype, shape = _param_type_and_shape(value)
            specs.append(ParamSpec(name, dtype, deepcopy(value), shape))
        except RunyardError as exc:
            invalid.append((name, value, exc.message))
    if invalid:
        raise InvalidParameterValue(f"Failed to infer schema for parameters: {invalid}")
    return ParamSchema(specs)
