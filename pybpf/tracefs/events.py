"""Tracepoints: ids and record layouts from ``events/<category>/<name>/``.

A tracepoint program receives a pointer to the raw record whose layout the
``format`` file describes; parsing it lets programs say ``ctx.filename``
instead of hard-coding offset 24, and lets user space decode raw records.
"""

from __future__ import annotations

import os
import struct

from pybpf._record import Record

from .mount import TracefsError, _check_names, read_file, tracefs_path, tracepoint_id

__all__ = ["Field", "EventFormat", "parse_format", "event_format", "tracepoint_id",
           "list_events", "list_categories"]

# Parsed with str methods, not regular expressions: opensnoop reads a format at start-up,
# and importing re is start-up time (see pybpf._record for why these are not dataclasses).
_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_IDENT = _IDENT_START | frozenset("0123456789")
_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class Field(Record):
    """One ``field:`` line.

    ``type`` is the C type without the name or array suffix (``"char"`` for
    ``char comm[16]``, ``"char[]"`` for ``__data_loc char[] filename``).
    A ``__data_loc`` field holds a u32: low 16 bits the offset of the data
    within the record, high 16 bits its length.
    """

    __slots__ = ("name", "type", "offset", "size", "signed", "array_len", "data_loc", "rel_loc")
    name: str
    type: str
    offset: int
    size: int
    signed: bool
    array_len: int | None
    data_loc: bool
    rel_loc: bool

    def __init__(self, name: str, type: str, offset: int, size: int, signed: bool,
                 array_len: int | None = None, data_loc: bool = False,
                 rel_loc: bool = False) -> None:
        self._assign(name=name, type=type, offset=offset, size=size, signed=signed,
                     array_len=array_len, data_loc=data_loc, rel_loc=rel_loc)

    @property
    def is_pointer(self) -> bool:
        return self.type.rstrip().endswith("*") and self.array_len is None

    @property
    def is_string(self) -> bool:
        base = self.type.replace("const ", "").replace("[]", "").strip()
        return base == "char" and (self.array_len is not None or self.data_loc or self.rel_loc)

    @property
    def common(self) -> bool:
        """Part of the header every event shares (``common_pid`` ...)."""
        return self.name.startswith("common_")

    def decode(self, record: bytes) -> "int | bytes | str | list[int]":
        """This field's value in a raw record (as read by a program or from trace_pipe_raw)."""
        raw = bytes(record[self.offset:self.offset + self.size])
        if len(raw) != self.size:
            raise ValueError(f"record of {len(record)} bytes too short for field {self.name}")
        if self.data_loc or self.rel_loc:
            (loc,) = struct.unpack("=I", raw)
            start, length = loc & 0xFFFF, loc >> 16
            if self.rel_loc:  # relative to the end of this field
                start += self.offset + self.size
            data = bytes(record[start:start + length])
            return data.split(b"\0", 1)[0].decode(errors="replace") if self.is_string else data
        if self.is_string:
            return raw.split(b"\0", 1)[0].decode(errors="replace")
        if self.array_len:
            elem = self.size // self.array_len
            if elem in _INT_FORMATS:
                fmt = _INT_FORMATS[elem].lower() if self.signed else _INT_FORMATS[elem]
                return list(struct.unpack(f"={self.array_len}{fmt}", raw))
            return raw
        if self.size in _INT_FORMATS:
            fmt = _INT_FORMATS[self.size]
            return struct.unpack("=" + (fmt.lower() if self.signed else fmt), raw)[0]
        return raw


class EventFormat(Record):
    """A parsed ``format`` file."""

    __slots__ = ("category", "name", "id", "fields", "print_fmt")
    category: str
    name: str
    id: int
    fields: tuple[Field, ...]
    print_fmt: str

    def __init__(self, category: str, name: str, id: int, fields: tuple[Field, ...],
                 print_fmt: str = "") -> None:
        self._assign(category=category, name=name, id=id, fields=fields, print_fmt=print_fmt)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        have = ", ".join(f.name for f in self.fields if not f.common)
        raise KeyError(f"tracepoint {self.category}:{self.name} has no field {name!r} "
                       f"(fields: {have})")

    @property
    def event_fields(self) -> tuple[Field, ...]:
        """Fields after the common header: what the event itself records."""
        return tuple(f for f in self.fields if not f.common)

    @property
    def size(self) -> int:
        """Fixed part of the record (dynamic ``__data_loc`` data follows it)."""
        return max((f.offset + f.size for f in self.fields), default=0)

    def decode(self, record: bytes) -> dict[str, object]:
        return {f.name: f.decode(record) for f in self.fields}


