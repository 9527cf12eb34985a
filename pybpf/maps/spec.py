"""MapSpec: a deterministic description of a map, checked without touching the kernel.

Turning a spec into a kernel object is :meth:`MapSpec.create` (or ``Map(spec)``);
everything here is plain data, so specs can be built, compared and validated
by tests and by the verifier simulator with no root and no bpf(2).
"""

from __future__ import annotations

from pybpf._record import Record

from .cpus import possible_cpus
from .layout import FdValueLayout, RawLayout, layout_size, make_layout
from .types import (ARRAY_TYPES, FD_VALUE_TYPES, KEYLESS_TYPES, MAP_OF_MAPS_TYPES, MapFlags,
                    MapType)

TYPE_CHECKING = False  # typing is not imported at run time: see pybpf._record
if TYPE_CHECKING:
    from typing import Any

    from .map import Map

__all__ = ["MapSpec", "MapSpecError", "MapSpecTypeError"]

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


class MapSpecError(ValueError):
    """A map spec is inconsistent (sizes, name, flags, inner map)."""


class MapSpecTypeError(MapSpecError, TypeError):
    """A map spec field has the wrong Python type (``max_entries=10.5``)."""


_HASH_TYPES = frozenset({MapType.HASH, MapType.PERCPU_HASH, MapType.LRU_HASH,
                         MapType.LRU_PERCPU_HASH, MapType.HASH_OF_MAPS})
# Fields each type's map_alloc_check refuses as 0 with a bare EINVAL (htab_map_alloc_check,
# array_map_alloc_check, queue_stack_map_alloc_check, trie_alloc, bloom_map_alloc,
# stack_map_alloc). Types not listed are left to the kernel: value_size 0 is right for
# ring buffers and arenas, max_entries 0 for local storage maps.
_NONZERO = {
    **dict.fromkeys(_HASH_TYPES, ("key_size", "value_size", "max_entries")),
    **dict.fromkeys(ARRAY_TYPES | {MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER,
                                    MapType.STACK_TRACE}, ("value_size", "max_entries")),
    MapType.LPM_TRIE: ("key_size", "value_size", "max_entries"),
}


