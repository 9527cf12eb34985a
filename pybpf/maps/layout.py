"""Key and value layouts: how Python objects become the bytes a map stores, and back.

A layout is anything with ``size``, ``encode(obj) -> bytes`` and
``decode(buffer) -> obj``; :func:`make_layout` builds one from what users
write in a :class:`~pybpf.maps.spec.MapSpec`:

* ``None`` -- raw bytes (ints are accepted and stored in host byte order),
* a :mod:`struct` format (``"I"``, ``"<QQ"``) -- a scalar for one field, a tuple otherwise,
* a ctypes type (``c_uint64``, a ``Structure``, an array type).

Every layout also accepts ready-made ``bytes`` of the right size, so raw
access always works. ``decode_many`` decodes a whole batch buffer at once
(``memoryview.cast``/``struct.iter_unpack``), which is what makes batch dumps
fast: no per-element ctypes objects.
"""

from __future__ import annotations

import ctypes
import struct
import sys

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Layout", "RawLayout", "StructLayout", "CtypesLayout", "FdValueLayout", "make_layout",
           "LayoutError"]

_BYTES = (bytes, bytearray, memoryview)
_CASTABLE = set("bBhHiIlLqQfd?")


class LayoutError(TypeError):
    """A key or value does not fit the map's layout (wrong size or type)."""


class Layout:
    """What a map needs from a key or value layout: ``size``, ``encode`` and ``decode``.

    Layouts are duck-typed (any object with these three works, see
    :func:`make_layout`); the layouts here subclass this to say so.
    """

    size: int

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def decode(self, buf) -> Any:
        raise NotImplementedError


def _as_bytes(obj, size: int, what: str) -> bytes | None:
    if isinstance(obj, _BYTES):
        raw = bytes(obj)
        if len(raw) != size:
            raise LayoutError(f"{what} is {len(raw)} bytes, the map's {what} size is {size}")
        return raw
    return None


class RawLayout(Layout):
    """Uninterpreted bytes of a fixed size; ints are stored in host byte order."""

    def __init__(self, size: int, what: str = "value"):
        self.size = size
        self.what = what

    def encode(self, obj) -> bytes:
        raw = _as_bytes(obj, self.size, self.what)
        if raw is not None:
            return raw
        if isinstance(obj, int):
            try:
                return obj.to_bytes(self.size, sys.byteorder, signed=obj < 0)
            except OverflowError:
                raise LayoutError(f"{self.what} {obj} does not fit in {self.size} bytes") from None
        raise LayoutError(f"{self.what} must be bytes of size {self.size} or an int, "
                          f"not {type(obj).__name__}")

    def decode(self, buf) -> bytes:
        return bytes(buf[:self.size])

    def decode_many(self, buf: memoryview, count: int, stride: int) -> list:
        size = self.size
        if stride == size:
            raw = bytes(buf[:count * size])
            return [raw[i:i + size] for i in range(0, count * size, size)]
        return [bytes(buf[i * stride:i * stride + size]) for i in range(count)]

    def encode_many(self, objs) -> bytes:
        return b"".join(map(self.encode, objs))

    def __repr__(self) -> str:
        return f"RawLayout({self.size})"


class StructLayout(Layout):
    """A :mod:`struct` format; one field decodes to a scalar, several to a tuple."""

    def __init__(self, fmt: str, what: str = "value"):
        self.fmt = fmt
        try:
            self.struct = struct.Struct(fmt)
        except (struct.error, TypeError) as exc:
            raise LayoutError(f"{what} format {fmt!r} is not a struct format: {exc}") from None
        self.size = self.struct.size
        self.what = what
        self.fields = len(self.struct.unpack(bytes(self.size)))
        self._prefix = fmt[0] if fmt[:1] in ("@", "=", "<", ">", "!") else ""
        body = fmt[len(self._prefix):].strip()
        order = self._prefix or "@"
        native = order == "@" or (order in "=<" and sys.byteorder == "little") or (
            order in "=>!" and sys.byteorder == "big")
        if order != "@" and body in ("l", "L"):
            native = False  # standard 'l' is 4 bytes, native 'l' is 8
        # memoryview.cast only understands native single-character formats
        self._cast = body if (self.fields == 1 and native and body in _CASTABLE) else None

    def encode(self, obj) -> bytes:
        raw = _as_bytes(obj, self.size, self.what)
        if raw is not None:
            return raw
        try:
            if self.fields == 1 and not isinstance(obj, (tuple, list)):
                return self.struct.pack(obj)
            return self.struct.pack(*obj)
        except (struct.error, TypeError) as err:
            raise LayoutError(f"{self.what} {obj!r} does not fit the layout {self.fmt!r}: {err}") \
                from None

    def decode(self, buf):
        vals = self.struct.unpack_from(buf)
        return vals[0] if self.fields == 1 else vals

    def decode_many(self, buf: memoryview, count: int, stride: int) -> list:
        size = self.size
        if stride == size:
            if self._cast is not None:
                return buf[:count * size].cast(self._cast).tolist()
            out = self.struct.iter_unpack(buf[:count * size])
            return [v[0] for v in out] if self.fields == 1 else list(out)
        unpack = self.struct.unpack_from
        if self.fields == 1:
            return [unpack(buf, i * stride)[0] for i in range(count)]
        return [unpack(buf, i * stride) for i in range(count)]

    def encode_many(self, objs) -> bytes:
        objs = list(objs)
        if self._cast is not None:
            try:
                return struct.pack(f"{self._prefix}{len(objs)}{self._cast}", *objs)
            except (struct.error, TypeError):
                pass  # mixed bytes/ints: fall through to one at a time
        return b"".join(map(self.encode, objs))

    def __repr__(self) -> str:
        return f"StructLayout({self.fmt!r})"


