"""``POST /invocations``: one request body in, predictions (or MLflow's error) out.

:class:`Scorer` holds a loaded model and everything about it that requests need (schemas, CSV
dtypes, the lean numeric path), worked out once at load time. ``Scorer.invoke`` is what the HTTP
app runs for each request, in a worker thread; it never raises, so a bad payload can never take a
worker down. ``Scorer.score`` is the same parsing and prediction for ``runyard models predict``,
raising :class:`~runyard.errors.RunyardError` instead.

Content types (spec §9): ``application/json`` (MLflow's scoring protocol, see
:mod:`runyard.models.payload`, plus the pre-2.0 bare ``{"columns": ..., "data": ...}`` body read
as ``dataframe_split``), ``text/csv`` (``pandas.read_csv`` with the signature's dtypes) and
``application/vnd.apache.parquet`` (``pandas.read_parquet``, needs pyarrow). Any charset but
UTF-8, any other parameter, or any other type is a 415 with MLflow's text.

Responses are encoded with orjson: the same JSON as MLflow's ``json.dump`` without the spaces,
except that NaN and infinities become ``null`` (MLflow writes the non-standard ``NaN``).
"""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from runyard.errors import RunyardError
from runyard.models.payload import (
    DF_RECORDS,
    DF_SPLIT,
    LLM_KEYS,
    PARAMS,
    SCORING_PROTOCOL_CHANGE_INFO,
    SUPPORTED_FORMATS,
    NumpyEncoder,
    decode_json_payload,
    invalid_input,
    parse_scoring_payload,
    to_jsonable,
)
from runyard.pyfunc.loader import PyFuncModel
from runyard.serving.batching import ROW_WISE_LOADER_MODULES, Batcher
from runyard.serving.fastpath import FastFrames, NumericRows, direct_predict_fn

__all__ = [
    "CONTENT_TYPES",
    "CONTENT_TYPE_CSV",
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PARQUET",
    "ParsedRequest",
    "Scorer",
    "ScoringResponse",
    "UnsupportedContentType",
    "dump_predictions",
]

_logger = logging.getLogger(__name__)

CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = [CONTENT_TYPE_CSV, CONTENT_TYPE_JSON, CONTENT_TYPE_PARQUET]

#: Keys of the bare pre-2.0 body, ``{"columns": [...], "data": [[...]], "index"?: [...]}``.
_LEGACY_SPLIT_KEYS = frozenset({"columns", "data", "index"})
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_ENCODER = NumpyEncoder()

_PREDICT_FAILED = (
    "Encountered an unexpected error while evaluating the model. Verify that the serialized "
    "input Dataframe is compatible with the model for inference."
)


class UnsupportedContentType(Exception):
    """A request the scoring server answers with 415 and a plain-text message."""


@dataclass(frozen=True)
class ScoringResponse:
    """What ``/invocations`` answers: status, body, media type; ``error_code`` for metrics."""

    status: int
    body: bytes
    media_type: str
    error_code: str | None = None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):  # arrays orjson does not take natively (object, strided)
        return value.tolist()
    return _ENCODER.default(value)


def _jsonable(raw: Any) -> Any:
    # Arrays stay arrays: orjson writes numeric ones natively, much faster than tolist().
    return raw if isinstance(raw, np.ndarray) else to_jsonable(raw)


