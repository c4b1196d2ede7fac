"""Numeric columns sent to PostgreSQL as binary arrays packed with the ``array`` module.

The write path sends a batch's rows as one array per column (``unnest``, see
:mod:`~runyard.store.sql.prepared`). psycopg's list dumper writes a binary array element by
element in Python: ~0.3 ms per 1,000 values, so ~1.5 ms of CPU for the five columns of 1,000
metric points. The wire format of a one-dimensional array without NULLs is a fixed header and
then, per element, its length and its big-endian bytes. The values go into an ``array.array``
(its C conversion checks each one), are byte-swapped to big-endian, and are laid out between
the length prefixes by one extended-slice copy per byte of the element: ~30 µs per 1,000
values (a precompiled ``struct.Struct`` took ~65 µs, but is the quicker for a few values;
numpy would be as quick, but importing it costs a server ~13 MB of memory and ~0.1 s of
start-up).

A column holding ``None`` (SQL NULL) keeps psycopg's dumper, which writes the NULL bitmap.
Python ints beyond 64 bits raise ``OverflowError``, as the SQLite driver does (the store
reports both as an invalid value).
"""

from __future__ import annotations

import struct
import sys
import weakref
from array import array
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain, repeat
from typing import Any

from psycopg.adapt import Dumper
from psycopg.pq import Format

__all__ = ["packer", "ready"]

_HEADER = struct.Struct(">iiIii")
_SWAP = sys.byteorder == "little"
_SIZES = {code: array(code).itemsize for code in "qidB"}


#: Fewer values than this are packed by a cached ``struct`` (quicker to set up than an array).
_FEW = 32


@lru_cache(maxsize=_FEW * 4)
def _layout(code: str, count: int) -> struct.Struct:
    """``count`` (length, value) pairs of the element format ``code``."""
    return struct.Struct(">" + ("i" + code) * count)


def _elements(code: str, values: Sequence[Any]) -> bytes:
    """The elements of a binary array: per value, its length (int32) and its big-endian
    bytes, ``code`` being the ``array`` type code of the element. ``OverflowError`` for a
    value the element type cannot hold."""
    try:
        if len(values) < _FEW:
            pairs = chain.from_iterable(zip(repeat(_SIZES[code]), values))
            return _layout(code, len(values)).pack(*pairs)
        data = array(code, values)
    except (struct.error, TypeError) as exc:  # an int beyond the element type, or no number
        raise OverflowError(str(exc)) from None
    size = data.itemsize
    if _SWAP and size > 1:
        data.byteswap()
    raw = data.tobytes()
    stride = 4 + size
    out = bytearray(stride * len(data))
    out[3::stride] = bytes((size,)) * len(data)  # the length, big-endian: 0, 0, 0, size
    for i in range(size):
        out[4 + i :: stride] = raw[i::size]
    return bytes(out)


class _Packed:
    """Values of one column; its subclasses choose the array type."""

    __slots__ = ("values",)

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = values


_DUMPERS: list[tuple[type[_Packed], type[Dumper]]] = []


def _array_type(name: str, array_oid: int, element_oid: int, code: str) -> type[_Packed]:
    """A :class:`_Packed` subclass and its binary dumper (in ``_DUMPERS``); ``code`` is the
    ``array`` type code of the element."""

    class PackedDumper(Dumper):
        format = Format.BINARY

        def __init__(self, cls: type, context: Any = None) -> None:
            super().__init__(cls, context)
            # Set here, not on the class: psycopg would also make a class ``oid`` the dumper
            # of every binary array of that type on the connection (COPY, lists by oid).
            self.oid = array_oid

        def dump(self, obj: Any) -> bytes:
            values = obj.values
            body = _elements(code, values)
            # One dimension, no NULLs, the element type, the length, lower bound 1.
            return _HEADER.pack(1, 0, element_oid, len(values), 1) + body

    cls = type(name, (_Packed,), {"__slots__": ()})
    _DUMPERS.append((cls, PackedDumper))
    return cls


# Array and element type OIDs are fixed in PostgreSQL's catalogue (pg_type.dat).
_BIGINT = _array_type("PackedBigint", 1016, 20, "q")
_INTEGER = _array_type("PackedInteger", 1007, 23, "i")
_DOUBLE = _array_type("PackedDouble", 1022, 701, "d")
_BOOLEAN = _array_type("PackedBoolean", 1000, 16, "B")
#: By the type names SQLAlchemy's PostgreSQL dialect compiles (``Double`` is ``FLOAT(53)``).
_BY_TYPE = {
    "BIGINT": _BIGINT,
    "INTEGER": _INTEGER,
    "FLOAT(53)": _DOUBLE,
    "DOUBLE PRECISION": _DOUBLE,
    "BOOLEAN": _BOOLEAN,
}


#: psycopg connections whose adapters know the packed types.
_READY: weakref.WeakSet[Any] = weakref.WeakSet()


def ready(dbapi_conn: Any) -> None:
    """Teach a psycopg connection the packed types (once per connection; registering them
    with psycopg's global adapters would miss connections, and SQLAlchemy dialects, whose
    adapters were copied before)."""
    if dbapi_conn not in _READY:
        for cls, dumper in _DUMPERS:
            dbapi_conn.adapters.register_dumper(cls, dumper)
        _READY.add(dbapi_conn)


def packer(sql_type: str) -> Callable[[list[Any]], Any] | None:
    """For a column of ``sql_type`` (as the dialect spells it), a function that turns its
    values into what psycopg sends as a packed binary array; None for other types."""
    cls = _BY_TYPE.get(sql_type)
    if cls is None:
        return None

    def pack(values: list[Any]) -> Any:
        return values if None in values else cls(values)

    return pack
