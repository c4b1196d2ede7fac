"""Scoring payloads: MLflow's JSON request format of ``/invocations`` (and validate_serving_input).

A request body is a JSON object with exactly one data key and optional ``params``::

    {"dataframe_split": {"columns": [...], "data": [[...]], "index"?: [...]}}
    {"dataframe_records": [{"col": value, ...}, ...]}
    {"instances": [...]}      # TF-serving rows: values, or records turned into columns
    {"inputs": ...}           # TF-serving columns: a dict of lists, a list, nested lists

When the model has an input schema, values are cast to it while parsing (base64 for binary,
ISO strings for datetimes, tensor dtypes). Bodies carrying ``messages``, ``prompt`` or ``input``
(the unified LLM format) pass through as a dict. Bad payloads raise MLflow's messages:
``BAD_REQUEST "Invalid input. ..."``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd

from runyard.errors import RunyardError
from runyard.types.coerce import enforce_object, enforce_value
from runyard.types.composite import AnyType, Array, Map, Object
from runyard.types.datatype import DataType
from runyard.types.schema import ColSpec, ParamSchema, Schema, TensorSpec

__all__ = [
    "DF_RECORDS",
    "DF_SPLIT",
    "INPUTS",
    "INSTANCES",
    "NumpyEncoder",
    "dataframe_from_parsed_json",
    "decode_json_payload",
    "invalid_input",
    "parse_scoring_payload",
    "parse_tf_serving_input",
    "to_jsonable",
]

DF_RECORDS = "dataframe_records"
DF_SPLIT = "dataframe_split"
INSTANCES = "instances"
INPUTS = "inputs"
PARAMS = "params"
SUPPORTED_FORMATS = frozenset({DF_RECORDS, DF_SPLIT, INSTANCES, INPUTS})
LLM_KEYS = frozenset({"messages", "prompt", "input"})

# MLflow prints the set literal; its order is fixed here so messages are stable.
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'inputs', 'dataframe_records', 'dataframe_split', 'instances'}"
)
SCORING_PROTOCOL_CHANGE_INFO = (
    "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are"
    " seeing this error, you are likely using an outdated scoring request format. To resolve the"
    " error, either update your request format or adjust your MLflow Model's requirements file to"
    " specify an older version of MLflow (for example, change the 'mlflow' requirement specifier"
    " to 'mlflow==1.30.0'). If you are making a request using the MLflow client"
    " (e.g. via `mlflow.pyfunc.spark_udf()`), upgrade your MLflow client to a version >= 2.0 in"
    " order to use the new request format. For more information about the updated MLflow"
    " Model scoring protocol in MLflow 2.0, see"
    " https://mlflow.org/docs/latest/models.html#deploy-mlflow-models."
)


def invalid_input(message: str) -> RunyardError:
    """MLflow's ``BAD_REQUEST "Invalid input. <message>"`` error."""
    return RunyardError(f"Invalid input. {message}", error_code="BAD_REQUEST")


class NumpyEncoder(json.JSONEncoder):
    """JSON encoder for numpy/pandas values: arrays → lists, bytes → base64, dates → ISO."""

    def default(self, o: Any) -> Any:
        """Convert what the standard encoder cannot."""
        converted, ok = _convert(o)
        return converted if ok else super().default(o)


def _b64(value: bytes | bytearray) -> str:
    return base64.encodebytes(bytes(value)).decode("ascii")


def _convert(o: Any) -> tuple[Any, bool]:
    if isinstance(o, np.ndarray):
        if o.dtype == object:
            return [_convert(x)[0] for x in o.tolist()], True
        if o.dtype.kind == "S":
            return [_b64(x) for x in o.ravel().tolist()], True
        return o.tolist(), True
    if isinstance(o, np.datetime64):
        return str(np.datetime_as_string(o)), True
    if isinstance(o, np.generic):
        return o.item(), True
    if isinstance(o, (bytes, bytearray)):
        return _b64(o), True
    if isinstance(o, (pd.Timestamp, dt.date, dt.datetime, dt.time)):
        return o.isoformat(), True
    return o, False


def to_jsonable(data: Any) -> Any:
    """A JSON-friendly form of model output: DataFrame → records, Series → records, array → list."""
    if isinstance(data, np.ndarray):
        return data.tolist()
    if isinstance(data, pd.DataFrame):
        return data.to_dict(orient="records")
    if isinstance(data, pd.Series):
        return pd.DataFrame(data).to_dict(orient="records")
    return data


