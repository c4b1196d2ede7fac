"""Input examples saved with a model: ``input_example.json`` and ``serving_input_example.json``.

Formats (MLflow 3.x):

- DataFrame → ``{"columns": [...], "data": [[...]]}`` (split orient, no index), type ``dataframe``;
  served as ``{"dataframe_split": ...}``
- ndarray or dict of ndarrays → nested lists, type ``ndarray``; served as ``{"inputs": ...}``
- dict, list, scalar → the JSON value, type ``json_object``; served as ``{"inputs": ...}``
- ``(example, params)`` → ``{"inputs": <example>, "params": {...}}`` and ``"params": {...}``
  next to the data key in the serving example; ``params: 'true'`` in the metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from copy import deepcopy
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.models.infer import infer_param_schema, is_sparse_matrix
from runyard.models.payload import (
    DF_SPLIT,
    INPUTS,
    LLM_KEYS,
    NumpyEncoder,
    dataframe_from_parsed_json,
    parse_tf_serving_input,
)

if TYPE_CHECKING:
    from runyard.models.model import Model
    from runyard.types.schema import Schema

__all__ = [
    "EXAMPLE_FILENAME",
    "SERVING_INPUT_FILENAME",
    "Example",
    "convert_input_example_to_serving_input",
    "read_example",
    "read_example_params",
    "read_serving_input",
    "save_example",
]

EXAMPLE_FILENAME = "input_example.json"
SERVING_INPUT_FILENAME = "serving_input_example.json"
_KNOWN_TYPES = ("dataframe", "ndarray", "sparse_matrix_csc", "sparse_matrix_csr", "json_object")


def _contains_params(example: Any) -> bool:
    return isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], dict)


def _ndarray_to_list(value: np.ndarray[Any, Any]) -> Any:
    if np.issubdtype(value.dtype, np.number):
        # NaN has no JSON form; MLflow writes null.
        value = np.where(np.isnan(value), np.array(None, dtype=object), value)
    return value.tolist()


def _contains_ndarray(data: Any) -> bool:
    if isinstance(data, np.ndarray):
        return True
    if isinstance(data, list):
        return any(_contains_ndarray(x) for x in data)
    if isinstance(data, dict):
        return any(_contains_ndarray(x) for x in data.values())
    return False


def _frame_to_split(df: pd.DataFrame) -> dict[str, Any]:
    split: dict[str, Any] = df.astype(object).where(df.notnull(), None).to_dict(orient="split")
    del split["index"]
    if list(df.columns) == list(range(len(df.columns))):
        # A default RangeIndex of columns is not worth writing out.
        del split["columns"]
    return split


class Example:
    """An input example made JSON-ready, with its metadata and its scoring-server payload."""

    def __init__(self, input_example: Any) -> None:
        self.info: dict[str, Any] = {"artifact_path": EXAMPLE_FILENAME}
        data, params = input_example if _contains_params(input_example) else (input_example, None)
        if params is not None:
            infer_param_schema(params)  # raises on params a signature could not describe
            self.info["params"] = "true"
        self.inference_data: Any = deepcopy(data)
        self.inference_params: dict[str, Any] | None = params
        stored, serving = self._encode(deepcopy(data))
        if params is not None:
            stored = {INPUTS: stored, "params": params}
            if serving is not None:
                unified = isinstance(data, dict) and any(k in data for k in LLM_KEYS)
                serving = {**serving, **params} if unified else {**serving, "params": params}
        self.json_input_example = json.dumps(stored, cls=NumpyEncoder)
        self.json_serving_input: str | None = None
        if serving is not None:
            self.json_serving_input = json.dumps(serving, cls=NumpyEncoder, indent=2)
            self.info["serving_input_path"] = SERVING_INPUT_FILENAME

    def _encode(self, data: Any) -> tuple[Any, dict[str, Any] | None]:
        """(what input_example.json holds, the serving payload), setting ``info["type"]``."""
        if isinstance(data, dict):
            arrays = [isinstance(v, np.ndarray) for v in data.values()]
            if any(arrays):
                if not all(arrays):
                    raise InvalidParameterValue(
                        "Mixed types in dictionary are not supported as input examples. "
                        "Found numpy arrays and other types."
                    )
                self.info["type"] = "ndarray"
                stored: Any = {k: _ndarray_to_list(v) for k, v in data.items()}
                return stored, {INPUTS: stored}
            self.info["type"] = "json_object"
            unified = any(k in data for k in LLM_KEYS)
            return data, (data if unified else {INPUTS: data})
        if isinstance(data, np.ndarray):
            self.info["type"] = "ndarray"
            stored = _ndarray_to_list(data)
            return stored, {INPUTS: stored}
        if isinstance(data, list):
            if _contains_ndarray(data):
                raise RunyardError(
                    "Multidimensional arrays (aka tensors) are not supported. "
                    "Numpy arrays in list are not supported as input examples."
                )
            self.info["type"] = "json_object"
            return data, {INPUTS: data}
        if is_sparse_matrix(data):
            self.info["type"] = (
                "sparse_matrix_csc" if "csc" in type(data).__name__ else ("sparse_matrix_csr")
            )
            stored = {
                "data": _ndarray_to_list(data.data),
                "indices": data.indices.tolist(),
                "indptr": data.indptr.tolist(),
                "shape": list(data.shape),
            }
            return stored, {INPUTS: data.toarray()}
        if isinstance(data, pd.DataFrame):
            stored = _frame_to_split(data)
            self.info["type"] = "dataframe"
            self.info["pandas_orient"] = "split" if "columns" in stored else "values"
            return stored, {DF_SPLIT: stored}
        if np.isscalar(data) or isinstance(data, dt.datetime):
            self.info["type"] = "json_object"
            return data, {INPUTS: data}
        raise InvalidParameterValue(
            "Expected one of the following types:\n- pandas.DataFrame\n- numpy.ndarray\n"
            "- dictionary of (name -> numpy.ndarray)\n- scipy.sparse.csr_matrix\n"
            "- scipy.sparse.csc_matrix\n- dict\n- list\n- scalars\n- datetime.datetime\n"
            f"but got '{type(data)}'"
        )

    def save(self, parent_dir: str | os.PathLike[str]) -> None:
        """Write the example (and serving payload) into the model directory."""
        with open(os.path.join(parent_dir, self.info["artifact_path"]), "w") as out:
            out.write(self.json_input_example)
        if self.json_serving_input is not None:
            with open(os.path.join(parent_dir, self.info["serving_input_path"]), "w") as out:
                out.write(self.json_serving_input)


def save_example(model: Model, input_example: Any, path: str | os.PathLike[str]) -> Example | None:
    """Save ``input_example`` into ``path`` and record its metadata on ``model``."""
    if input_example is None:
        return None
    example = Example(input_example)
    example.save(path)
    model.saved_input_example_info = example.info
    return example


def convert_input_example_to_serving_input(
    input_example: Any, params: dict[str, Any] | None = None
) -> str | None:
    """The scoring-server JSON payload for an input example (None for None)."""
    if input_example is None:
        return None
    example = Example((input_example, params) if params is not None else input_example)
    return example.json_serving_input


def _read_json(model_dir: str, name: str) -> Any:
    with open(os.path.join(model_dir, name)) as handle:
        return json.load(handle)


def _example_document(model: Model, model_dir: str) -> Any:
    info = model.saved_input_example_info
    if info is None:
        return None
    if info.get("type") not in _KNOWN_TYPES:
        raise RunyardError(f"This version of runyard can not load example of type {info['type']}")
    return _read_json(model_dir, info["artifact_path"])


def _sparse_from_json(doc: dict[str, Any], example_type: str) -> Any:
    from scipy.sparse import csc_matrix, csr_matrix  # optional: only sparse examples need it

    cls = csc_matrix if example_type == "sparse_matrix_csc" else csr_matrix
    return cls((doc["data"], doc["indices"], doc["indptr"]), shape=tuple(doc["shape"]))


def read_example(model: Model, model_dir: str) -> Any:
    """The saved input example, rebuilt as the type it was saved from (None if there is none)."""
    doc = _example_document(model, model_dir)
    if doc is None:
        return None
    info = model.saved_input_example_info or {}
    schema: Schema | None = model.signature.inputs if model.signature is not None else None
    if info.get("params"):
        doc = doc[INPUTS]
    example_type = info["type"]
    if example_type == "json_object":
        return doc
    if example_type == "ndarray":
        return parse_tf_serving_input({INPUTS: doc}, schema)
    if example_type == "dataframe":
        return dataframe_from_parsed_json(doc, "split", schema)
    return _sparse_from_json(doc, example_type)


def read_example_params(model: Model, model_dir: str) -> dict[str, Any] | None:
    """The params saved with the input example, or None."""
    info = model.saved_input_example_info
    if info is None or not info.get("params"):
        return None
    doc = _example_document(model, model_dir)
    params: dict[str, Any] = doc["params"]
    return params


def read_serving_input(model: Model, model_dir: str) -> str | None:
    """The serving payload text saved with the model, or None."""
    info = model.saved_input_example_info
    if info is None or not info.get("serving_input_path"):
        return None
    with open(os.path.join(model_dir, info["serving_input_path"])) as handle:
        return handle.read()
