"""Decoding the records both event readers deliver: perf samples and ring buffer records.

Kept apart from the ring buffer reader so that :mod:`pybpf.perf` can use it
without importing that reader (a tool's start-up imports only what it drives).
"""

from __future__ import annotations

import ctypes
import struct
from itertools import repeat

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

__all__ = ["make_decoder", "row_maker", "record_format"]


def make_decoder(record_type: Any) -> Callable[[bytes], Any] | None:
    """A function turning raw bytes into ``record_type``.

    ``record_type`` may be a ctypes Structure (``from_buffer_copy`` of the
    leading ``sizeof`` bytes), a namedtuple class with a ``_struct``
    (:class:`struct.Struct` or format string) attribute, a
    ``(namedtuple class, struct format)`` pair, a :class:`struct.Struct`
    (gives a plain tuple), or any callable taking bytes.
    """
    if record_type is None:
        return None
    if isinstance(record_type, type) and issubclass(record_type, ctypes.Structure):
        size = ctypes.sizeof(record_type)
        from_copy = record_type.from_buffer_copy
        return lambda raw: from_copy(raw[:size]) if len(raw) != size else from_copy(raw)
    if isinstance(record_type, tuple) and len(record_type) == 2:
        cls, fmt = record_type
        st = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        make = cls._make
        unpack, size = st.unpack_from, st.size
        return lambda raw: make(unpack(raw))
    if isinstance(record_type, struct.Struct):
        return record_type.unpack_from
    if isinstance(record_type, type) and issubclass(record_type, tuple) and hasattr(record_type, "_struct"):
        fmt = record_type._struct
        st = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        make, unpack = record_type._make, st.unpack_from
        return lambda raw: make(unpack(raw))
    if callable(record_type):
        return record_type
    raise TypeError(f"cannot decode records into {record_type!r}")


# Every namedtuple class's ``_make`` shares one code object (collections defines it
# once); found on the first row_maker() call, as importing collections is start-up
# time for the tools, which never get here (and a namedtuple's owner has imported it).
_namedtuple_make_code = None


def _stock_make_code() -> object:
    global _namedtuple_make_code
    if _namedtuple_make_code is None:
        from collections import namedtuple

        _namedtuple_make_code = namedtuple("_Probe", "x")._make.__func__.__code__
    return _namedtuple_make_code


def row_maker(cls: type) -> Callable[[Iterable[tuple]], Iterable[Any]]:
    """A function turning an iterable of unpacked rows into ``cls`` instances.

    A stock namedtuple's ``_make(row)`` is ``tuple.__new__(cls, row)`` plus a length check,
    run as a Python frame per record; the rows come from one fixed struct format, so their
    length is right by construction and ``map(tuple.__new__, repeat(cls), rows)`` builds the
    same objects with no Python frame: about a quarter of the bulk decoding cost, which is
    what decides whether a live consumer keeps up with a producer core. A class that
    overrides ``_make`` keeps its own.
    """
    make = cls._make
    if getattr(getattr(make, "__func__", None), "__code__", None) is _stock_make_code():
        new = tuple.__new__
        return lambda rows: map(new, repeat(cls), rows)
    return lambda rows: map(make, rows)


def record_format(record_type: Any) -> tuple[Callable | None, str] | None:
    """(rows -> records function or None, struct format) for the struct-described record types
    the readers decode in bulk: ``(cls, fmt)``, a ``struct.Struct``, or a named tuple with
    ``_struct``; None for anything else (decoded record by record)."""
    make = None
    if isinstance(record_type, tuple) and len(record_type) == 2:
        make, fmt = row_maker(record_type[0]), record_type[1]
    elif isinstance(record_type, struct.Struct):
        fmt = record_type
    elif isinstance(record_type, type) and issubclass(record_type, tuple) and hasattr(record_type, "_struct"):
        make, fmt = row_maker(record_type), record_type._struct
    else:
        return None
    return make, (fmt.format if isinstance(fmt, struct.Struct) else fmt)