def decode_json_payload(body: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Parse a request body into a dict, raising MLflow's messages for bad JSON or a list."""
    if isinstance(body, dict):
        return body
    try:
        decoded = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid_input(
            "Ensure that input is a valid JSON formatted string. "
            f"Error: '{exc!r}'\nInput: \n{body!s}\n"
        ) from exc
    if isinstance(decoded, dict):
        return decoded
    if isinstance(decoded, list):
        raise invalid_input(f"{REQUIRED_INPUT_FORMAT}. Received a list.")
    raise invalid_input(
        f"{REQUIRED_INPUT_FORMAT}. Received unexpected input type '{type(decoded)}."
    )


def _cast_column(
    pdf: pd.DataFrame, name: Any, spec_type: Any, required: bool, tensor: bool
) -> None:
    column = pdf[name]
    if spec_type is DataType.binary:
        pdf[name] = column.map(lambda x: base64.decodebytes(bytes(x, "utf8")))
    elif tensor and len(column) and isinstance(column.iloc[0], list):
        # Reshaping list cells into the tensor happens at enforcement time.
        return
    elif isinstance(spec_type, (Array, Map)):
        pdf[name] = column.map(lambda x: enforce_value(x, spec_type, required=required))
    elif isinstance(spec_type, Object):
        pdf[name] = column.map(lambda x: enforce_object(x, spec_type, required=required))
    elif isinstance(spec_type, AnyType):
        return
    elif spec_type is DataType.datetime:
        parsed = pd.to_datetime(column)
        pdf[name] = parsed.dt.as_unit("ns") if hasattr(parsed, "dt") else parsed
    else:
        target = spec_type.to_pandas() if isinstance(spec_type, DataType) else spec_type
        is_text = target is object or (isinstance(target, np.dtype) and target.kind == "U")
        if is_text and isinstance(column.dtype, pd.StringDtype):
            return
        pdf[name] = column.astype(target)


def cast_dataframe(pdf: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Cast parsed JSON columns to the schema's types (MLflow's failure message on error)."""
    if schema.has_input_names():
        pairs = list(zip(schema.input_names(), schema.input_types(), strict=True))
    elif schema.is_tensor_spec() and len(schema.inputs) == 1:
        pairs = [(c, schema.input_types()[0]) for c in pdf.columns]
    else:
        n = min(len(schema.inputs), len(pdf.columns))
        pairs = list(zip(pdf.columns[:n], schema.input_types()[:n], strict=True))
    required = set(schema.required_input_names())
    for name, spec_type in pairs:
        if name not in pdf.columns:
            continue
        try:
            _cast_column(pdf, name, spec_type, name in required, schema.is_tensor_spec())
        except Exception as exc:  # noqa: BLE001 - any failed cast is reported the same way
            target = spec_type.to_pandas() if isinstance(spec_type, DataType) else spec_type
            raise invalid_input(
                "Data is not compatible with model signature. "
                f"Failed to convert column {name} to type '{target}'. Error: '{exc!r}'"
            ) from exc
    return pdf


def dataframe_from_parsed_json(
    decoded: Any, pandas_orient: str, schema: Schema | None = None
) -> pd.DataFrame:
    """Build a DataFrame from ``split`` or ``records`` JSON, cast to ``schema`` if given."""
    if pandas_orient == "records":
        if not isinstance(decoded, list):
            kind = "dictionary" if isinstance(decoded, dict) else f"type {type(decoded)}"
            raise invalid_input(f"Dataframe records format must be a list of records. Got {kind}.")
        try:
            pdf = pd.DataFrame(data=decoded)
        except Exception as exc:  # noqa: BLE001 - pandas raises many kinds
            raise invalid_input(
                "Provided dataframe_records field is not a valid dataframe representation in "
                f"'records' format. Error: '{exc}'"
            ) from exc
    else:
        if not isinstance(decoded, dict):
            kind = "list" if isinstance(decoded, list) else f"type {type(decoded)}"
            raise invalid_input(f"Dataframe split format must be a dictionary. Got {kind}.")
        keys = set(decoded)
        if "data" not in keys or keys - {"columns", "data", "index"}:
            raise invalid_input(
                "Dataframe split format must have 'data' field and optionally 'columns' "
                f"and 'index' fields. Got {keys}.'"
            )
        try:
            pdf = pd.DataFrame(
                index=decoded.get("index"), columns=decoded.get("columns"), data=decoded["data"]
            )
        except Exception as exc:  # noqa: BLE001 - pandas raises many kinds
            raise invalid_input(
                "Provided dataframe_split field is not a valid dataframe representation in "
                f"'split' format. Error: '{exc}'"
            ) from exc
    return cast_dataframe(pdf, schema) if schema is not None else pdf


def _convert_data_type(data: Any, spec: ColSpec | TensorSpec | None) -> Any:
    try:
        if spec is None:
            return np.array(data)
        if isinstance(spec, TensorSpec):
            return np.array(data, dtype=spec.type)
        if isinstance(spec.type, DataType):
            target = spec.type.to_numpy()
            if isinstance(data, (list, np.ndarray)):
                return np.array(data, target)
            return np.array([data], target)[0]
        if isinstance(spec.type, Array):
            return np.array(enforce_value(data, spec.type, required=spec.required))
        return enforce_value(data, spec.type, required=spec.required)
    except RunyardError as exc:
        raise invalid_input(exc.message) from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise invalid_input(f"{exc}") from exc


def _cast_inputs(data: Any, schema: Schema | None) -> Any:
    named = schema.input_dict() if schema is not None and schema.has_input_names() else {}
    if schema is not None:
        if (
            len(named) == 1
            and isinstance(data, list)
            and not any(isinstance(x, dict) for x in data)
        ):
            # A bare list for a one-column schema is that column.
            data = {next(iter(named)): data}
        elif not schema.has_input_names() and not (isinstance(data, list) or np.isscalar(data)):
            raise invalid_input(
                "Failed to parse input data. This model contains an un-named  model signature "
                "which expects a single n-dimensional array or a single value as input, however, "
                f"an input of type {type(data)} was found."
            )
    if isinstance(data, dict):
        return {col: _convert_data_type(v, named.get(col)) for col, v in data.items()}
    first = schema.inputs[0] if schema is not None else None
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        return [{c: _convert_data_type(v, named.get(c)) for c, v in row.items()} for row in data]
    return _convert_data_type(data, first)


def _parse_instances(instances: Any, schema: Schema | None) -> Any:
    named = schema.input_dict() if schema is not None and schema.has_input_names() else {}
    if isinstance(instances, list) and instances and isinstance(instances[0], dict):
        columns: dict[str, list[Any]] = {}
        for row in instances:
            for col, value in row.items():
                columns.setdefault(col, []).append(_convert_data_type(value, named.get(col)))
        data: Any = {col: np.array(values) for col, values in columns.items()}
    else:
        data = _cast_inputs(instances, schema)
    if isinstance(data, dict):
        sized = {k: v for k, v in data.items() if isinstance(v, (list, np.ndarray))}
        if schema is not None and schema.has_input_names():
            checked = [
                c
                for c, spec in schema.input_dict().items()
                if spec.required and not isinstance(spec.type, Array) and c in sized
            ]
        else:
            checked = list(sized)
        if len({len(sized[c]) for c in checked}) > 1:
            raise invalid_input("The length of values for each input/column name are not the same")
    return data


def parse_tf_serving_input(doc: dict[str, Any], schema: Schema | None = None) -> Any:
    """Parse ``{"instances": ...}`` or ``{"inputs": ...}`` (TF-serving) into model input."""
    if "signature_name" in doc:
        raise invalid_input('"signature_name" parameter is currently not supported')
    if list(doc) not in ([INSTANCES], [INPUTS]):
        raise invalid_input(
            'One of "instances" and "inputs" must be specified (not both or any other keys).'
            f"Received: {list(doc)}"
        )
    try:
        if INSTANCES in doc:
            return _parse_instances(doc[INSTANCES], schema)
        return _cast_inputs(doc[INPUTS], schema)
    except RunyardError:
        raise
    except Exception as exc:  # noqa: BLE001 - report any parse failure as a bad request
        raise invalid_input(
            f"Ensure that the input is a valid JSON-formatted string.\nError: {exc!r}"
        ) from exc


def parse_scoring_payload(
    doc: dict[str, Any],
    input_schema: Schema | None,
    params_schema: ParamSchema | None = None,
    *,
    raw_inputs: bool = False,
) -> tuple[Any, dict[str, Any] | None]:
    """Split a decoded request body into (model input, params), parsing the input per format.

    ``params_schema`` decides which top-level keys of a unified-LLM body (``messages``,
    ``prompt``, ``input``) are params. ``raw_inputs`` passes ``inputs`` through unparsed (models
    whose signature comes from type hints).
    """
    if not isinstance(doc, dict):
        raise invalid_input(
            f"{REQUIRED_INPUT_FORMAT}. Received unexpected input type '{type(doc)}."
        )
    if any(key in doc for key in LLM_KEYS):
        names = {p.name for p in params_schema.params} if params_schema is not None else set()
        data = {k: v for k, v in doc.items() if k not in names}
        return data, {k: v for k, v in doc.items() if k in names}
    params = doc.get(PARAMS)
    data_keys = [k for k in doc if k in SUPPORTED_FORMATS]
    if len(data_keys) != 1:
        raise RunyardError(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {data_keys}. "
            f"{SCORING_PROTOCOL_CHANGE_INFO}",
            error_code="BAD_REQUEST",
        )
    key = data_keys[0]
    if raw_inputs:
        if key != INPUTS:
            raise RunyardError(
                "Request payload must be a dictionary with 'inputs' key when the model contains "
                f"a valid type hint. Found keys in payload: {list(doc)}.",
                error_code="INVALID_PARAMETER_VALUE",
            )
        return doc[INPUTS], params
    if key in (INSTANCES, INPUTS):
        return parse_tf_serving_input({key: doc[key]}, input_schema), params
    return dataframe_from_parsed_json(doc[key], key[len("dataframe_") :], input_schema), params