def _parse_decl(decl: str, line: str) -> tuple[str, str, int | None, bool, bool]:
    """``[__data_loc ]TYPE NAME[[LEN]]`` -> (type, name, array length, data_loc, rel_loc)."""
    decl = decl.strip()
    data_loc = rel_loc = False
    for prefix in ("__data_loc ", "__rel_loc "):
        if decl.startswith(prefix):
            data_loc, rel_loc = prefix == "__data_loc ", prefix == "__rel_loc "
            decl = decl[len(prefix):].strip()
    alen = None
    if decl.endswith("]") and "[" in decl:
        decl, _, alen = decl[:-1].rpartition("[")
        decl = decl.rstrip()
    end = len(decl)
    start = end
    while start and decl[start - 1] in _IDENT:
        start -= 1
    name, ctype = decl[start:], decl[:start].strip()
    if not name or name[0] not in _IDENT_START or "]" in (alen or ""):
        raise ValueError(f"cannot parse field declaration in {line.strip()!r}")
    if not ctype:
        raise ValueError(f"field {name!r} has no type in {line.strip()!r}")
    array_len = None
    if alen is not None:
        alen = alen.strip()
        array_len = _int_or_zero(alen)
    return ctype, name, array_len, data_loc, rel_loc


def _int_or_zero(text: str) -> int:
    """An array length: decimal or 0x hex; 0 for a symbolic one (``TASK_COMM_LEN``)."""
    if text.isdecimal() and text.isascii():
        return int(text)
    if text[:2] in ("0x", "0X") and len(text) > 2 and \
            all(c in "0123456789abcdefABCDEF" for c in text[2:]):
        return int(text, 16)
    return 0


def _field_line(s: str) -> tuple[str, int, int, bool]:
    """``field:DECL; offset:N; size:N; signed:N;`` -> (DECL, offset, size, signed)."""
    parts = s.split(";")
    if len(parts) < 5 or not parts[0].lstrip().startswith("field:"):
        raise ValueError(f"cannot parse format line {s!r}")
    values = []
    for part, key in zip(parts[1:4], ("offset:", "size:", "signed:")):
        part = part.strip()
        number = part[len(key):]
        if not part.startswith(key) or not number.lstrip("-").isdecimal() or \
                (key != "signed:" and number.startswith("-")):
            raise ValueError(f"cannot parse format line {s!r}")
        values.append(int(number))
    return parts[0].lstrip()[len("field:"):], values[0], values[1], values[2] == 1


def parse_format(text: str, category: str = "", name: str = "") -> EventFormat:
    """Parse the text of an ``events/<category>/<name>/format`` file."""
    fields = []
    event_id = -1
    print_fmt = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("name:") and not name:
            name = s[5:].strip()
        elif s.startswith("ID:"):
            event_id = int(s[3:])
        elif s.startswith("print fmt:"):
            print_fmt = s[len("print fmt:"):].strip()
        elif s.startswith("field:"):
            decl, offset, size, signed = _field_line(s)
            ctype, fname, alen, dloc, rloc = _parse_decl(decl, s)
            fields.append(Field(fname, ctype, offset, size, signed, alen, dloc, rloc))
    if event_id < 0:
        raise ValueError(f"format of {category}:{name} has no ID line")
    return EventFormat(category, name, event_id, tuple(fields), print_fmt)


def event_format(category: str, name: str) -> EventFormat:
    """Parsed format of tracepoint ``category:name``."""
    _check_names(category, name)
    try:
        text = read_file("events", category, name, "format")
    except TracefsError as e:
        raise TracefsError(e.errno, f"tracepoint {category}:{name} not found "
                                    f"({e.strerror})") from None
    return parse_format(text, category, name)


def list_events(category: str | None = None) -> list[tuple[str, str]]:
    """``[(category, name), ...]`` from ``available_events``."""
    out = []
    for line in read_file("available_events").splitlines():
        cat, _, ev = line.strip().partition(":")
        if ev and (category is None or cat == category):
            out.append((cat, ev))
    return out


def list_categories() -> list[str]:
    path = tracefs_path("events")
    return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
