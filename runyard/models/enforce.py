"""Schema enforcement at predict time (MLflow's ``_enforce_schema`` / ``_enforce_params_schema``).

Column schemas: the input becomes a DataFrame (from a DataFrame, Series, ndarray, dict, list or
scalar); named schemas require their required columns ("Model is missing inputs [...]"), ignore
extra columns and reorder to the schema; each column is converted only where that is safe.
Tensor schemas: rank, fixed dimensions and dtype must match (DataFrame columns are reshaped).
Params: unknown ones are dropped with a logged warning, missing ones take their defaults, values
are type-checked.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.models.infer import clean_tensor_type, is_sparse_matrix
from runyard.types.coerce import enforce_column, enforce_value
from runyard.types.composite import Array, Object
from runyard.types.datatype import DataType
from runyard.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = ["enforce_params", "enforce_schema", "validate_prediction_input", "validate_schema"]

_logger = logging.getLogger(__name__)


def _is_scalar(value: Any) -> bool:
    return bool(np.isscalar(value)) or value is None


def _enforce_tensor_spec(values: Any, spec: TensorSpec) -> Any:
    expected_shape = spec.shape
    actual_shape = values.shape
    actual_type = values.dtype if isinstance(values, np.ndarray) else values.data.dtype
    # Ragged arrays (object arrays of arrays) pass when the spec leaves room for them.
    if expected_shape == (-1,) and spec.type == np.dtype("O"):
        return values
    if (
        len(expected_shape) > 1
        and -1 in expected_shape[1:]
        and len(actual_shape) == 1
        and actual_type == np.dtype("O")
    ):
        return values
    if len(expected_shape) != len(actual_shape) or any(
        e not in (-1, a) for e, a in zip(expected_shape, actual_shape, strict=True)
    ):
        raise RunyardError(
            f"Shape of input {actual_shape} does not match expected shape {expected_shape}."
        )
    if clean_tensor_type(actual_type) != spec.type:
        raise RunyardError(
            f"dtype of input {actual_type} does not match expected dtype {spec.type}"
        )
    return values


def _reshape_column(name: Any, column: pd.Series, spec: TensorSpec) -> Any:
    label = f"input {name}" if name else "the unnamed input"
    if spec.shape[0] != -1 or -1 in spec.shape[1:]:
        raise RunyardError(
            "For pandas dataframe input, the first dimension of shape must be a variable "
            "dimension and other dimensions must be fixed, but in model signature the shape "
            f"of {label} is {spec.shape}."
        )
    first = column.iloc[0]
    if np.isscalar(first):
        if spec.shape in ((-1,), (-1, 1)):
            return _enforce_tensor_spec(np.array(column, dtype=spec.type).reshape(spec.shape), spec)
        raise InvalidParameterValue(
            f"The input pandas dataframe column '{name}' contains scalar values, which requires "
            f"the shape to be (-1,) or (-1, 1), but got tensor spec shape of {spec.shape}."
        )
    if isinstance(first, (list, np.ndarray)):
        try:
            stacked = np.vstack(column.tolist()).reshape(spec.shape)
            if isinstance(first, list):
                stacked = stacked.astype(spec.type)
        except ValueError:
            stacked = None
        if stacked is None or len(stacked) != len(column):
            raise InvalidParameterValue(
                f"The value in the Input DataFrame column '{name}' could not be converted to the "
                f"expected shape of: '{spec.shape}'. Ensure that each of the input list elements "
                "are of uniform length and that the data can be coerced to the tensor type "
                f"'{spec.type}'"
            )
        return stacked if isinstance(first, list) else _enforce_tensor_spec(stacked, spec)
    raise InvalidParameterValue(
        "Because the model signature requires tensor spec input, the input pandas dataframe "
        "values should be either scalar value, python list containing scalar values or numpy "
        "array containing scalar values, other types are not supported."
    )


def _enforce_named_tensors(data: Any, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in zip(schema.input_names(), schema.inputs, strict=True):
        if isinstance(data, dict):
            if not isinstance(data[name], np.ndarray):
                raise InvalidParameterValue(
                    "This model contains a tensor-based model signature with input names, which "
                    "suggests a dictionary input mapping input name to a numpy array, but a dict "
                    f"with value type {type(data[name])} was found."
                )
            out[str(name)] = _enforce_tensor_spec(data[name], spec)
        elif isinstance(data, pd.DataFrame):
            out[str(name)] = _reshape_column(name, data[name], spec)
        else:
            raise InvalidParameterValue(
                "This model contains a tensor-based model signature with input names, which "
                "suggests a dictionary input mapping input name to tensor, or a pandas DataFrame "
                "input containing columns mapping input name to flattened list value from "
                f"tensor, but an input of type {type(data)} was found."
            )
    return out


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    if schema.has_input_names():
        return _enforce_named_tensors(data, schema)
    spec = schema.inputs[0]
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise RunyardError("Input DataFrame is empty.")
        if len(data.columns) == 1:
            return _reshape_column(None, data[data.columns[0]], spec)
        if spec.shape != (-1, len(data.columns)):
            raise InvalidParameterValue(
                "This model contains a model signature with an unnamed input. Since the input "
                "data is a pandas DataFrame containing multiple columns, the input shape must be "
                "of the structure (-1, number_of_dataframe_columns). Instead, the input "
                f"DataFrame passed had {len(data.columns)} columns and an input shape of "
                f"{spec.shape} with all values within the DataFrame of scalar type. Please adjust "
                "the passed in DataFrame to match the expected structure"
            )
        return _enforce_tensor_spec(data.to_numpy(), spec)
    if isinstance(data, np.ndarray) or is_sparse_matrix(data):
        return _enforce_tensor_spec(data, spec)
    raise InvalidParameterValue(
        "This model contains a tensor-based model signature with no input names, which suggests "
        "a numpy array input or a pandas dataframe input with proper column values, but an input "
        f"of type {type(data)} was found."
    )


def _dict_to_frame(data: dict[Any, Any], schema: Schema) -> pd.DataFrame:
    composite = any(isinstance(spec.type, (Array, Object)) for spec in schema.inputs)
    one_row = all(
        _is_scalar(v) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
        for v in data.values()
    )
    try:
        if composite or one_row:
            return pd.DataFrame([data])
        if any(isinstance(v, np.ndarray) and v.ndim > 1 for v in data.values()):
            return pd.DataFrame(
                {
                    k: v.tolist() if isinstance(v, np.ndarray) and v.ndim > 1 else v
                    for k, v in data.items()
                }
            )
        return pd.DataFrame(data)
    except ValueError as exc:
        raise RunyardError(
            "This model contains a column-based signature, which suggests a DataFrame input. "
            f"There was an error casting the input data to a DataFrame: {exc}"
        ) from exc


def _as_frame(data: Any, schema: Schema) -> pd.DataFrame:
    if isinstance(data, pd.Series):
        return pd.DataFrame(data)
    if np.isscalar(data):
        return pd.DataFrame([data])
    if isinstance(data, dict):
        return _dict_to_frame(data, schema)
    if isinstance(data, (list, np.ndarray)):
        return pd.DataFrame(data)
    if not isinstance(data, pd.DataFrame):
        raise RunyardError(f"Expected input to be DataFrame. Found: {type(data).__name__}")
    return data


def _check_columns(data: Any, schema: Schema) -> Any:
    """Raise on missing required inputs; return ``data`` (a lone column array becomes a dict)."""
    required = schema.required_input_names()
    actual: set[Any] = set()
    if len(required) == 1 and isinstance(data, np.ndarray):
        data = {required[0]: data}
        actual = set(required)
    elif isinstance(data, pd.DataFrame):
        actual = set(data.columns)
    elif isinstance(data, dict):
        actual = set(data)
    missing = [c for c in required if c not in actual]
    extra = [c for c in actual if c not in required and c not in schema.optional_input_names()]
    if missing:
        message = f"Model is missing inputs {missing}."
        if extra:
            message += f" Note that there were extra inputs: {extra}."
        raise RunyardError(message)
    if extra:
        _logger.warning(
            "Found extra inputs in the model input that are not defined in the model signature: "
            "`%s`. These inputs will be ignored.",
            extra,
        )
    return data


def _enforce_named_columns(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    out: dict[Any, pd.Series] = {}
    for spec in schema.inputs:
        if spec.name not in frame:
            # Required columns were checked already; absent optional ones stay absent.
            continue
        out[spec.name] = _enforce_one_column(spec.name, frame[spec.name], spec.type, spec.required)
    return pd.DataFrame(out)


def _enforce_one_column(name: Any, column: pd.Series, spec_type: Any, required: bool) -> pd.Series:
    if isinstance(spec_type, DataType):
        return enforce_column(name, column, spec_type)
    values = [enforce_value(v, spec_type, required) for v in column]
    return pd.Series(values, index=column.index, name=name, dtype=object)


def _enforce_unnamed_columns(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    if len(frame.columns) < len(schema.inputs):
        raise RunyardError(
            f"Model inference is missing inputs. The model signature declares {len(schema.inputs)}"
            f" inputs  but the provided value only has {len(frame.columns)} inputs. Note: the "
            "inputs were not named in the signature so we can only verify their count."
        )
    out = {
        col: _enforce_one_column(col, frame[col], spec.type, spec.required)
        for col, spec in zip(frame.columns, schema.inputs, strict=False)
    }
    return pd.DataFrame(out)


def enforce_schema(data: Any, schema: Schema) -> Any:
    """Return ``data`` conformed to ``schema``, or raise naming what does not fit.

    Column schemas return a DataFrame; tensor schemas return an ndarray (unnamed) or a dict of
    ndarrays (named).
    """
    if not schema.is_tensor_spec():
        data = _as_frame(data, schema)
    elif isinstance(data, pd.Series):
        data = pd.DataFrame(data)
    if schema.has_input_names():
        data = _check_columns(data, schema)
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    if schema.has_input_names():
        return _enforce_named_columns(data, schema)
    return _enforce_unnamed_columns(data, schema)


def validate_schema(data: Any, expected_schema: Schema) -> None:
    """Raise if ``data`` does not conform to ``expected_schema`` (MLflow's ``validate_schema``)."""
    enforce_schema(data, expected_schema)


def enforce_params(
    params: dict[str, Any] | None, schema: ParamSchema | None
) -> dict[str, Any] | None:
    """Params checked against ``schema``: defaults filled, unknown names dropped (logged)."""
    if schema is None:
        if params in (None, {}):
            return params
        ignored = (
            f"Ignoring provided params: {list(params)}"
            if isinstance(params, dict)
            else "Ignoring invalid params (not a dictionary)."
        )
        _logger.warning(
            "`params` can only be specified at inference time if the model signature defines a "
            "params schema. This model does not define a params schema. %s",
            ignored,
        )
        return {}
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise InvalidParameterValue(
            f"Parameters must be a dictionary. Got type '{type(params).__name__}'."
        )
    params = {str(k): v for k, v in params.items()}
    allowed = {spec.name for spec in schema.params}
    ignored_keys = sorted(set(params) - allowed)
    if ignored_keys:
        _logger.warning(
            "Unrecognized params %s are ignored for inference. Supported params are: %s. "
            "To enable them, please add corresponding schema in ModelSignature.",
            ignored_keys,
            allowed,
        )
    result: dict[str, Any] = {}
    invalid: set[tuple[str, str]] = set()
    for spec in schema.params:
        if spec.name not in params:
            result[spec.name] = spec.default
            continue
        try:
            result[spec.name] = ParamSpec.validate_param_spec(params[spec.name], spec)
        except RunyardError as exc:
            invalid.add((spec.name, exc.message))
    if invalid:
        raise InvalidParameterValue(f"Invalid parameters found: {invalid!r}")
    return result


def validate_prediction_input(
    data: Any,
    params: dict[str, Any] | None,
    input_schema: Schema | None,
    params_schema: ParamSchema | None,
) -> tuple[Any, dict[str, Any] | None]:
    """What ``PyFuncModel.predict`` passes to the model: enforced data and params.

    A schema violation raises INVALID_PARAMETER_VALUE "Failed to enforce schema of data ...".
    """
    if input_schema is not None:
        try:
            data = enforce_schema(data, input_schema)
        except RunyardError as exc:
            raise InvalidParameterValue(
                f"Failed to enforce schema of data '{data}' with schema '{input_schema}'. "
                f"Error: {exc.message}",
                error_class="SCHEMA_ENFORCEMENT_FAILED",
            ) from exc
        except (TypeError, ValueError) as exc:
            raise InvalidParameterValue(
                f"Failed to enforce schema of data '{data}' with schema '{input_schema}'. "
                f"Error: {exc}",
                error_class="SCHEMA_ENFORCEMENT_FAILED",
            ) from exc
    return data, enforce_params(params, params_schema)