def dump_predictions(raw: Any, *, unwrapped: bool = False) -> bytes:
    """``{"predictions": ...}`` (or the bare value for unified LLM requests) as JSON bytes."""
    payload = _jsonable(raw)
    document = payload if unwrapped else {"predictions": payload}
    try:
        return orjson.dumps(document, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:
        # Keys orjson refuses (numpy scalars, tuples): the standard library's rules decide.
        plain = to_jsonable(raw)
        return json.dumps(plain if unwrapped else {"predictions": plain}, cls=NumpyEncoder).encode()


def error_response(exc: RunyardError) -> ScoringResponse:
    """MLflow's JSON error body for ``exc`` with its HTTP status."""
    try:
        body = orjson.dumps(exc.serialize_as_json(), default=str)
    except TypeError:
        body = json.dumps(exc.serialize_as_json(), default=str).encode()
    return ScoringResponse(exc.get_http_status_code(), body, CONTENT_TYPE_JSON, exc.error_code)


def _split_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    parts = [part.strip() for part in content_type.split(";")]
    parameters = {}
    for pair in parts[1:]:
        key, _, value = pair.partition("=")
        parameters[key.strip().lower()] = value.strip().strip('"')
    return parts[0].lower(), parameters


def _check_content_type(content_type: str | None) -> str:
    """The media type of a request, or :class:`UnsupportedContentType` with MLflow's text."""
    mime, parameters = _split_content_type(content_type or "")
    if parameters.get("charset", "utf-8").lower() != "utf-8":
        raise UnsupportedContentType("The scoring server only supports UTF-8")
    unexpected = sorted(set(parameters) - {"charset"})
    if unexpected:
        raise UnsupportedContentType(
            f"Unrecognized content type parameters: {', '.join(unexpected)}. "
            f"{SCORING_PROTOCOL_CHANGE_INFO}"
        )
    if mime not in CONTENT_TYPES:
        raise UnsupportedContentType(
            "This predictor only supports the following content types: "
            f"Types: {CONTENT_TYPES}. Got '{content_type or ''}'."
        )
    return mime


def _decode_json(body: bytes | str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        # The standard library also reads NaN and Infinity, and words MLflow's error.
        return decode_json_payload(body)
    if isinstance(doc, dict):
        return doc
    return decode_json_payload(body)  # raises MLflow's message for a list or a scalar


def _legacy_split(doc: dict[str, Any]) -> dict[str, Any]:
    """The pre-2.0 bare ``{"columns", "data"}`` body as ``{"dataframe_split": ...}``."""
    if "data" not in doc or any(k in doc for k in SUPPORTED_FORMATS):
        return doc
    frame_keys = set(doc) - {PARAMS}
    if not frame_keys <= _LEGACY_SPLIT_KEYS:
        return doc
    wrapped: dict[str, Any] = {DF_SPLIT: {k: doc[k] for k in frame_keys}}
    if PARAMS in doc:
        wrapped[PARAMS] = doc[PARAMS]
    return wrapped


@dataclass
class ParsedRequest:
    """A request body read into model input: ``data`` and ``params``, or numeric ``rows`` on
    the lean path (``data`` is None then); ``unwrapped`` for unified LLM bodies."""

    data: Any
    params: dict[str, Any] | None = None
    unwrapped: bool = False
    rows: NumericRows | None = None  # set on the lean path: data is None then


class Scorer:
    """A loaded model plus what every request needs, computed once.

    ``batch_max_rows`` > 0 lets concurrent lean-path requests to a row-wise model share model
    calls of up to that many rows (:mod:`runyard.serving.batching`); 0 scores each alone.
    ``observe_batch(requests, rows)`` is told the size of every model call the batcher makes.
    """

    def __init__(
        self,
        model: PyFuncModel,
        *,
        batch_max_rows: int = 0,
        observe_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        meta = model.metadata
        self.model = model
        self.input_schema = meta.get_input_schema()
        self.params_schema = meta.get_params_schema()
        self.raw_inputs = meta._is_signature_from_type_hint()
        fast = None if self.raw_inputs else FastFrames.for_schema(self.input_schema)
        direct = direct_predict_fn(model) if fast is not None else None
        # The lean path skips enforcement, which is only a no-op without a params schema.
        if direct is None or self.params_schema is not None:
            fast, direct = None, None
        self._fast = fast
        self._direct = direct
        #: Shares model calls between concurrent requests (None: every request runs alone).
        self.batcher: Batcher | None = None
        row_wise = model.loader_module in ROW_WISE_LOADER_MODULES
        if fast is not None and direct is not None and batch_max_rows > 0 and row_wise:
            self.batcher = Batcher(fast, direct, batch_max_rows, observe_batch)
        self._csv_dtypes = self._csv_dtypes_of_schema()

    @property
    def lean(self) -> bool:
        """Whether numeric rows skip the general parsing and enforcement for this model."""
        return self._fast is not None

    def _csv_dtypes_of_schema(self) -> dict[Any, Any] | None:
        schema = self.input_schema
        if schema is None:
            return None
        try:
            return dict(zip(schema.input_names(), schema.pandas_types(), strict=True))
        except RunyardError:
            return None  # tensor or composite types: let pandas infer

    # -- parsing --------------------------------------------------------------------------
    def _parse_csv(self, body: bytes | str) -> pd.DataFrame:
        try:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
        except UnicodeDecodeError as exc:
            raise invalid_input(
                f"Ensure that input is a valid UTF-8 encoded string. Error: '{exc!r}'"
            ) from exc
        try:
            if self._csv_dtypes is None:
                return pd.read_csv(io.StringIO(text))
            return pd.read_csv(io.StringIO(text), dtype=self._csv_dtypes)
        except Exception as exc:  # noqa: BLE001 - pandas raises many kinds; all are bad input
            raise RunyardError(
                "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
                "CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` "
                f"method. Error: '{exc}'",
                error_code="BAD_REQUEST",
                stack_trace=traceback.format_exc(),
            ) from exc

    @staticmethod
    def _parse_parquet(body: bytes) -> pd.DataFrame:
        try:
            return pd.read_parquet(io.BytesIO(body))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds; all are bad input
            raise RunyardError(
                "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
                "Parquet Pandas DataFrame produced using the `pandas.DataFrame.to_parquet()` "
                f"method. Error: '{exc}'",
                error_code="BAD_REQUEST",
                stack_trace=traceback.format_exc(),
            ) from exc

    def _parse_json(self, body: bytes | str) -> ParsedRequest:
        doc = _decode_json(body)
        if any(key in doc for key in LLM_KEYS):
            data, params = parse_scoring_payload(doc, self.input_schema, self.params_schema)
            return ParsedRequest(data, params, unwrapped=True)
        doc = _legacy_split(doc)
        if self._fast is not None and len(doc) == 1:
            rows = None
            if DF_SPLIT in doc:
                rows = self._fast.from_split(doc[DF_SPLIT])
            elif DF_RECORDS in doc:
                rows = self._fast.from_records(doc[DF_RECORDS])
            if rows is not None:
                return ParsedRequest(None, rows=rows)
        data, params = parse_scoring_payload(
            doc, self.input_schema, self.params_schema, raw_inputs=self.raw_inputs
        )
        return ParsedRequest(data, params)

    def parse(self, body: bytes | str, media_type: str) -> ParsedRequest:
        """The model input (and params) of a request body of ``media_type``."""
        try:
            if media_type == CONTENT_TYPE_JSON:
                return self._parse_json(body)
            if media_type == CONTENT_TYPE_CSV:
                return ParsedRequest(self._parse_csv(body))
            raw = body.encode("utf-8") if isinstance(body, str) else body
            return ParsedRequest(self._parse_parquet(raw))
        except RunyardError:
            raise
        except Exception as exc:  # noqa: BLE001 - any other parse failure is still bad input
            raise RunyardError(
                f"Invalid input. Failed to parse the request body: {exc!r}",
                error_code="BAD_REQUEST",
                stack_trace=traceback.format_exc(),
            ) from exc

    # -- prediction -----------------------------------------------------------------------
    def predict_error(self, parsed: ParsedRequest, exc: BaseException) -> RunyardError:
        """The error MLflow's server reports when predicting ``parsed`` raised ``exc``."""
        if isinstance(exc, RunyardError):
            data = parsed.data
            if parsed.rows is not None and self._fast is not None:
                data = self._fast.frame([parsed.rows])
            exc.message = f"Failed to predict data '{data}'. \nError: {exc.message}"
            return exc
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return RunyardError(_PREDICT_FAILED, error_code="BAD_REQUEST", stack_trace=trace)

    def predict(self, parsed: ParsedRequest) -> Any:
        """Run the model (without batching); errors carry MLflow's messages and codes."""
        try:
            if parsed.rows is not None and self._fast is not None and self._direct is not None:
                return self._direct(self._fast.frame([parsed.rows]))
            return self.model.predict(parsed.data, params=parsed.params)
        except Exception as exc:  # noqa: BLE001 - the model's own failure, reported as MLflow does
            raise self.predict_error(parsed, exc) from exc

    def score(self, body: bytes | str, content_type: str | None) -> tuple[Any, bool]:
        """Raw predictions for a request body and whether they go out unwrapped (unified LLM
        format); raises RunyardError or :class:`UnsupportedContentType`."""
        parsed = self.parse(body, _check_content_type(content_type))
        return self.predict(parsed), parsed.unwrapped

    def respond(self, raw: Any, *, unwrapped: bool = False) -> ScoringResponse:
        """The 200 response for predictions (a 500 if JSON cannot represent them)."""
        try:
            body = dump_predictions(raw, unwrapped=unwrapped)
        except Exception as exc:  # noqa: BLE001 - an output JSON cannot represent
            return error_response(
                RunyardError(
                    f"Failed to serialize the model's predictions as JSON: {exc}",
                    error_code="INTERNAL_ERROR",
                )
            )
        return ScoringResponse(200, body, CONTENT_TYPE_JSON)

    def begin(self, body: bytes, content_type: str | None) -> ScoringResponse | ParsedRequest:
        """Everything up to the model call: the response when it is already known (an error, or
        the predictions of a request that is not batched), else the parsed request, whose rows
        go to :attr:`batcher`. Never raises."""
        try:
            parsed = self.parse(body, _check_content_type(content_type))
            if parsed.rows is not None and self.batcher is not None:
                return parsed
            raw = self.predict(parsed)
        except UnsupportedContentType as exc:
            return ScoringResponse(415, str(exc).encode(), "text/plain", "UNSUPPORTED_MEDIA_TYPE")
        except RunyardError as exc:
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - last line of defence: the worker must live
            _logger.exception("Unexpected error while scoring a request")
            return error_response(
                RunyardError(
                    f"Unexpected error while scoring the request: {exc!r}",
                    error_code="INTERNAL_ERROR",
                    stack_trace=traceback.format_exc(),
                )
            )
        return self.respond(raw, unwrapped=parsed.unwrapped)

    async def share(self, parsed: ParsedRequest) -> ScoringResponse:
        """The response for a request :meth:`begin` handed back: its rows join the next model
        call of :attr:`batcher` (on the running event loop)."""
        if self.batcher is None or parsed.rows is None:  # not batched after all: score alone
            return self.invoke_parsed(parsed)
        try:
            raw = await self.batcher.submit(parsed.rows)
        except Exception as exc:  # noqa: BLE001 - the model's error for this request
            return error_response(self.predict_error(parsed, exc))
        return self.respond(raw, unwrapped=parsed.unwrapped)

    def invoke_parsed(self, parsed: ParsedRequest) -> ScoringResponse:
        """Predict a parsed request alone and answer it; never raises."""
        try:
            return self.respond(self.predict(parsed), unwrapped=parsed.unwrapped)
        except RunyardError as exc:
            return error_response(exc)

    def invoke(self, body: bytes, content_type: str | None) -> ScoringResponse:
        """The whole ``/invocations`` exchange without batching; never raises."""
        started = self.begin(body, content_type)
        if isinstance(started, ScoringResponse):
            return started
        return self.invoke_parsed(started)
