"""Checking and safely converting values against signature types (MLflow's enforcement rules).

Columns: ``enforce_column`` allows only widening conversions (int→long, float→double,
int→double, object→string, any datetime precision→datetime, decimal→double); anything else raises
naming the column and both types. Single values (items of arrays, object properties, map values):
``enforce_value``. Parameters: ``enforce_param_value`` returns plain Python values.
"""

from __future__ import annotations

import datetime as dt
import decimal
from copy import deepcopy
from typing import Any

import numpy as np
import pandas as pd

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.types.composite import AnyType, Array, Map, Object, Property, SpecType, type_to_dict
from runyard.types.datatype import DataType

__all__ = [
    "enforce_column",
    "enforce_object",
    "enforce_param_value",
    "enforce_value",
    "is_none_or_nan",
]

_MISSING_VALUES_HINT = (
    " Hint: the type mismatch is likely caused by missing values. Integer columns in python can "
    "not represent missing values and are therefore encoded as floats. The best way to avoid this "
    "problem is to infer the model schema based on a realistic data sample (training dataset) "
    "that includes missing values. Alternatively, you can declare integer columns as doubles "
    "(float64) whenever these columns may have missing values. See `Handling Integers With "
    "Missing Values <https://www.mlflow.org/docs/latest/models.html#"
    "handling-integers-with-missing-values>`_ for more details."
)


def is_none_or_nan(value: Any) -> bool:
    """True for None, NaN floats, ``pd.NA`` and ``pd.NaT`` (never for containers)."""
    if isinstance(value, float):
        return bool(np.isnan(value))
    return value is None or value is pd.NA or value is pd.NaT


def _to_datetime_ns(name: Any, values: pd.Series) -> pd.Series:
    try:
        return values.astype(np.dtype("datetime64[ns]"))
    except (TypeError, ValueError) as exc:
        raise RunyardError(
            f"Failed to convert column {name} from type {values.dtype} to datetime. "
            "Please ensure that the input data of datetime column only contains timezone-naive "
            f"datetime objects. Error: {exc}"
        ) from exc


def _is_upcast(actual: np.dtype[Any], target: np.dtype[Any]) -> bool:
    if actual.kind == target.kind:
        return actual.itemsize <= target.itemsize
    if actual.kind == "u" and target.kind == "i":
        return actual.itemsize < target.itemsize
    # (u)int of up to 48 bits fits a double's mantissa exactly.
    return actual.kind in ("i", "u") and target == np.float64 and actual.itemsize <= 6


def enforce_column(name: Any, values: pd.Series, t: DataType) -> pd.Series:
    """Return ``values`` as type ``t`` if the conversion is safe, else raise naming the column."""
    if values.dtype == object and t not in (DataType.binary, DataType.string):
        values = values.infer_objects()
    is_text = values.dtype == object or isinstance(values.dtype, pd.StringDtype)
    if t in (DataType.string, DataType.binary) and is_text:
        # Objects may hold None; casting them would turn None into the string "None".
        return values
    if values.dtype == t.to_pandas() or values.dtype == t.to_numpy():
        return values
    if t is DataType.binary and values.dtype.kind == "S":
        return values
    if t is DataType.datetime and (values.dtype.kind == "M" or values.dtype == object):
        return _to_datetime_ns(name, values)
    if t is DataType.boolean and values.dtype == object:
        # A cast would turn None into False.
        return values
    if (
        t is DataType.double
        and values.dtype == object
        and len(values)
        and all(isinstance(v, decimal.Decimal) or is_none_or_nan(v) for v in values)
    ):
        return pd.to_numeric(values, errors="raise")
    target = t.to_numpy()
    actual = values.dtype
    if isinstance(actual, np.dtype) and _is_upcast(actual, target):
        return values.astype(target)
    if (
        actual == np.int64
        and target.kind == "f"
        and all(pd.isnull(v) or v in (0, 1) for v in values)
    ):
        # A 0/1 long column is what a boolean-like float feature looks like after JSON parsing.
        return values.astype(target)
    hint = ""
    if (
        actual == np.float64
        and target.kind in ("i", "u")
        and values.hasnans
        and all(pd.isnull(v) or int(v) == v for v in values)
    ):
        hint = _MISSING_VALUES_HINT
    raise RunyardError(
        f"Incompatible input types for column {name}. "
        f"Can not safely convert {actual} to {target}.{hint}"
    )


def _enforce_scalar(data: Any, dtype: DataType, required: bool) -> Any:
    if not required and is_none_or_nan(data):
        return None
    if not np.isscalar(data) and not isinstance(data, (dt.date, np.datetime64)):
        raise RunyardError(f"Expected data to be scalar, got {type(data).__name__}")
    try:
        return enforce_column("", pd.Series([data]), dtype).iloc[0]
    except RunyardError:
        raise InvalidParameterValue(
            f"Failed to enforce schema of data `{data!s}` with dtype `{dtype.name}`"
        ) from None


