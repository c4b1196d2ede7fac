"""The lean path for the commonest request: rows of numbers for a model with a column signature.

MLflow's way to score ``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` builds a
DataFrame of inferred dtypes, casts each column to the signature's type, then has
``PyFuncModel.predict`` enforce the schema again, building a second DataFrame. For a signature of
numeric and boolean columns, and rows of plain numbers, all of that lands on one result: a
DataFrame with exactly the signature's columns, in its order, of its dtypes. :class:`FastFrames`
parses such rows into :class:`NumericRows` (one numpy conversion, the column lookups done once
at load time) and builds that DataFrame from them — from one request's rows, or from several
requests' rows at once (:mod:`runyard.serving.batching`). The scorer hands it to the model's own
predict function, skipping an enforcement that could only return it unchanged.

Anything else — another shape, an ``index``, strings, nulls, nested values, missing or extra
columns, a value that does not convert — returns None, and the request takes the general path,
which gives MLflow's exact result or error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runyard.types.datatype import DataType
from runyard.types.schema import ColSpec, Schema

__all__ = ["FastFrames", "NumericRows", "direct_predict_fn"]

_NUMERIC = {DataType.boolean, DataType.integer, DataType.long, DataType.float, DataType.double}
#: numpy kinds that JSON numbers and booleans parse to (unsigned: only past int64, refused).
_PLAIN_KINDS = frozenset("bif")


@dataclass(frozen=True)
class NumericRows:
    """One request's rows, already of the signature's dtypes: a 2-D ``matrix`` when every column
    has the same dtype, else one 1-D array per column."""

    count: int
    matrix: np.ndarray[Any, Any] | None = None
    columns: tuple[np.ndarray[Any, Any], ...] = ()


class FastFrames:
    """Parses numeric rows for one signature and builds model-ready DataFrames from them."""

    def __init__(self, names: list[str], dtypes: list[np.dtype[Any]]) -> None:
        self.names = names
        self.dtypes = dtypes
        self._name_set = frozenset(names)
        # One column index for every frame: building it per request costs more than the rows.
        self._columns = pd.Index(names)
        self._uniform: np.dtype[Any] | None = dtypes[0] if len(set(dtypes)) == 1 else None

    @classmethod
    def for_schema(cls, schema: Schema | None) -> FastFrames | None:
        """A builder for ``schema``, or None when the schema is not named numeric columns."""
        if schema is None or not schema.inputs or not schema.has_input_names():
            return None
        specs = schema.inputs
        if not all(isinstance(s, ColSpec) and s.type in _NUMERIC for s in specs):
            return None
        names = [str(s.name) for s in specs]
        if len(set(names)) != len(names):
            return None
        return cls(names, [s.type.to_numpy() for s in specs])

    # -- parsing --------------------------------------------------------------------------
    def from_split(self, split: Any) -> NumericRows | None:
        """The rows of a ``dataframe_split`` value without ``index``, or None."""
        if not isinstance(split, dict) or len(split) != 2:
            return None
        columns, rows = split.get("columns"), split.get("data")
        if not isinstance(columns, list) or not isinstance(rows, list):
            return None
        if columns == self.names:
            return self._parse(rows)
        if len(columns) != len(self.names) or set(columns) != self._name_set:
            return None
        order = [columns.index(name) for name in self.names]
        try:
            reordered = [[row[i] for i in order] for row in rows]
        except (TypeError, IndexError, KeyError):
            return None
        return self._parse(reordered)

    def from_records(self, records: Any) -> NumericRows | None:
        """The rows of a ``dataframe_records`` value, or None."""
        if not isinstance(records, list):
            return None
        names, width = self.names, len(self.names)
        rows = []
        for record in records:
            if not isinstance(record, dict) or len(record) != width:
                return None
            try:
                rows.append([record[name] for name in names])
            except KeyError:
                return None
        return self._parse(rows)

    def _parse(self, rows: list[Any]) -> NumericRows | None:
        width = len(self.names)
        if not rows or not all(isinstance(row, list) and len(row) == width for row in rows):
            return None
        try:
            if self._uniform is not None:
                matrix = self._parse_uniform(rows, self._uniform)
                return None if matrix is None else NumericRows(len(rows), matrix=matrix)
            columns = self._parse_columns(rows)
            return None if columns is None else NumericRows(len(rows), columns=columns)
        except (TypeError, ValueError, OverflowError):
            return None

    def _parse_uniform(self, rows: list[Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any] | None:
        parsed = np.array(rows)
        if parsed.dtype.kind not in _PLAIN_KINDS or parsed.ndim != 2:
            return None
        if parsed.dtype.kind == "f" and dtype.kind == "i":
            # A float among the rows made every value a float: cast column by column instead,
            # so integer columns keep their exact values, as pandas would.
            columns = self._parse_columns(rows)
            return None if columns is None else np.column_stack(columns)
        return parsed.astype(dtype, copy=False)

    def _parse_columns(self, rows: list[Any]) -> tuple[np.ndarray[Any, Any], ...] | None:
        columns = []
        for dtype, values in zip(self.dtypes, zip(*rows, strict=True), strict=True):
            column = np.array(values)
            if column.dtype.kind not in _PLAIN_KINDS or column.ndim != 1:
                return None
            columns.append(column.astype(dtype, copy=False))
        return tuple(columns)

    # -- building -------------------------------------------------------------------------
    def frame(self, parts: Sequence[NumericRows]) -> pd.DataFrame:
        """The DataFrame of the signature's columns holding ``parts``' rows, in order."""
        if self._uniform is not None:
            matrices = [p.matrix for p in parts if p.matrix is not None]
            matrix = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
            return pd.DataFrame(matrix, columns=self._columns, copy=False)
        data = {
            name: (
                parts[0].columns[i]
                if len(parts) == 1
                else np.concatenate([p.columns[i] for p in parts])
            )
            for i, name in enumerate(self.names)
        }
        return pd.DataFrame(data, columns=self._columns, copy=False)


def direct_predict_fn(model: Any) -> Callable[[Any], Any] | None:
    """The model's own predict function, called as ``PyFuncModel.predict`` would call it for
    data that needs no enforcement and no params; None when the model does not expose one."""
    fn = getattr(model, "_predict_fn", None)
    if fn is None or not callable(fn):
        return None
    try:
        accepted = inspect.signature(fn).parameters.get("params")
    except (TypeError, ValueError):
        return None
    if accepted is not None and accepted.kind != inspect.Parameter.VAR_KEYWORD:

        def with_params(data: Any) -> Any:
            return fn(data, params=None)

        return with_params
    return fn  # type: ignore[no-any-return]
