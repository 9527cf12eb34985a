"""Named integers for the kernel's C enums (``enum bpf_map_type``, ``enum bpf_cmd``...).

Why not :class:`enum.IntEnum`: the tools are judged on their time to first
event, and ``import enum`` (with ``functools`` and ``collections`` behind it)
plus creating the dozen enum classes the loader needs cost about a fifth of
it, more than everything else pybpf imports (bench/startup.py). The kernel's
enums need little of what the enum module offers: a member is an ``int`` with
a name. So :class:`IntEnum` here keeps the part users rely on, with the
stdlib's behaviour (checked against it in tests/record/test_intenum.py):

* members are ints (``MapType.HASH == 1``, usable in ``struct.pack``, JSON);
* ``MapType(1) is MapType.HASH``, ``MapType["HASH"]``, ``ValueError`` / ``KeyError``
  for unknown values / names; a second name with the same value is an alias;
* ``.name``, ``.value``, ``repr`` ``<MapType.HASH: 1>``, ``str``/``format`` as the int;
* iteration in definition order without aliases, ``len``, ``__members__``,
  ``in`` (a member or a member's value, as in Python 3.12);
* members cannot be reassigned; pickling and copying give the same member.

Members are the class attributes whose names are all upper case and whose
values are ints; anything else in the class body (properties, methods) is
ordinary class content. Flag bits are plain int constants (``ProgFlags``,
``MapFlags``): combining them is integer arithmetic, and a named result
would need the rest of :class:`enum.IntFlag`.
"""

__all__ = ["IntEnum"]

_MappingProxy = type(type.__dict__)  # types.MappingProxyType, without importing types


def _is_member(name: str, value: object) -> bool:
    return type(value) is int and name.isupper() and not name.startswith("_")


class _IntEnumType(type):
    """The metaclass: turns the upper-case int attributes of a class body into members."""

    def __new__(mcls, name, bases, namespace):
        items = [(k, v) for k, v in namespace.items() if _is_member(k, v)]
        for k, _ in items:
            del namespace[k]
        cls = super().__new__(mcls, name, bases, namespace)
        by_name, by_value, canonical = {}, {}, []
        new, set_name, set_member = int.__new__, object.__setattr__, type.__setattr__
        for k, v in items:
            member = by_value.get(v)
            if member is None:
                member = new(cls, v)
                set_name(member, "_name_", k)  # past IntEnum.__setattr__, which refuses it
                by_value[v] = member
                canonical.append(k)
            by_name[k] = member
            set_member(cls, k, member)
        type.__setattr__(cls, "_member_map_", by_name)
        type.__setattr__(cls, "_value2member_map_", by_value)
        type.__setattr__(cls, "_member_names_", canonical)
        return cls

    def __call__(cls, value):
        try:
            return cls._value2member_map_[value]
        except (KeyError, TypeError):
            pass
        raise ValueError(f"{value!r} is not a valid {cls.__qualname__}")

    def __getitem__(cls, name: str):
        return cls._member_map_[name]

    def __iter__(cls):
        return (cls._member_map_[name] for name in cls._member_names_)

    def __reversed__(cls):
        return (cls._member_map_[name] for name in reversed(cls._member_names_))

    def __len__(cls) -> int:
        return len(cls._member_names_)

    def __contains__(cls, value) -> bool:
        try:
            return value in cls._value2member_map_
        except TypeError:  # unhashable
            return False

    def __bool__(cls) -> bool:  # a class is true even when it has no members
        return True

    @property
    def __members__(cls):
        return _MappingProxy(cls._member_map_)

    def __setattr__(cls, name, value):
        if name in cls.__dict__.get("_member_map_", ()):
            raise AttributeError(f"cannot reassign member {name!r}")
        super().__setattr__(name, value)

    def __delattr__(cls, name):
        if name in cls.__dict__.get("_member_map_", ()):
            raise AttributeError(f"cannot delete member {name!r}")
        super().__delattr__(name)

    def __repr__(cls) -> str:
        return f"<enum {cls.__name__!r}>"


class IntEnum(int, metaclass=_IntEnumType):
    """Base class of pybpf's kernel enums: subclass it and list ``NAME = value`` members."""

    @property
    def name(self) -> str:
        return self._name_

    @property
    def value(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {int(self)}>"

    __str__ = int.__repr__
    __format__ = int.__format__

    def __reduce_ex__(self, protocol):
        return type(self), (int(self),)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} members are read-only")