class CtypesLayout(Layout):
    """A ctypes type. Simple types decode to their ``.value``, arrays to lists (``bytes``
    for ``c_char`` arrays), structures and unions to instances."""

    def __init__(self, ctype: type, what: str = "value"):
        self.ctype = ctype
        self.size = ctypes.sizeof(ctype)
        self.what = what
        self._simple = issubclass(ctype, ctypes._SimpleCData)
        self._array = issubclass(ctype, ctypes.Array)

    def encode(self, obj) -> bytes:
        raw = _as_bytes(obj, self.size, self.what)
        if raw is not None:
            return raw
        ct = self.ctype
        try:
            if isinstance(obj, ct):
                return bytes(obj)
            if self._simple:
                return bytes(ct(obj))
            if isinstance(obj, dict):
                return bytes(ct(**obj))
            if isinstance(obj, (tuple, list)):
                return bytes(ct(*obj))
        except (TypeError, ValueError, RuntimeError) as err:
            raise LayoutError(f"{self.what} {obj!r} does not fit {ct.__name__}: {err}") from None
        raise LayoutError(f"{self.what} must be a {ct.__name__}, bytes of size {self.size}"
                          f" or its fields, not {type(obj).__name__}")

    def decode(self, buf):
        inst = self.ctype.from_buffer_copy(bytes(buf[:self.size]))
        if self._simple:
            return inst.value
        if self._array:
            return inst.raw if self.ctype._type_ is ctypes.c_char else list(inst)
        return inst

    def decode_many(self, buf: memoryview, count: int, stride: int) -> list:
        size = self.size
        return [self.decode(buf[i * stride:i * stride + size]) for i in range(count)]

    def encode_many(self, objs) -> bytes:
        return b"".join(map(self.encode, objs))

    def __repr__(self) -> str:
        return f"CtypesLayout({self.ctype.__name__})"


class FdValueLayout(Layout):
    """Values of prog arrays, perf event arrays and maps of maps.

    User space writes a file descriptor (an int, or any object with ``.fd``:
    a Map, a loaded program, a perf event) and the kernel answers lookups with
    the *id* of the object stored there.
    """

    size = 4
    what = "value"

    def __init__(self, kind: str = "fd"):
        self.kind = kind

    def encode(self, obj) -> bytes:
        fd = getattr(obj, "fd", obj)
        if isinstance(fd, _BYTES):
            return _as_bytes(fd, 4, "value")
        if not isinstance(fd, int):
            raise LayoutError(f"value must be a {self.kind} (an object with .fd or an fd int), "
                              f"not {type(obj).__name__}")
        return struct.pack("=I", fd)

    def decode(self, buf) -> int:
        return struct.unpack_from("=I", buf)[0]

    def decode_many(self, buf: memoryview, count: int, stride: int) -> list:
        if stride == 4:
            return buf[:count * 4].cast("I").tolist()
        return [struct.unpack_from("=I", buf, i * stride)[0] for i in range(count)]

    def encode_many(self, objs) -> bytes:
        return b"".join(map(self.encode, objs))

    def __repr__(self) -> str:
        return f"FdValueLayout({self.kind!r})"


def make_layout(desc, size: int | None, what: str = "value"):
    """Turn a spec's key/value description into a layout; ``size`` is the declared size."""
    if desc is None:
        return RawLayout(size or 0, what)
    if isinstance(desc, str):
        return StructLayout(desc, what)
    if isinstance(desc, type) and issubclass(desc, (ctypes._SimpleCData, ctypes.Array,
                                                    ctypes.Structure, ctypes.Union)):
        return CtypesLayout(desc, what)
    if all(hasattr(desc, a) for a in ("size", "encode", "decode")):
        return desc
    raise LayoutError(f"{what} layout must be None, a struct format string, a ctypes type or a "
                      f"layout object, not {desc!r}")


def layout_size(desc, what: str = "value") -> int | None:
    """The size a description implies (None for raw bytes)."""
    if desc is None:
        return None
    return make_layout(desc, None, what).size
