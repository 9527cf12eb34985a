"""BTF kind numbers and flag values, as in include/uapi/linux/btf.h.

Kept apart from the parser so the encoder and tests can use the same names
without pulling in any file I/O.
"""

from __future__ import annotations

from pybpf._intenum import IntEnum

__all__ = [
    "BTF_MAGIC",
    "BTF_VERSION",
    "HEADER_LEN",
    "Kind",
    "IntEncoding",
    "FuncLinkage",
    "VarLinkage",
    "TRAILING_WORDS",
    "WORDS_PER_VLEN",
]

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
#: Size of ``struct btf_header`` (magic, version, flags, hdr_len, type_off,
#: type_len, str_off, str_len).
HEADER_LEN = 24


class Kind(IntEnum):
    """``BTF_KIND_*``; the member names are the kernel's, lower-cased in dumps."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding:
    """``BTF_INT_*`` bits of an INT's encoding byte."""

    NONE = 0
    SIGNED = 1 << 0
    CHAR = 1 << 1
    BOOL = 1 << 2


class FuncLinkage(IntEnum):
    """``BTF_FUNC_*``: stored in a FUNC's vlen field."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class VarLinkage(IntEnum):
    """``BTF_VAR_*``: stored in the u32 after a VAR record."""

    STATIC = 0
    GLOBAL_ALLOCATED = 1
    GLOBAL_EXTERN = 2


# Per kind, how many u32 words follow the 3-word ``struct btf_type`` no matter
# what vlen is, and how many words each of the vlen entries takes.  The
# parser's hot loop indexes these tuples, so they cover all 32 kind values;
# an unknown kind maps to -1 so the loop can reject it.
_FIXED = {Kind.INT: 1, Kind.ARRAY: 3, Kind.VAR: 1, Kind.DECL_TAG: 1}
_PER_VLEN = {
    Kind.STRUCT: 3,  # struct btf_member
    Kind.UNION: 3,
    Kind.ENUM: 2,  # struct btf_enum
    Kind.FUNC_PROTO: 2,  # struct btf_param
    Kind.DATASEC: 3,  # struct btf_var_secinfo
    Kind.ENUM64: 3,  # struct btf_enum64
}
TRAILING_WORDS: tuple[int, ...] = tuple(
    (3 + _FIXED.get(k, 0)) if k <= max(Kind) else -1 for k in range(32)
)
WORDS_PER_VLEN: tuple[int, ...] = tuple(_PER_VLEN.get(k, 0) for k in range(32))
