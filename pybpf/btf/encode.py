"""Build a BTF blob from Python, for BPF_BTF_LOAD.

The loader needs BTF for things the kernel will not take without it: map
key/value types (ring buffer and spin-lock maps, ``bpf_map_create`` with
``btf_key_type_id``), ``func_info``/``line_info`` of programs with
subprograms, global data sections.  :class:`Builder` appends types in order
and hands back their ids, so references are plain ints as in the format.
"""

from __future__ import annotations

import struct
from typing import Iterable, Sequence

from .errors import BTFError
from .kinds import (BTF_MAGIC, BTF_VERSION, HEADER_LEN, FuncLinkage, IntEncoding, Kind,
                    VarLinkage)

__all__ = ["Builder"]

_MAX_VLEN = 0xFFFF


def _info(kind: Kind, vlen: int = 0, kflag: bool = False) -> int:
    if not 0 <= vlen <= _MAX_VLEN:
        raise BTFError(f"vlen {vlen} out of range for {kind.name}")
    return (int(kflag) << 31) | (int(kind) << 24) | vlen


class Builder:
    """Accumulates types and strings; :meth:`encode` returns the blob.

    Type ids start at 1 (0 is void).  Strings are deduplicated.
    """

    def __init__(self) -> None:
        self._types: list[bytes] = []
        self._strings = bytearray(b"\0")
        self._string_offsets: dict[str, int] = {"": 0}
        self._kinds: list[Kind] = []

    def __len__(self) -> int:
        """Number of ids in use, including void."""
        return len(self._types) + 1

    def add_string(self, s: str) -> int:
        off = self._string_offsets.get(s)
        if off is None:
            raw = s.encode()
            if b"\0" in raw:
                raise BTFError(f"BTF name {s!r} contains a NUL byte")
            off = len(self._strings)
            self._strings += raw + b"\0"
            self._string_offsets[s] = off
        return off

    def _check_ref(self, type_id: int, what: str) -> None:
        if not 0 <= type_id < len(self):
            raise BTFError(f"{what}: type id {type_id} is not defined yet (have {len(self)} ids)")

    def _add(self, kind: Kind, name: str, size_or_type: int, vlen: int = 0,
             kflag: bool = False, tail: bytes = b"") -> int:
        rec = struct.pack("=III", self.add_string(name), _info(kind, vlen, kflag), size_or_type)
        self._types.append(rec + tail)
        self._kinds.append(kind)
        return len(self._types)

    # -- kinds ---------------------------------------------------------------

    def add_int(self, name: str, size: int, *, signed: bool = False, char: bool = False,
                bool_: bool = False, bits: int | None = None, bit_offset: int = 0) -> int:
        if size not in (1, 2, 4, 8, 16):
            raise BTFError(f"INT {name!r}: size {size} not one of 1, 2, 4, 8, 16")
        enc = IntEncoding.NONE
        if signed:
            enc |= IntEncoding.SIGNED
        if char:
            enc |= IntEncoding.CHAR
        if bool_:
            enc |= IntEncoding.BOOL
        nbits = size * 8 if bits is None else bits
        tail = struct.pack("=I", int(enc) << 24 | bit_offset << 16 | nbits)
        return self._add(Kind.INT, name, size, tail=tail)

    def add_ptr(self, type_id: int) -> int:
        self._check_ref(type_id, "PTR")
        return self._add(Kind.PTR, "", type_id)

    def add_array(self, type_id: int, nelems: int, index_type_id: int) -> int:
        """``index_type_id`` must be an INT (the kernel checks); usually a u32."""
        self._check_ref(type_id, "ARRAY")
        self._check_ref(index_type_id, "ARRAY index")
        return self._add(Kind.ARRAY, "", 0, tail=struct.pack("=III", type_id, index_type_id, nelems))

    def _composite(self, kind: Kind, name: str, size: int,
                   members: Iterable[Sequence]) -> int:
        """members: ``(name, type_id, bit_offset[, bitfield_size])``."""
        tail = bytearray()
        kflag = False
        ms = [tuple(m) for m in members]
        if any(len(m) > 3 and m[3] for m in ms):
            kflag = True
        for m in ms:
            mname, tid, bit = m[0], m[1], m[2]
            bsize = m[3] if len(m) > 3 else 0
            self._check_ref(tid, f"{kind.name} {name} member {mname}")
            if kflag:
                if bit >= 1 << 24 or bsize >= 256:
                    raise BTFError(f"member {mname}: bit offset/size too large for kind_flag encoding")
                bit = bsize << 24 | bit
            tail += struct.pack("=III", self.add_string(mname), tid, bit)
        return self._add(kind, name, size, len(ms), kflag, bytes(tail))

    def add_struct(self, name: str, size: int, members: Iterable[Sequence]) -> int:
        return self._composite(Kind.STRUCT, name, size, members)

    def add_union(self, name: str, size: int, members: Iterable[Sequence]) -> int:
        return self._composite(Kind.UNION, name, size, members)

    def add_enum(self, name: str, size: int, values: Iterable[tuple[str, int]],
                 *, signed: bool = False) -> int:
        vals = list(values)
        if any(v < -(1 << 31) or v >= 1 << 32 for _, v in vals):
            return self._enum64(name, size, vals, signed)
        tail = b"".join(struct.pack("=II", self.add_string(n), v & 0xFFFFFFFF) for n, v in vals)
        return self._add(Kind.ENUM, name, size, len(vals), signed, tail)

    def _enum64(self, name: str, size: int, vals: list[tuple[str, int]], signed: bool) -> int:
        tail = b"".join(struct.pack("=III", self.add_string(n), v & 0xFFFFFFFF,
                                    (v >> 32) & 0xFFFFFFFF) for n, v in vals)
        return self._add(Kind.ENUM64, name, size, len(vals), signed, tail)

    def add_fwd(self, name: str, *, union: bool = False) -> int:
        return self._add(Kind.FWD, name, 0, kflag=union)

    def _ref(self, kind: Kind, name: str, type_id: int) -> int:
        self._check_ref(type_id, kind.name)
        return self._add(kind, name, type_id)

    def add_typedef(self, name: str, type_id: int) -> int:
        return self._ref(Kind.TYPEDEF, name, type_id)

    def add_const(self, type_id: int) -> int:
        return self._ref(Kind.CONST, "", type_id)

    def add_volatile(self, type_id: int) -> int:
        return self._ref(Kind.VOLATILE, "", type_id)

    def add_restrict(self, type_id: int) -> int:
        return self._ref(Kind.RESTRICT, "", type_id)

    def add_type_tag(self, name: str, type_id: int) -> int:
        return self._ref(Kind.TYPE_TAG, name, type_id)

    def add_func_proto(self, return_type_id: int, params: Iterable[tuple[str, int]]) -> int:
        """params: ``(name, type_id)``; a last ``("", 0)`` means C ``...``."""
        ps = list(params)
        self._check_ref(return_type_id, "FUNC_PROTO return")
        for n, t in ps:
            self._check_ref(t, f"FUNC_PROTO param {n}")
        tail = b"".join(struct.pack("=II", self.add_string(n), t) for n, t in ps)
        return self._add(Kind.FUNC_PROTO, "", return_type_id, len(ps), tail=tail)

    def add_func(self, name: str, proto_id: int,
                 linkage: FuncLinkage = FuncLinkage.GLOBAL) -> int:
        self._check_ref(proto_id, f"FUNC {name}")
        return self._add(Kind.FUNC, name, proto_id, vlen=int(linkage))

    def add_var(self, name: str, type_id: int,
                linkage: VarLinkage = VarLinkage.GLOBAL_ALLOCATED) -> int:
        self._check_ref(type_id, f"VAR {name}")
        return self._add(Kind.VAR, name, type_id, tail=struct.pack("=I", int(linkage)))

    def add_datasec(self, name: str, size: int, vars: Iterable[tuple[int, int, int]]) -> int:
        """vars: ``(var_type_id, offset, size)``, sorted by offset as the kernel requires."""
        vs = list(vars)
        for tid, _, _ in vs:
            self._check_ref(tid, f"DATASEC {name}")
        tail = b"".join(struct.pack("=III", *v) for v in vs)
        return self._add(Kind.DATASEC, name, size, len(vs), tail=tail)

    def add_float(self, name: str, size: int) -> int:
        return self._add(Kind.FLOAT, name, size)

    def add_decl_tag(self, name: str, type_id: int, component_idx: int = -1) -> int:
        self._check_ref(type_id, f"DECL_TAG {name}")
        return self._add(Kind.DECL_TAG, name, type_id,
                         tail=struct.pack("=I", component_idx & 0xFFFFFFFF))

    # -- output --------------------------------------------------------------

    def encode(self) -> bytes:
        """``struct btf_header`` + type section + string section."""
        types = b"".join(self._types)
        header = struct.pack("=HBBIIIII", BTF_MAGIC, BTF_VERSION, 0, HEADER_LEN,
                             0, len(types), len(types), len(self._strings))
        return header + types + bytes(self._strings)
