"""C spelling of BTF types, for messages and for comparing with bpftool/pahole."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import types as T

if TYPE_CHECKING:  # pragma: no cover
    from .spec import Spec

__all__ = ["c_type_name"]

_MAX_DEPTH = 32


def _params(spec: "Spec", proto: T.FuncProto, depth: int) -> str:
    if not proto.params:
        return "void"
    out = []
    for p in proto.params:
        out.append("..." if p.type_id == 0 else _name(spec, spec.type_by_id(p.type_id), depth + 1))
    return ", ".join(out)


def _name(spec: "Spec", t: T.Type, depth: int) -> str:
    if depth > _MAX_DEPTH:
        return "..."
    if isinstance(t, T.Void):
        return "void"
    if isinstance(t, (T.Int, T.Float, T.Typedef)):
        return t.name
    if isinstance(t, T.Composite):
        return f"{'struct' if isinstance(t, T.Struct) else 'union'} {t.name or '{...}'}"
    if isinstance(t, T.Enum):
        return f"enum {t.name or '{...}'}"
    if isinstance(t, T.Fwd):
        return f"{'union' if t.is_union else 'struct'} {t.name}"
    if isinstance(t, (T.Const, T.Volatile, T.Restrict)):
        word = {T.Const: "const", T.Volatile: "volatile", T.Restrict: "restrict"}[type(t)]
        inner = spec.type_by_id(t.type_id)
        inner_name = _name(spec, inner, depth + 1)
        if isinstance(spec.resolve(inner), T.Pointer) and not isinstance(inner, T.Typedef):
            return f"{inner_name} {word}"
        return f"{word} {inner_name}"
    if isinstance(t, T.TypeTag):
        return _name(spec, spec.type_by_id(t.type_id), depth + 1)
    if isinstance(t, T.Pointer):
        target = spec.type_by_id(t.type_id)
        if isinstance(target, T.FuncProto):
            ret = _name(spec, spec.type_by_id(target.return_type_id), depth + 1)
            return f"{ret} (*)({_params(spec, target, depth)})"
        inner = _name(spec, target, depth + 1)
        return inner + ("*" if inner.endswith("*") else " *")
    if isinstance(t, T.Array):
        dims = []
        while isinstance(t, T.Array):
            dims.append(f"[{t.nelems}]")
            t = spec.type_by_id(t.type_id)
        return _name(spec, t, depth + 1) + "".join(dims)
    if isinstance(t, T.FuncProto):
        ret = _name(spec, spec.type_by_id(t.return_type_id), depth + 1)
        return f"{ret} ({_params(spec, t, depth)})"
    if isinstance(t, T.Func):
        proto = spec.type_by_id(t.type_id)
        assert isinstance(proto, T.FuncProto)
        ret = _name(spec, spec.type_by_id(proto.return_type_id), depth + 1)
        return f"{ret} {t.name}({_params(spec, proto, depth)})"
    if isinstance(t, T.Var):
        return f"{_name(spec, spec.type_by_id(t.type_id), depth + 1)} {t.name}"
    if isinstance(t, T.Datasec):
        return f"SEC {t.name}"
    return f"{t.kind.name.lower()} {t.name}".strip()


def c_type_name(spec: "Spec", t: T.Type) -> str:
    return _name(spec, t, 0)
