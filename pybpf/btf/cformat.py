"""C spelling of BTF types, for messages and for comparing with bpftool/pahole."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import types as T

if TYPE_CHECKING:  # pragma: no cover
    from .spec import Spec

__all__ = ["c_type_name"]


class _Namer:
    """Spells one type; remembers every name it made on the way.

    ``path`` holds the ids being spelled: meeting one again means the blob
    describes an infinite type (an array of itself, a pointer to itself), which
    the kernel rejects with "Loop detected" and so do we, rather than looping.
    ``memo`` makes a type graph that shares sub-types (a DAG of function
    prototypes) cost linear time instead of exponential.
    """

    def __init__(self, spec: "Spec") -> None:
        self.spec = spec
        self.path: list[int] = []
        self.memo: dict[int, str] = {}

    def by_id(self, type_id: int) -> str:
        return self.name(self.spec.type_by_id(type_id))

    def name(self, t: T.Type) -> str:
        hit = self.memo.get(t.id)
        if hit is not None:
            return hit
        if t.id in self.path:
            raise self.spec.malformed(t.id, "Loop detected")
        self.path.append(t.id)
        out = self._spell(t)
        self.path.pop()
        self.memo[t.id] = out
        return out

    def params(self, proto: T.FuncProto) -> str:
        if not proto.params:
            return "void"
        return ", ".join("..." if p.type_id == 0 else self.by_id(p.type_id) for p in proto.params)

    def _spell(self, t: T.Type) -> str:
        spec = self.spec
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
            inner_name = self.name(inner)
            if isinstance(spec.resolve(inner), T.Pointer) and not isinstance(inner, T.Typedef):
                return f"{inner_name} {word}"
            return f"{word} {inner_name}"
        if isinstance(t, T.TypeTag):
            return self.by_id(t.type_id)
        if isinstance(t, T.Pointer):
            target = spec.type_by_id(t.type_id)
            if isinstance(target, T.FuncProto):
                if target.id in self.path:
                    raise spec.malformed(target.id, "Loop detected")
                self.path.append(target.id)
                out = f"{self.by_id(target.return_type_id)} (*)({self.params(target)})"
                self.path.pop()
                return out
            inner = self.name(target)
            return inner + ("*" if inner.endswith("*") else " *")
        if isinstance(t, T.Array):
            # int[2][3] is ARRAY(2) of ARRAY(3) of int: dims outermost first.
            depth = len(self.path)
            dims = [f"[{t.nelems}]"]
            elem = spec.type_by_id(t.type_id)
            while isinstance(elem, T.Array):
                if elem.id in self.path:
                    raise spec.malformed(elem.id, "Loop detected")
                self.path.append(elem.id)
                dims.append(f"[{elem.nelems}]")
                elem = spec.type_by_id(elem.type_id)
            out = self.name(elem) + "".join(dims)
            del self.path[depth:]
            return out
        if isinstance(t, T.FuncProto):
            return f"{self.by_id(t.return_type_id)} ({self.params(t)})"
        if isinstance(t, T.Func):
            proto = t.proto
            return f"{self.by_id(proto.return_type_id)} {t.name}({self.params(proto)})"
        if isinstance(t, T.Var):
            return f"{self.by_id(t.type_id)} {t.name}"
        if isinstance(t, T.Datasec):
            return f"SEC {t.name}"
        return f"{t.kind.name.lower()} {t.name}".strip()


def c_type_name(spec: "Spec", t: T.Type) -> str:
    return _Namer(spec).name(t)