def _enforce_array(data: Any, arr: Array, required: bool) -> Any:
    if (not required or isinstance(arr.dtype, AnyType)) and (
        data is None or (isinstance(data, (list, np.ndarray)) and len(data) == 0)
    ):
        return data
    if not isinstance(data, (list, np.ndarray)):
        raise RunyardError(f"Expected data to be list or numpy array, got {type(data).__name__}")
    if isinstance(arr.dtype, DataType):
        if len(data) == 0:
            return data
        converted = enforce_column("", pd.Series(list(data)), arr.dtype)
        out = converted.to_numpy(dtype=arr.dtype.to_numpy())
        return out.tolist() if isinstance(data, list) else out
    items = [enforce_value(x, arr.dtype, required=required) for x in data]
    return np.array(items) if isinstance(data, np.ndarray) else items


def enforce_object(data: Any, obj: Object, required: bool = True) -> Any:
    """Check a dict against an Object type: required keys present, no unknown keys, typed values."""
    if not required and (data is None or data == {}):
        return data
    if not isinstance(data, dict):
        raise RunyardError(
            f"Failed to enforce schema of '{data}' with type '{obj}'. "
            f"Expected data to be dictionary, got {type(data).__name__}"
        )
    props: dict[str, Property] = {p.name: p for p in obj.properties}
    missing = {k for k, p in props.items() if p.required} - data.keys()
    if missing:
        raise RunyardError(f"Missing required properties: {missing}")
    unknown = data.keys() - props.keys()
    if unknown:
        raise RunyardError(f"Invalid properties not defined in the schema found: {unknown}")
    for key, value in data.items():
        prop = props[key]
        try:
            data[key] = enforce_value(value, prop.dtype, required=prop.required)
        except RunyardError as exc:
            raise RunyardError(
                f"Failed to enforce schema for key `{key}`. "
                f"Expected type {type_to_dict(prop.dtype)['type']}, "
                f"received type {type(value).__name__}"
            ) from exc
    return data


def _enforce_map(data: Any, map_type: Map, required: bool) -> Any:
    if (not required or isinstance(map_type.value_type, AnyType)) and (data is None or data == {}):
        return data
    if not isinstance(data, dict):
        raise RunyardError(f"Expected data to be a dict, got {type(data).__name__}")
    if not all(isinstance(k, str) for k in data):
        raise RunyardError("Expected all keys in the map type data are string type.")
    return {k: enforce_value(v, map_type.value_type, required=required) for k, v in data.items()}


def enforce_value(data: Any, data_type: SpecType, required: bool = True) -> Any:
    """Check (and safely convert) one value against a scalar or composite type."""
    if isinstance(data_type, DataType):
        return _enforce_scalar(data, data_type, required)
    if isinstance(data_type, Array):
        return _enforce_array(data, data_type, required)
    if isinstance(data_type, Object):
        return enforce_object(data, data_type, required)
    if isinstance(data_type, Map):
        return _enforce_map(data, data_type, required)
    if isinstance(data_type, AnyType):
        return data
    raise RunyardError(f"Invalid data type: {data_type!r}")


#: Parameter value types that may be widened to the declared type.
_PARAM_WIDENING = {
    DataType.long: (DataType.integer,),
    DataType.float: (DataType.integer, DataType.long),
    DataType.double: (DataType.integer, DataType.long, DataType.float),
}


def _param_datetime(value: Any) -> Any:
    try:
        converted = np.datetime64(value).item()
    except ValueError as exc:
        raise InvalidParameterValue(
            f"Failed to convert value `{value}` from type `{type(value)}` to `datetime`"
        ) from exc
    if isinstance(converted, int):
        raise InvalidParameterValue(
            "Failed to convert value to `datetime`. "
            f"It must be convertible to datetime.date/datetime, got `{value}`"
        )
    return converted


def enforce_param_value(value: Any, dtype: DataType | Object) -> Any:
    """One parameter value as a plain Python value of ``dtype`` (widening allowed), or raise."""
    if value is None:
        return None
    if isinstance(dtype, Object):
        # Validate a copy: conversion may produce numpy values, the model gets the original.
        enforce_object(deepcopy(value), dtype)
        return value
    if dtype is DataType.datetime:
        return _param_datetime(value)
    if not np.isscalar(value):
        raise InvalidParameterValue(f"Value must be a scalar for type `{dtype}`, got `{value}`")
    if DataType.check_type(dtype, value) or any(
        DataType.check_type(t, value) for t in _PARAM_WIDENING.get(dtype, ())
    ):
        try:
            return dtype.to_python()(value)
        except ValueError as exc:
            raise InvalidParameterValue(
                f"Failed to convert value `{value!s}` from type `{type(value)}` to `{dtype}`"
            ) from exc
    raise InvalidParameterValue(
        f"Can not safely convert `{type(value)}` to `{dtype}` for value `{value!s}`"
    )
