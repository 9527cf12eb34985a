"""Record: the base of the small immutable value types on the tools' start-up path.

Why not ``@dataclass(frozen=True)``: importing :mod:`dataclasses` pulls in
``inspect`` (and with it ``ast``, ``dis``, ``tokenize``, ``re``), which costs
more wall time than the rest of a tool's set-up together, and the tools are
judged on their time to first event. A record declares its fields in
``__slots__`` (in ``__init__`` order) and writes its own ``__init__`` with a
real signature; this base adds what the dataclass decorator would have:
value equality and hashing over ``_compare`` (default: every field), a
field-listing ``repr``, immutability, ``replace`` and pickling; ``__init__``
stores its checked values with :meth:`_assign`.
"""

from __future__ import annotations

__all__ = ["Record"]


class Record:
    __slots__ = ()
    _compare: tuple[str, ...] | None = None  # fields for ==/hash; None: all; (): identity

    def _fields(self) -> tuple[str, ...]:
        return type(self).__slots__

    def _assign(self, **values) -> None:
        """Store fields (from ``__init__``: the one place a record is written)."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _key(self) -> tuple:
        names = self._compare if self._compare is not None else self._fields()
        return tuple(getattr(self, n) for n in names)

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r}: "
                             f"{type(self).__name__} is immutable (use .replace())")

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is immutable")

    def __eq__(self, other):
        if self._compare == ():
            return self is other
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        if self._compare == ():
            return object.__hash__(self)
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields())
        return f"{type(self).__name__}({fields})"

    def replace(self, **changes):
        """A copy with some fields changed; the new values are checked like the originals."""
        values = {n: getattr(self, n) for n in self._fields()}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return type(self)(**values)

    def __reduce__(self):
        return _rebuild, (type(self), tuple(getattr(self, n) for n in self._fields()))


def _rebuild(cls, values):
    """Unpickle without re-running ``__init__`` (the values were checked when first built)."""
    obj = cls.__new__(cls)
    obj._assign(**dict(zip(cls.__slots__, values)))
    return obj
