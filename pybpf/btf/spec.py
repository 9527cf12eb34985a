"""Lazy parser for BTF blobs (vmlinux, module split BTF, or our own encodings).

Opening a spec does one pass over the type section that records only where
each type record starts (about 25 ms for vmlinux's ~130k types).  Names are
found by searching the string section for ``\\0name\\0`` and then the type
section for records whose ``name_off`` equals that offset, both in C
(``bytes.find``, ``array.index``).  A type is decoded into a dataclass only
when asked for, and cached.  This keeps "open vmlinux, get one member
offset" well under 100 ms in pure Python.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from typing import Iterator

from . import types as T
from .errors import BTFError, BTFFormatError, MemberNotFoundError, TypeNotFoundError
from .kinds import (BTF_MAGIC, HEADER_LEN, TRAILING_WORDS, WORDS_PER_VLEN,
                    FuncLinkage, IntEncoding, Kind, VarLinkage)

__all__ = ["Spec", "KindLike"]

KindLike = Kind | tuple[Kind, ...] | None

_POINTER_SIZE = struct.calcsize("P")
_QUALIFIERS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
_MAX_RESOLVE_DEPTH = 64


def _scan(words, trailing=TRAILING_WORDS, per_vlen=WORDS_PER_VLEN) -> list[int]:
    """Return the word index of every type record; the hot loop of opening a spec."""
    offsets: list[int] = []
    append = offsets.append
    i = 0
    n = len(words)
    try:
        while i < n:
            append(i)
            info = words[i + 1]
            kind = info >> 24 & 0x1F
            fixed = trailing[kind]
            if fixed < 0:
                raise BTFFormatError(
                    f"[{len(offsets)}] Invalid kind:{kind} at type section byte {i * 4}")
            i += fixed + (info & 0xFFFF) * per_vlen[kind]
    except IndexError:
        raise BTFFormatError(f"type section truncated in type [{len(offsets)}]") from None
    if i != n:
        raise BTFFormatError(f"type section truncated in type [{len(offsets)}]")
    return offsets


class Spec:
    """Types of one BTF blob; for split BTF (kernel modules) also its base.

    Type ids are global across base and split BTF, exactly as the kernel
    numbers them: a module's first type has id ``len(base)``.
    """

    def __init__(self, data: bytes, base: "Spec | None" = None, *, name: str = "") -> None:
        self.name = name
        self.base = base
        if len(data) < HEADER_LEN:
            raise BTFFormatError(f"BTF blob of {len(data)} bytes is shorter than its header")
        magic, version, _flags, hdr_len = struct.unpack_from("=HBBI", data)
        if magic != BTF_MAGIC:
            if magic == 0x9FEB:
                raise BTFFormatError("BTF has foreign endianness; only native-endian BTF is supported")
            raise BTFFormatError(f"Invalid magic 0x{magic:x} (want 0x{BTF_MAGIC:x})")
        if version != 1:
            raise BTFFormatError(f"Unsupported version {version}")
        if hdr_len < HEADER_LEN or hdr_len > len(data):
            raise BTFFormatError(f"Invalid hdr_len {hdr_len}")
        type_off, type_len, str_off, str_len = struct.unpack_from("=IIII", data, 8)
        t0, s0 = hdr_len + type_off, hdr_len + str_off
        if t0 + type_len > len(data) or s0 + str_len > len(data):
            raise BTFFormatError("type or string section extends past the end of the blob")
        if type_len % 4 or type_off % 4:
            raise BTFFormatError("Unaligned type section")
        self._data = data
        view = memoryview(data)
        self._type_bytes = view[t0:t0 + type_len]
        self._words = self._type_bytes.cast("I")
        self._strings = bytes(view[s0:s0 + str_len])
        if str_len and self._strings[-1:] != b"\0":
            raise BTFFormatError("string section is not NUL-terminated")
        self._offsets = _scan(self._words)
        self._type_start = t0
        self._first_id = len(base) if base is not None else 1
        self._str_base = base._str_base + len(base._strings) if base is not None else 0
        self._cache: dict[int, T.Type] = {}
        self._by_name: dict[str, tuple[int, ...]] = {}
        self._all_names: dict[str, list[int]] | None = None

    @classmethod
    def from_file(cls, path: str, base: "Spec | None" = None) -> "Spec":
        with open(path, "rb") as f:
            return cls(f.read(), base, name=str(path))

    # -- ids and strings ---------------------------------------------------

    def __len__(self) -> int:
        """Number of type ids, including void (id 0) and any base types."""
        return self._first_id + len(self._offsets)

    def __repr__(self) -> str:
        return f"<Spec {self.name or 'btf'} types={len(self)}>"

    @property
    def first_id(self) -> int:
        """Id of this blob's first own type (1, or ``len(base)`` for split BTF)."""
        return self._first_id

    def string(self, offset: int) -> str:
        """The string at ``offset`` in the (possibly base-extended) string section."""
        if offset < self._str_base:
            return self.base.string(offset)  # type: ignore[union-attr]
        s = self._strings
        start = offset - self._str_base
        if start >= len(s):
            raise BTFFormatError(f"Invalid name_offset:{offset}")
        return s[start:s.index(b"\0", start)].decode("utf-8", "replace")

    def _record(self, type_id: int) -> int:
        idx = type_id - self._first_id
        if idx < 0 or idx >= len(self._offsets):
            raise TypeNotFoundError(f"type id {type_id} out of range [0, {len(self)})")
        return self._offsets[idx]

    def _in_base(self, type_id: int) -> bool:
        """True if ``type_id`` belongs to the base spec; rejects negative ids."""
        if type_id < self._first_id:
            if type_id < 0 or self.base is None:
                raise TypeNotFoundError(f"type id {type_id} out of range [0, {len(self)})")
            return True
        return False

    def kind_of(self, type_id: int) -> Kind:
        if type_id == 0:
            return Kind.UNKN
        if self._in_base(type_id):
            return self.base.kind_of(type_id)  # type: ignore[union-attr]
        return Kind(self._words[self._record(type_id) + 1] >> 24 & 0x1F)

    def name_of(self, type_id: int) -> str:
        if type_id == 0:
            return ""
        if self._in_base(type_id):
            return self.base.name_of(type_id)  # type: ignore[union-attr]
        return self._name_string(type_id, self._words[self._record(type_id)])

    def _name_string(self, type_id: int, offset: int) -> str:
        """``string(offset)`` for a name inside type ``type_id``; errors name the type."""
        try:
            return self.string(offset)
        except BTFFormatError:
            raise BTFFormatError(f"[{type_id}] Invalid name_offset:{offset}") from None

    def malformed(self, type_id: int, message: str) -> BTFFormatError:
        """A :class:`BTFFormatError` worded like the kernel's BTF log.

        The kernel prints ``[id] KIND name`` before its complaint ("[3] FUNC
        prog Invalid type_id"), so users can grep the same words.
        """
        label = ""
        try:
            label = self.kind_of(type_id).name
            label += f" {self.name_of(type_id) or '(anon)'}"
        except BTFError:
            pass
        return BTFFormatError(f"[{type_id}] {label} {message}" if label else f"[{type_id}] {message}")

    # -- decoding ------------------------------------------------------------

    def type_by_id(self, type_id: int) -> T.Type:
        """Decode (once) and return the type with this id."""
        t = self._cache.get(type_id)
        if t is None:
            if type_id == 0:
                t = T.Void(0, "void", spec=self)
            elif self._in_base(type_id):
                return self.base.type_by_id(type_id)  # type: ignore[union-attr]
            else:
                t = self._decode(type_id)
            self._cache[type_id] = t
        return t

    def _decode(self, tid: int) -> T.Type:
        w = self._words
        i = self._record(tid)
        name_off, info, size_or_type = w[i], w[i + 1], w[i + 2]
        kind = info >> 24 & 0x1F
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        j = i + 3

        def s(offset: int) -> str:
            return self._name_string(tid, offset)

        name = s(name_off) if name_off else ""
        n = len(self)

        def ref(type_id: int, what: str = "Invalid type_id") -> int:
            # Every reference is range-checked here, once, so code that follows
            # ``type_id`` later never meets a dangling id in a malformed blob.
            if type_id >= n:
                raise self.malformed(tid, f"{what} (type id {type_id} >= {n} types)")
            return type_id

        if kind == Kind.INT:
            enc = w[j]
            return T.Int(tid, name, size_or_type, enc >> 24 & 0xF,
                         enc & 0xFF, enc >> 16 & 0xFF, spec=self)
        if kind == Kind.PTR:
            return T.Pointer(tid, name, ref(size_or_type), spec=self)
        if kind == Kind.ARRAY:
            return T.Array(tid, name, ref(w[j], "Invalid elem"), ref(w[j + 1], "Invalid index"),
                           w[j + 2], spec=self)
        if kind in (Kind.STRUCT, Kind.UNION):
            members = []
            for k in range(j, j + 3 * vlen, 3):
                off = w[k + 2]
                bsize = 0
                if kflag:
                    bsize, off = off >> 24, off & 0xFFFFFF
                members.append(T.Member(s(w[k]) if w[k] else "", ref(w[k + 1], "Invalid member"),
                                        off, bsize, spec=self))
            cls = T.Struct if kind == Kind.STRUCT else T.Union
            return cls(tid, name, size_or_type, tuple(members), spec=self)
        if kind == Kind.ENUM:
            vals = []
            for k in range(j, j + 2 * vlen, 2):
                v = w[k + 1]
                if kflag and v >= 1 << 31:
                    v -= 1 << 32
                vals.append(T.EnumValue(s(w[k]), v))
            return T.Enum(tid, name, size_or_type, kflag, tuple(vals), spec=self)
        if kind == Kind.ENUM64:
            vals = []
            for k in range(j, j + 3 * vlen, 3):
                v = w[k + 1] | w[k + 2] << 32
                if kflag and v >= 1 << 63:
                    v -= 1 << 64
                vals.append(T.EnumValue(s(w[k]), v))
            return T.Enum64(tid, name, size_or_type, kflag, tuple(vals), spec=self)
        if kind == Kind.FWD:
            return T.Fwd(tid, name, kflag, spec=self)
        if kind in _QUALIFIERS:
            cls = {Kind.TYPEDEF: T.Typedef, Kind.VOLATILE: T.Volatile, Kind.CONST: T.Const,
                   Kind.RESTRICT: T.Restrict, Kind.TYPE_TAG: T.TypeTag}[Kind(kind)]
            return cls(tid, name, ref(size_or_type), spec=self)
        if kind == Kind.FUNC:
            if vlen > FuncLinkage.EXTERN:
                raise self.malformed(tid, f"Invalid func linkage {vlen}")
            if self.kind_of(ref(size_or_type)) != Kind.FUNC_PROTO:
                raise self.malformed(tid, f"Invalid type_id: FUNC must refer to a FUNC_PROTO, "
                                          f"not {self.kind_of(size_or_type).name} "
                                          f"[{size_or_type}]")
            return T.Func(tid, name, size_or_type, FuncLinkage(vlen), spec=self)
        if kind == Kind.FUNC_PROTO:
            ref(size_or_type, "Invalid return type")
            params = tuple(T.Param(s(w[k]) if w[k] else "", ref(w[k + 1], "Invalid arg"), spec=self)
                           for k in range(j, j + 2 * vlen, 2))
            return T.FuncProto(tid, name, size_or_type, params, spec=self)
        if kind == Kind.VAR:
            if not size_or_type:
                raise self.malformed(tid, "Invalid type_id (a VAR cannot be void)")
            if w[j] > VarLinkage.GLOBAL_EXTERN:
                raise self.malformed(tid, f"Linkage not supported ({w[j]})")
            return T.Var(tid, name, ref(size_or_type), VarLinkage(w[j]), spec=self)
        if kind == Kind.DATASEC:
            secs = tuple(T.VarSecinfo(ref(w[k]), w[k + 1], w[k + 2], spec=self)
                         for k in range(j, j + 3 * vlen, 3))
            return T.Datasec(tid, name, size_or_type, secs, spec=self)
        if kind == Kind.FLOAT:
            return T.Float(tid, name, size_or_type, spec=self)
        if kind == Kind.DECL_TAG:
            idx = w[j]
            return T.DeclTag(tid, name, ref(size_or_type),
                             idx - (1 << 32) if idx >= 1 << 31 else idx, spec=self)
        raise BTFFormatError(f"[{tid}] Invalid kind:{kind}")  # UNKN (0); _scan rejects > max

    def types(self) -> Iterator[T.Type]:
        """Every own type in id order (decodes all of them: the slow path)."""
        for tid in range(self._first_id, len(self)):
            yield self.type_by_id(tid)

    # -- name lookup ---------------------------------------------------------

    def _own_ids_with_name_off(self, name_off: int) -> list[int]:
        """Ids of own records whose name_off equals ``name_off``.

        ``bytes.find`` runs at memchr speed; hits that are not at a record's
        first word (a member name, a size that happens to match) are dropped
        by a bisect into the record offsets.
        """
        data = self._data
        needle = struct.pack("=I", name_off)
        start, end = self._type_start, self._type_start + len(self._type_bytes)
        offsets = self._offsets
        found = []
        pos = data.find(needle, start, end)
        while pos >= 0:
            rel = pos - start
            if rel % 4 == 0:
                k = bisect_left(offsets, rel // 4)
                if k < len(offsets) and offsets[k] == rel // 4:
                    found.append(self._first_id + k)
            pos = data.find(needle, pos + 1, end)
        return found

    def _string_offsets(self, name: str) -> list[int]:
        """Offsets (in this blob's numbering) of strings equal to ``name``."""
        needle = b"\0" + name.encode() + b"\0"
        s = self._strings
        out = []
        pos = s.find(needle)
        while pos >= 0:
            out.append(self._str_base + pos + 1)
            pos = s.find(needle, pos + 1)
        return out

    def ids_by_name(self, name: str) -> tuple[int, ...]:
        """All type ids (base first) whose name is exactly ``name``."""
        if not name:
            raise TypeNotFoundError("cannot look up the empty name")
        hit = self._by_name.get(name)
        if hit is not None:
            return hit
        ids: list[int] = []
        if self._all_names is not None:
            ids = list(self._all_names.get(name, ()))
        else:
            offs = self._string_offsets(name)
            if self.base is not None:
                ids.extend(self.base.ids_by_name(name))
                offs = self.base._string_offsets(name) + offs
            for off in offs:
                ids.extend(self._own_ids_with_name_off(off))
            if not ids:
                # Strings may be tail-merged by some producers ("pid" inside
                # "tgid"); a full name index is the slow but certain answer.
                ids = list(self.name_index().get(name, ()))
        result = tuple(sorted(set(ids)))
        self._by_name[name] = result
        return result

    def name_index(self) -> dict[str, list[int]]:
        """Map every name to its ids (own and base); built once on demand."""
        if self._all_names is None:
            index: dict[str, list[int]] = {}
            if self.base is not None:
                for n, ids in self.base.name_index().items():
                    index[n] = list(ids)
            w = self._words
            string = self.string
            first = self._first_id
            for k, i in enumerate(self._offsets):
                off = w[i]
                if off:
                    try:
                        name = string(off)
                    except BTFFormatError:
                        name = self._name_string(first + k, off)  # raises, naming the type
                    index.setdefault(name, []).append(first + k)
            self._all_names = index
        return self._all_names

    def lookup_all(self, name: str, kind: KindLike = None) -> list[T.Type]:
        kinds = (kind,) if isinstance(kind, Kind) else kind
        out = []
        for tid in self.ids_by_name(name):
            if kinds is None or self.kind_of(tid) in kinds:
                out.append(self.type_by_id(tid))
        return out

    def lookup(self, name: str, kind: KindLike = None) -> T.Type:
        """The type called ``name`` (of ``kind``, if given).

        Forward declarations lose against a full definition of the same name;
        otherwise the lowest id wins.
        """
        found = self.lookup_all(name, kind)
        if not found:
            what = f" of kind {'/'.join(k.name for k in ((kind,) if isinstance(kind, Kind) else kind))}" if kind else ""
            raise TypeNotFoundError(f"no BTF type named {name!r}{what} in {self.name or 'spec'}")
        full = [t for t in found if t.kind != Kind.FWD]
        return (full or found)[0]

    def struct(self, name: str) -> T.Composite:
        """``struct name`` or ``union name``."""
        t = self.lookup(name, (Kind.STRUCT, Kind.UNION))
        assert isinstance(t, T.Composite)
        return t

    def enum(self, name: str) -> T.Enum:
        t = self.lookup(name, (Kind.ENUM, Kind.ENUM64))
        assert isinstance(t, T.Enum)
        return t

    def func(self, name: str) -> T.Func:
        t = self.lookup(name, Kind.FUNC)
        assert isinstance(t, T.Func)
        return t

    def func_id(self, name: str) -> int:
        """BTF id of FUNC ``name``: the attach_btf_id of fentry/fexit/fmod_ret."""
        return self.func(name).id

    def func_args(self, name: str) -> list[tuple[str, str]]:
        """``[(param name, C type), ...]`` of function ``name``, e.g. ``("sk", "struct sock *")``."""
        return [(p.name, self.type_name(p.type_id)) for p in self.func(name).proto.params]

    # -- type arithmetic -----------------------------------------------------

    def _as_type(self, t: "T.Type | int | str") -> T.Type:
        if isinstance(t, int):
            return self.type_by_id(t)
        if isinstance(t, str):
            return self.lookup(t)
        return t

    def resolve(self, t: "T.Type | int | str") -> T.Type:
        """Skip typedefs, qualifiers and type tags: ``pid_t`` -> ``int``."""
        t = self._as_type(t)
        start = t.id
        for _ in range(_MAX_RESOLVE_DEPTH):
            if t.kind not in _QUALIFIERS:
                return t
            t = self.type_by_id(t.type_id)  # type: ignore[attr-defined]
        raise self.malformed(start, "Loop detected")

    def sizeof(self, t: "T.Type | int | str") -> int:
        """Size in bytes, like C ``sizeof``.

        Iterative, with a bound, because a malformed blob may hold an array
        whose element type is the array itself (the kernel says "Loop
        detected"; we must not recurse forever either).
        """
        t = self._as_type(t)
        start = t.id
        container: "T.Type | None" = None  # the ARRAY/VAR whose element we are sizing
        count = 1
        for _ in range(_MAX_RESOLVE_DEPTH):
            t = self.resolve(t)
            if isinstance(t, (T.Int, T.Composite, T.Enum, T.Float, T.Datasec)):
                return count * t.size
            if isinstance(t, T.Pointer):
                return count * _POINTER_SIZE
            if isinstance(t, (T.Array, T.Var)):
                if isinstance(t, T.Array):
                    count *= t.nelems
                container = t
                t = self.type_by_id(t.type_id)
                continue
            if container is not None:  # array of functions, var of void: not valid BTF
                what = "Invalid elem" if isinstance(container, T.Array) else "Invalid type_id"
                raise self.malformed(container.id, f"{what}: {t.kind.name} [{t.id}] has no size")
            raise BTFError(f"[{t.id}] {t.kind.name} {t.name!r} has no size")
        raise self.malformed(start, "Loop detected")

    def type_name(self, t: "T.Type | int") -> str:
        """C spelling of a type: ``struct sock *``, ``const char *``, ``u8[16]``."""
        from .cformat import c_type_name
        return c_type_name(self, self._as_type(t))

    # -- members -------------------------------------------------------------

    def member_offset(self, type_name: str, path: str) -> tuple[int, int]:
        """``(byte offset, size)`` of dotted ``path`` inside struct/union ``type_name``."""
        loc = self.member(type_name, path)
        return loc.offset, loc.size

    def member(self, outer: "T.Type | int | str", path: str) -> T.MemberLocation:
        """Resolve ``path`` ("a.b", "a[2].c") inside ``outer``, descending into
        anonymous structs/unions the way C lets ``sk->skc_daddr`` reach
        ``sk->__sk_common.skc_daddr``'s fields."""
        t = self._as_type(outer) if not isinstance(outer, str) else self.struct(outer)
        bit = 0
        bsize = 0
        cur = self.resolve(t)
        if not path:
            raise MemberNotFoundError("empty member path")
        for comp in path.split("."):
            name, indexes = _split_indexes(comp, path)
            if name:
                if not isinstance(cur, T.Composite):
                    raise MemberNotFoundError(
                        f"{path!r}: {self.type_name(cur)} is not a struct or union "
                        f"(cannot take member {name!r}; pointers must be read first)")
                found = _find_member(self, cur, name)
                if found is None:
                    raise MemberNotFoundError(
                        f"{path!r}: {self.type_name(cur)} has no member named {name!r}")
                m_bit, member = found
                bit += m_bit
                bsize = member.bitfield_size
                mtype = self.type_by_id(member.type_id)
                cur = self.resolve(mtype)
                if not bsize and isinstance(cur, T.Int) and (cur.bit_offset or cur.bits != cur.size * 8):
                    bit += cur.bit_offset  # pre-kind_flag bitfield encoding
                    bsize = cur.bits
            else:
                mtype = cur
            for idx in indexes:
                if not isinstance(cur, T.Array):
                    raise MemberNotFoundError(f"{path!r}: {self.type_name(cur)} is not an array")
                if idx >= cur.nelems and cur.nelems:
                    raise MemberNotFoundError(
                        f"{path!r}: index {idx} out of bounds of {self.type_name(cur)}")
                bit += idx * self.sizeof(cur.type_id) * 8
                mtype = self.type_by_id(cur.type_id)
                cur = self.resolve(mtype)
                bsize = 0
        return T.MemberLocation(path, bit // 8, self.sizeof(mtype), bit, bsize, mtype)


def _split_indexes(comp: str, path: str) -> tuple[str, list[int]]:
    if "[" not in comp:
        return comp, []
    name, _, rest = comp.partition("[")
    idx = []
    for part in ("[" + rest).split("[")[1:]:
        if not part.endswith("]") or not part[:-1].strip().isdigit():
            raise MemberNotFoundError(f"{path!r}: malformed array index in {comp!r}")
        idx.append(int(part[:-1]))
    return name, idx


def _find_member(spec: Spec, comp: T.Composite, name: str,
                 path: "list[int] | None" = None,
                 searched: "set[int] | None" = None) -> "tuple[int, T.Member] | None":
    """Bit offset and member for ``name``, searching anonymous members too.

    ``path`` holds the composites being searched (one containing itself is a
    malformed blob: "Loop detected"); ``searched`` those already known not to
    hold ``name``, so shared anonymous members are searched once.
    """
    for m in comp.members:
        if m.name == name:
            return m.bit_offset, m
    path = [] if path is None else path
    searched = set() if searched is None else searched
    if comp.id in path:
        raise spec.malformed(comp.id, "Loop detected")
    path.append(comp.id)
    for m in comp.members:
        if not m.name:
            inner = spec.resolve(m.type_id)
            if isinstance(inner, T.Composite) and inner.id not in searched:
                hit = _find_member(spec, inner, name, path, searched)
                if hit is not None:
                    return m.bit_offset + hit[0], hit[1]
    path.pop()
    searched.add(comp.id)
    return None

