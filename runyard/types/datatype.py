"""``DataType``: the scalar column types of signatures and their numpy/pandas/Python twins."""

from __future__ import annotations

import builtins
import datetime as dt
from enum import Enum
from typing import Any

import numpy as np

__all__ = ["DataType"]


class DataType(Enum):
    """MLflow's scalar data types, serialized by name (``"long"``, ``"double"``, ...).

    Each member knows its numpy dtype, the dtype pandas uses for a column of it (``object`` for
    strings and bytes) and the Python type of a single value.
    """

    _numpy_type: np.dtype[Any]
    _pandas_type: Any
    _python_type: type

    def __new__(cls, value: int, numpy_type: Any, pandas_type: Any, python_type: type) -> DataType:
        member = object.__new__(cls)
        member._value_ = value
        member._numpy_type = np.dtype(numpy_type)
        member._pandas_type = pandas_type
        member._python_type = python_type
        return member

    boolean = (1, "bool", np.dtype("bool"), bool)
    """Logical values (True, False)."""
    integer = (2, "int32", np.dtype("int32"), int)
    """32-bit signed integers."""
    long = (3, "int64", np.dtype("int64"), int)
    """64-bit signed integers."""
    float = (4, "float32", np.dtype("float32"), builtins.float)
    """32-bit floating point numbers."""
    double = (5, "float64", np.dtype("float64"), builtins.float)
    """64-bit floating point numbers."""
    string = (6, "str", object, str)
    """Text."""
    binary = (7, "bytes", object, bytes)
    """Raw bytes."""
    datetime = (8, "datetime64[ns]", np.dtype("datetime64[ns]"), dt.date)
    """Timestamps (any precision is accepted at predict time)."""

    def __repr__(self) -> str:
        return self.name

    def to_numpy(self) -> np.dtype[Any]:
        """The equivalent numpy dtype."""
        return self._numpy_type

    def to_pandas(self) -> Any:
        """The dtype pandas uses for a column of this type (``object`` for string and binary)."""
        return self._pandas_type

    def to_python(self) -> type:
        """The Python type of one value."""
        return self._python_type

    @classmethod
    def check_type(cls, data_type: DataType, value: Any) -> bool:
        """Whether ``value``'s exact type is one that represents ``data_type``."""
        accepted: list[Any] = [data_type.to_numpy().type, data_type.to_python()]
        if data_type is DataType.datetime:
            accepted += [np.datetime64, dt.datetime]
        if data_type is DataType.binary:
            accepted.append(bytearray)
        return type(value) in accepted

    @classmethod
    def all_types(cls) -> list[DataType]:
        """Every member, in declaration order."""
        return list(cls)

    @classmethod
    def from_numpy_type(cls, np_type: Any) -> DataType | None:
        """The member whose numpy dtype equals ``np_type``, or None."""
        return next((t for t in cls if t.to_numpy() == np_type), None)