def _check_int(field: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MapSpecTypeError(f"MapSpec {field} must be an int, not {type(value).__name__} "
                               f"({value!r})")


def _split(desc) -> tuple[Any, int | None]:
    """A constructor argument is a layout, or an int meaning raw bytes of that size."""
    if isinstance(desc, int) and not isinstance(desc, bool):
        return None, desc
    return desc, None


class MapSpec(Record):
    """What to create: ``MapSpec(type, key_size, value_size, max_entries, flags, name, ...)``.

    ``key``/``value`` are layouts (struct format, ctypes type, layout object or
    None for raw bytes); a size left as None is derived from its layout.
    ``inner`` is the spec of the inner map of an array/hash of maps.
    Specs are immutable values: equal specs compare and hash equal.
    """

    __slots__ = ("type", "key_size", "value_size", "max_entries", "flags", "name", "key",
                 "value", "inner", "map_extra", "numa_node", "btf", "btf_key_type_id",
                 "btf_value_type_id")

    type: MapType
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    key: Any
    value: Any
    inner: MapSpec | None
    map_extra: int
    numa_node: int | None
    btf: Any  # an object with ``.fd`` (loaded BTF), or None
    btf_key_type_id: int
    btf_value_type_id: int

    def __init__(self, type: MapType | int, key_size: int | None = None,
                 value_size: int | None = None, max_entries: int = 1, flags: int = 0,
                 name: str = "", key: Any = None, value: Any = None,
                 inner: MapSpec | None = None, map_extra: int = 0, numa_node: int | None = None,
                 btf: Any = None, btf_key_type_id: int = 0, btf_value_type_id: int = 0) -> None:
        try:
            mtype = MapType(type)
        except ValueError:
            raise MapSpecError(f"unknown map type {type!r}") from None
        if not isinstance(name, str) or len(name) > 15 or not _NAME_CHARS.issuperset(name):
            raise MapSpecError(f"map name {name!r}: at most 15 characters from "
                               f"[A-Za-z0-9_.] (BPF_OBJ_NAME_LEN is 16 with the NUL)")
        _check_int("max_entries", max_entries)
        _check_int("flags", flags)
        sizes = {}
        for what, desc, given in (("key", key, key_size), ("value", value, value_size)):
            if given is not None:
                _check_int(f"{what}_size", given)
            derived = layout_size(desc, what)
            if given is None:
                given = derived if derived is not None else 0
            elif derived is not None and derived != given:
                raise MapSpecError(f"{what}_size {given} does not match the {what} layout "
                                   f"{desc!r} ({derived} bytes)")
            if given < 0:
                raise MapSpecError(f"{what}_size must be >= 0, got {given}")
            sizes[f"{what}_size"] = given
        self._assign(type=mtype, **sizes, max_entries=max_entries, flags=int(flags), name=name,
                     key=key, value=value, inner=inner, map_extra=map_extra,
                     numa_node=numa_node, btf=btf, btf_key_type_id=btf_key_type_id,
                     btf_value_type_id=btf_value_type_id)
        if mtype in KEYLESS_TYPES and self.key_size:
            raise MapSpecError(f"{mtype.name} maps have no keys: key_size must be 0")
        if mtype in MAP_OF_MAPS_TYPES and self.inner is None:
            raise MapSpecError(f"{mtype.name} needs an inner map spec (inner=...)")
        if self.inner is not None and mtype not in MAP_OF_MAPS_TYPES:
            raise MapSpecError(f"inner map given for a {mtype.name} map")
        if mtype in FD_VALUE_TYPES and self.value_size != 4:
            raise MapSpecError(f"{mtype.name} values are 4-byte fds, not {self.value_size} bytes")
        if mtype in ARRAY_TYPES and self.key_size != 4:
            raise MapSpecError(f"{mtype.name} keys are 4-byte indexes, not {self.key_size} bytes")
        if self.max_entries < 0 or self.max_entries > 0xFFFFFFFF:
            raise MapSpecError(f"max_entries {self.max_entries} out of range")
        for field in _NONZERO.get(mtype, ()):
            if not getattr(self, field):
                raise MapSpecError(f"{mtype.name} map: {field} must be at least 1, not 0 "
                                   f"(the kernel refuses it with a bare EINVAL)")
        if mtype == MapType.RINGBUF and (self.max_entries & (self.max_entries - 1) or
                                         self.max_entries < 4096):
            raise MapSpecError(f"ring buffer size {self.max_entries} must be a power of 2 and a "
                               f"multiple of the page size")

    # -- layouts ------------------------------------------------------------------------------

    @property
    def key_layout(self):
        if self.key is not None:
            return make_layout(self.key, self.key_size, "key")
        return RawLayout(self.key_size, "key")

    @property
    def value_layout(self):
        if self.type in FD_VALUE_TYPES and self.value is None:
            kind = {MapType.PROG_ARRAY: "program", MapType.PERF_EVENT_ARRAY: "perf event",
                    MapType.CGROUP_ARRAY: "cgroup"}.get(self.type, "map")
            return FdValueLayout(kind)
        return make_layout(self.value, self.value_size, "value")

    @property
    def is_percpu(self) -> bool:
        from .types import PERCPU_TYPES
        return self.type in PERCPU_TYPES

    def create(self) -> Map:
        """Create the map in the kernel."""
        from .map import Map
        return Map(self)

    # -- convenience constructors -----------------------------------------------------------

    @classmethod
    def _kv(cls, mtype, key, value, max_entries, **kw) -> MapSpec:
        key, ks = _split(key)
        value, vs = _split(value)
        return cls(mtype, ks, vs, max_entries, key=key, value=value, **kw)

    @classmethod
    def hash(cls, key, value, max_entries: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_HASH. ``key``/``value``: layout, or int size for raw bytes."""
        return cls._kv(MapType.HASH, key, value, max_entries, **kw)

    @classmethod
    def percpu_hash(cls, key, value, max_entries: int, **kw) -> MapSpec:
        return cls._kv(MapType.PERCPU_HASH, key, value, max_entries, **kw)

    @classmethod
    def lru_hash(cls, key, value, max_entries: int, **kw) -> MapSpec:
        return cls._kv(MapType.LRU_HASH, key, value, max_entries, **kw)

    @classmethod
    def lru_percpu_hash(cls, key, value, max_entries: int, **kw) -> MapSpec:
        return cls._kv(MapType.LRU_PERCPU_HASH, key, value, max_entries, **kw)

    @classmethod
    def array(cls, value, max_entries: int, *, key="I", **kw) -> MapSpec:
        """BPF_MAP_TYPE_ARRAY (keys are u32 indexes). Add ``flags=MapFlags.MMAPABLE`` for mmap."""
        return cls._kv(MapType.ARRAY, key, value, max_entries, **kw)

    @classmethod
    def percpu_array(cls, value, max_entries: int, *, key="I", **kw) -> MapSpec:
        return cls._kv(MapType.PERCPU_ARRAY, key, value, max_entries, **kw)

    @classmethod
    def lpm_trie(cls, addr_size: int | str, value, max_entries: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_LPM_TRIE with ``addr_size`` data bytes (or ``"ipv4"``/``"ipv6"``).

        The kernel requires BPF_F_NO_PREALLOC for tries; it is added here.
        """
        size = {"ipv4": 4, "ipv6": 16}.get(addr_size, addr_size) if isinstance(addr_size, str) \
            else addr_size
        from .lpm import LpmKey
        kw["flags"] = kw.get("flags", 0) | MapFlags.NO_PREALLOC
        return cls._kv(MapType.LPM_TRIE, LpmKey(int(size)), value, max_entries, **kw)

    @classmethod
    def queue(cls, value, max_entries: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_QUEUE (FIFO): use ``push``/``pop``/``peek``."""
        value, vs = _split(value)
        return cls(MapType.QUEUE, 0, vs, max_entries, value=value, **kw)

    @classmethod
    def stack(cls, value, max_entries: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_STACK (LIFO): use ``push``/``pop``/``peek``."""
        value, vs = _split(value)
        return cls(MapType.STACK, 0, vs, max_entries, value=value, **kw)

    @classmethod
    def ringbuf(cls, size: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_RINGBUF of ``size`` data bytes (power of 2, multiple of the page size)."""
        return cls(MapType.RINGBUF, 0, 0, size, **kw)

    @classmethod
    def perf_event_array(cls, max_entries: int | None = None, **kw) -> MapSpec:
        """BPF_MAP_TYPE_PERF_EVENT_ARRAY, one slot per possible CPU unless told otherwise."""
        n = possible_cpus() if max_entries is None else max_entries
        return cls(MapType.PERF_EVENT_ARRAY, 4, 4, n, key="I", **kw)

    @classmethod
    def prog_array(cls, max_entries: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_PROG_ARRAY for tail calls: values are programs (fds in, ids out)."""
        return cls(MapType.PROG_ARRAY, 4, 4, max_entries, key="I", **kw)

    @classmethod
    def stack_trace(cls, max_entries: int, depth: int = 127, **kw) -> MapSpec:
        """BPF_MAP_TYPE_STACK_TRACE: u32 stack ids to ``depth`` u64 instruction pointers."""
        return cls(MapType.STACK_TRACE, 4, 8 * depth, max_entries, key="I",
                   value=f"{depth}Q", **kw)

    @classmethod
    def array_of_maps(cls, inner: MapSpec, max_entries: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_ARRAY_OF_MAPS: values are maps like ``inner`` (fds in, ids out)."""
        return cls(MapType.ARRAY_OF_MAPS, 4, 4, max_entries, key="I", inner=inner, **kw)

    @classmethod
    def hash_of_maps(cls, key, inner: MapSpec, max_entries: int, **kw) -> MapSpec:
        """BPF_MAP_TYPE_HASH_OF_MAPS keyed by ``key``: values are maps like ``inner``."""
        key, ks = _split(key)
        return cls(MapType.HASH_OF_MAPS, ks, 4, max_entries, key=key, inner=inner, **kw)

    @classmethod
    def from_info(cls, info) -> MapSpec:
        """A raw-bytes spec describing an existing map (from ``bpf_map_info``)."""
        mtype = info.type if info.type in MapType._value2member_map_ else MapType.UNSPEC
        name = info.name.decode(errors="replace")
        return cls.__new__(cls)._init_raw(MapType(mtype), info.key_size, info.value_size,
                                          info.max_entries, info.map_flags, name, info.map_extra)

    def _init_raw(self, mtype, ks, vs, n, flags, name, extra) -> MapSpec:
        # Existing maps are described as they are: skip the creation-time checks (a
        # map of maps found by id has no inner spec, a name may hold odd bytes).
        self._assign(type=mtype, key_size=ks, value_size=vs, max_entries=n, flags=flags,
                     name=name, key=None, value=None, inner=None, map_extra=extra,
                     numa_node=None, btf=None, btf_key_type_id=0, btf_value_type_id=0)
        return self
