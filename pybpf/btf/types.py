"""Frozen dataclasses for BTF types.

Types refer to other types by id (``type_id``) rather than by object, the
way the wire format does: decoding ``task_struct`` must not drag in the
whole type graph.  ``.type`` resolves the id through the owning
:class:`~pybpf.btf.spec.Spec` when a caller actually needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from .kinds import FuncLinkage, IntEncoding, Kind, VarLinkage

if TYPE_CHECKING:  # pragma: no cover
    from .spec import Spec

__all__ = [
    "Type", "Void", "Int", "Pointer", "Array", "Member", "Composite", "Struct",
    "Union", "EnumValue", "Enum", "Enum64", "Fwd", "Qualifier", "Typedef",
    "Volatile", "Const", "Restrict", "TypeTag", "Func", "Param", "FuncProto",
    "Var", "VarSecinfo", "Datasec", "Float", "DeclTag", "MemberLocation",
]


def _spec_field():
    return field(default=None, kw_only=True, repr=False, compare=False)


@dataclass(frozen=True)
class Type:
    """Common part of every type: its id in the spec and its name ("" if anonymous)."""

    kind: ClassVar[Kind] = Kind.UNKN
    id: int
    name: str
    spec: "Spec | None" = _spec_field()

    def __str__(self) -> str:
        if self.spec is None:
            return f"{self.kind.name.lower()} {self.name}".strip()
        return self.spec.type_name(self.id)


@dataclass(frozen=True)
class _Ref:
    """Mixin for things pointing at another type through ``type_id``."""

    @property
    def type(self) -> Type:
        return self.spec.type_by_id(self.type_id)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Void(Type):
    kind: ClassVar[Kind] = Kind.UNKN


@dataclass(frozen=True)
class Int(Type):
    kind: ClassVar[Kind] = Kind.INT
    size: int
    encoding: int  # IntEncoding bits
    bits: int
    bit_offset: int = 0

    @property
    def signed(self) -> bool:
        return bool(self.encoding & IntEncoding.SIGNED)


@dataclass(frozen=True)
class Pointer(_Ref, Type):
    kind: ClassVar[Kind] = Kind.PTR
    type_id: int


@dataclass(frozen=True)
class Array(Type):
    kind: ClassVar[Kind] = Kind.ARRAY
    type_id: int
    index_type_id: int
    nelems: int

    @property
    def type(self) -> Type:
        return self.spec.type_by_id(self.type_id)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Member(_Ref):
    """One ``struct btf_member``; ``bitfield_size`` is 0 for ordinary members."""

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0
    spec: "Spec | None" = _spec_field()

    @property
    def offset(self) -> int:
        """Byte offset within the enclosing struct (bit offset rounded down)."""
        return self.bit_offset // 8


@dataclass(frozen=True)
class Composite(Type):
    size: int
    members: tuple[Member, ...]

    def member(self, path: str) -> "MemberLocation":
        """Resolve a dotted path such as ``"__sk_common.skc_daddr"``."""
        return self.spec.member(self, path)  # type: ignore[union-attr]

    def member_names(self) -> list[str]:
        return [m.name for m in self.members]


@dataclass(frozen=True)
class Struct(Composite):
    kind: ClassVar[Kind] = Kind.STRUCT


@dataclass(frozen=True)
class Union(Composite):
    kind: ClassVar[Kind] = Kind.UNION


@dataclass(frozen=True)
class EnumValue:
    name: str
    value: int


@dataclass(frozen=True)
class Enum(Type):
    kind: ClassVar[Kind] = Kind.ENUM
    size: int
    signed: bool
    values: tuple[EnumValue, ...]

    def value_of(self, name: str) -> int:
        for v in self.values:
            if v.name == name:
                return v.value
        raise KeyError(f"enum {self.name} has no enumerator {name!r}")


@dataclass(frozen=True)
class Enum64(Enum):
    kind: ClassVar[Kind] = Kind.ENUM64


@dataclass(frozen=True)
class Fwd(Type):
    kind: ClassVar[Kind] = Kind.FWD
    is_union: bool


@dataclass(frozen=True)
class Qualifier(_Ref, Type):
    type_id: int


@dataclass(frozen=True)
class Typedef(Qualifier):
    kind: ClassVar[Kind] = Kind.TYPEDEF


@dataclass(frozen=True)
class Volatile(Qualifier):
    kind: ClassVar[Kind] = Kind.VOLATILE


@dataclass(frozen=True)
class Const(Qualifier):
    kind: ClassVar[Kind] = Kind.CONST


@dataclass(frozen=True)
class Restrict(Qualifier):
    kind: ClassVar[Kind] = Kind.RESTRICT


@dataclass(frozen=True)
class TypeTag(Qualifier):
    kind: ClassVar[Kind] = Kind.TYPE_TAG


@dataclass(frozen=True)
class Func(_Ref, Type):
    """A function; ``id`` is what fentry/fexit/tp_btf take as attach_btf_id."""

    kind: ClassVar[Kind] = Kind.FUNC
    type_id: int
    linkage: FuncLinkage

    @property
    def proto(self) -> "FuncProto":
        t = self.type
        if not isinstance(t, FuncProto):  # Spec._decode checks; a hand-made Func may not be
            from .errors import BTFFormatError
            raise BTFFormatError(f"[{self.id}] FUNC {self.name or '(anon)'} Invalid type_id: "
                                 f"{t.kind.name} [{t.id}] is not a FUNC_PROTO")
        return t


@dataclass(frozen=True)
class Param(_Ref):
    name: str
    type_id: int
    spec: "Spec | None" = _spec_field()


@dataclass(frozen=True)
class FuncProto(Type):
    kind: ClassVar[Kind] = Kind.FUNC_PROTO
    return_type_id: int
    params: tuple[Param, ...]

    @property
    def return_type(self) -> Type:
        return self.spec.type_by_id(self.return_type_id)  # type: ignore[union-attr]

    @property
    def variadic(self) -> bool:
        """C ``...``: the kernel encodes it as a last param with name 0 and type 0."""
        return bool(self.params) and self.params[-1].type_id == 0


@dataclass(frozen=True)
class Var(_Ref, Type):
    kind: ClassVar[Kind] = Kind.VAR
    type_id: int
    linkage: VarLinkage


@dataclass(frozen=True)
class VarSecinfo(_Ref):
    type_id: int
    offset: int
    size: int
    spec: "Spec | None" = _spec_field()


@dataclass(frozen=True)
class Datasec(Type):
    kind: ClassVar[Kind] = Kind.DATASEC
    size: int
    vars: tuple[VarSecinfo, ...]


@dataclass(frozen=True)
class Float(Type):
    kind: ClassVar[Kind] = Kind.FLOAT
    size: int


@dataclass(frozen=True)
class DeclTag(_Ref, Type):
    kind: ClassVar[Kind] = Kind.DECL_TAG
    type_id: int
    component_idx: int


@dataclass(frozen=True)
class MemberLocation:
    """Where a (possibly nested) member lives inside an outer type.

    ``offset`` and ``size`` are in bytes and are what a program needs for a
    ``bpf_probe_read_kernel(dst, size, base + offset)``.  For a bitfield,
    ``offset`` is the byte holding its first bit and ``size`` is the size of
    the declared type; use ``bit_offset``/``bitfield_size`` to extract it.
    """

    path: str
    offset: int
    size: int
    bit_offset: int
    bitfield_size: int
    type: Type

    @property
    def is_bitfield(self) -> bool:
        return self.bitfield_size != 0
