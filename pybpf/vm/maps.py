"""Maps of the interpreter, backed by Python containers with the kernel's semantics.

Test code and the program share the same objects: a test fills a map with
``m[key] = value`` (keys and values as bytes, or ints packed little-endian to
the key/value size), runs the program, and reads ``m[key]`` or ``dict(m)``.
A value the program looked up is the very bytearray the map stores, so writes
through the pointer are visible to the test, as with a real map.

Return codes are the kernel's negative errnos, since programs branch on them.
"""

from __future__ import annotations

import collections
import collections.abc
import errno
from typing import Iterator

from .errors import VMError

__all__ = [
    "MapType", "VMMap", "HashMap", "ArrayMap", "PerCPUHashMap", "PerCPUArrayMap",
    "LRUHashMap", "LRUPerCPUHashMap", "QueueMap", "StackMap", "RingBuf", "PerfEventArray",
    "ProgArray", "create_map", "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK",
]

BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4


class MapType:
    """``enum bpf_map_type`` values (include/uapi/linux/bpf.h) for the types the VM models."""
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    QUEUE = 22
    STACK = 23
    RINGBUF = 27


def _pack(value, size: int, what: str) -> bytes:
    if isinstance(value, int):
        return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little") if size else b""
    data = bytes(value)
    if len(data) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(data)}")
    return data


class VMMap:
    """Common part: sizes from a map spec, and the shared CPU configuration."""

    map_type = 0

    def __init__(self, key_size: int, value_size: int, max_entries: int, flags: int = 0,
                 *, name: str = "", cpus: int = 1):
        self.key_size, self.value_size = key_size, value_size
        self.max_entries, self.flags, self.name = max_entries, flags, name
        self.cpus = cpus
        self.cpu = 0  # the CPU the program runs on; the VM sets it before each run

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, key_size={self.key_size}, "
                f"value_size={self.value_size}, max_entries={self.max_entries})")

    def key(self, key) -> bytes:
        return _pack(key, self.key_size, "key")

    def value(self, value) -> bytes:
        return _pack(value, self.value_size, "value")

    # The program-side interface: keys and values as bytes, results as
    # (bytearray | None) or a negative errno.
    def bpf_lookup(self, key: bytes) -> bytearray | None:
        return None

    def bpf_update(self, key: bytes, value: bytes, flags: int) -> int:
        return -errno.EINVAL

    def bpf_delete(self, key: bytes) -> int:
        return -errno.EINVAL


class HashMap(VMMap, collections.abc.MutableMapping):
    """BPF_MAP_TYPE_HASH: update flags, E2BIG when full, ENOENT/EEXIST."""

    map_type = MapType.HASH

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._data: dict[bytes, bytearray] = {}

    def _touch(self, key: bytes) -> None:
        pass

    def _make_room(self) -> bool:
        return False

    def bpf_lookup(self, key):
        v = self._data.get(key)
        if v is not None:
            self._touch(key)
        return v

    def bpf_update(self, key, value, flags):
        # BPF_F_LOCK needs a bpf_spin_lock in the value (declared in BTF), which these maps
        # never have: the kernel then answers EINVAL, as it does for an unknown flag.
        if flags > BPF_EXIST:
            return -errno.EINVAL
        cur = self._data.get(key)
        if cur is not None:
            if flags == BPF_NOEXIST:
                return -errno.EEXIST
            self._overwrite(cur, value)
            self._touch(key)
            return 0
        if flags == BPF_EXIST:
            return -errno.ENOENT
        if len(self._data) >= self.max_entries and not self._make_room():
            return -errno.E2BIG
        self._data[key] = self._new(value)
        self._touch(key)
        return 0

    def _new(self, value: bytes) -> bytearray:
        return bytearray(value)

    def _overwrite(self, cur: bytearray, value: bytes) -> None:
        cur[:] = value  # in place, like the kernel's preallocated element

    def bpf_delete(self, key):
        if self._data.pop(key, None) is None:
            return -errno.ENOENT
        return 0

    # Test-side mapping interface.
    def __getitem__(self, key) -> bytes:
        return bytes(self._data[self.key(key)])

    def __setitem__(self, key, value) -> None:
        rc = self.bpf_update(self.key(key), self.value(value), BPF_ANY)
        if rc:
            raise OSError(-rc, f"map update: {errno.errorcode.get(-rc, rc)}")

    def __delitem__(self, key) -> None:
        del self._data[self.key(key)]

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)


class LRUHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: a full map evicts the least recently used element.

    The kernel's LRU is approximate (per-CPU lists); this one is exact, which is
    one of the orders the kernel may produce.
    """

    map_type = MapType.LRU_HASH

    def _touch(self, key):
        self._data[key] = self._data.pop(key)  # dicts keep insertion order: last = newest

    def _make_room(self):
        if self._data:
            del self._data[next(iter(self._data))]
        return True


class _PerCPU:
    """Per-CPU values: the program sees the current CPU's value; tests see a list."""

    def _slot(self, values: list[bytearray]) -> bytearray:
        return values[self.cpu]

    def _new(self, value: bytes) -> list[bytearray]:
        out = [bytearray(self.value_size) for _ in range(self.cpus)]
        out[self.cpu][:] = value
        return out

    def _overwrite(self, cur: list[bytearray], value: bytes) -> None:
        cur[self.cpu][:] = value

    def _values(self, value) -> list[bytes]:
        if isinstance(value, (list, tuple)):
            if len(value) != self.cpus:
                raise ValueError(f"per-CPU value needs {self.cpus} entries, got {len(value)}")
            return [self.value(v) for v in value]
        return [self.value(value)] * self.cpus


class PerCPUHashMap(_PerCPU, HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH: ``m[key]`` is a list of per-CPU values (bytes)."""

    map_type = MapType.PERCPU_HASH

    def bpf_lookup(self, key):
        v = HashMap.bpf_lookup(self, key)
        return None if v is None else v[self.cpu]


    def __getitem__(self, key) -> list[bytes]:
        return [bytes(v) for v in self._data[self.key(key)]]

    def __setitem__(self, key, value) -> None:
        k = self.key(key)
        if k not in self._data and len(self._data) >= self.max_entries and not self._make_room():
            raise OSError(errno.E2BIG, "map update: E2BIG")
        self._data[k] = [bytearray(v) for v in self._values(value)]
        self._touch(k)


class LRUPerCPUHashMap(PerCPUHashMap):
    map_type = MapType.LRU_PERCPU_HASH
    _touch = LRUHashMap._touch
    _make_room = LRUHashMap._make_room


class ArrayMap(VMMap, collections.abc.MutableMapping):
    """BPF_MAP_TYPE_ARRAY: zero-initialised, u32 index keys, no delete."""

    map_type = MapType.ARRAY

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        if self.key_size != 4:
            raise VMError(f"array map {self.name!r} needs key_size 4, got {self.key_size}")
        self._data = [self._zero() for _ in range(self.max_entries)]

    def _zero(self):
        return bytearray(self.value_size)

    def _index(self, key: bytes) -> int:
        return int.from_bytes(key, "little")

    def bpf_lookup(self, key):
        i = self._index(key)
        return self._data[i] if i < self.max_entries else None

    def bpf_update(self, key, value, flags):
        if flags & ~BPF_F_LOCK > BPF_EXIST:
            return -errno.EINVAL
        i = self._index(key)
        if i >= self.max_entries:
            return -errno.E2BIG
        if flags & BPF_NOEXIST:
            return -errno.EEXIST
        if flags & BPF_F_LOCK:  # no bpf_spin_lock in the value (see HashMap.bpf_update)
            return -errno.EINVAL
        self._store(i, value)
        return 0

    def _store(self, i, value):
        self._data[i][:] = value

    def bpf_delete(self, key):
        return -errno.EINVAL

    def _checked(self, key) -> int:
        i = self._index(self.key(key))
        if i >= self.max_entries:
            raise KeyError(key)
        return i

    def __getitem__(self, key) -> bytes:
        return bytes(self._data[self._checked(key)])

    def __setitem__(self, key, value) -> None:
        self._data[self._checked(key)][:] = self.value(value)

    def __delitem__(self, key) -> None:
        raise OSError(errno.EINVAL, "array map elements cannot be deleted")

    def __iter__(self):
        return (i.to_bytes(4, "little") for i in range(self.max_entries))

    def __len__(self) -> int:
        return self.max_entries


class PerCPUArrayMap(_PerCPU, ArrayMap):
    map_type = MapType.PERCPU_ARRAY

    def _zero(self):
        return [bytearray(self.value_size) for _ in range(self.cpus)]

    def bpf_lookup(self, key):
        v = ArrayMap.bpf_lookup(self, key)
        return None if v is None else v[self.cpu]

    def _store(self, i, value):
        self._data[i][self.cpu][:] = value

    def __getitem__(self, key) -> list[bytes]:
        return [bytes(v) for v in self._data[self._checked(key)]]

    def __setitem__(self, key, value) -> None:
        self._data[self._checked(key)] = [bytearray(v) for v in self._values(value)]


class QueueMap(VMMap):
    """BPF_MAP_TYPE_QUEUE: FIFO; push with BPF_EXIST overwrites the oldest when full."""

    map_type = MapType.QUEUE

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.items: collections.deque[bytes] = collections.deque()

    def bpf_push(self, value: bytes, flags: int) -> int:
        if flags & ~BPF_EXIST:
            return -errno.EINVAL
        if len(self.items) >= self.max_entries:
            if flags != BPF_EXIST:
                return -errno.E2BIG
            self._drop_oldest()
        self.items.append(bytes(value))
        return 0

    def _drop_oldest(self):
        self.items.popleft()

    def bpf_peek(self, pop: bool) -> bytes | None:
        if not self.items:
            return None
        return self.items.popleft() if pop else self.items[0]

    def push(self, value) -> None:
        rc = self.bpf_push(self.value(value), 0)
        if rc:
            raise OSError(-rc, "map push")

    def pop(self) -> bytes:
        v = self.bpf_peek(True)
        if v is None:
            raise KeyError("queue is empty")
        return v

    def __len__(self):
        return len(self.items)


class StackMap(QueueMap):
    """BPF_MAP_TYPE_STACK: LIFO."""

    map_type = MapType.STACK

    def _drop_oldest(self):
        self.items.popleft()

    def bpf_peek(self, pop):
        if not self.items:
            return None
        return self.items.pop() if pop else self.items[-1]


class RingBuf(VMMap):
    """BPF_MAP_TYPE_RINGBUF: submitted records are captured in ``records`` (bytes).

    Space is accounted as the kernel does (8-byte header, length rounded up
    to 8) so a program sees the same reserve failures; ``consume()`` returns
    the pending records and frees their space, like a reader would.
    """

    map_type = MapType.RINGBUF
    HDR = 8

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.records: list[bytes] = []
        self.pending = 0  # bytes reserved or unread
        self.producer_pos = 0
        self.consumer_pos = 0

    def need(self, size: int) -> int:
        return self.HDR + ((size + 7) & ~7)

    def reserve(self, size: int) -> bool:
        n = self.need(size)
        if size > 0xFFFFFFF or self.pending + n > self.max_entries:
            return False
        self.pending += n
        self.producer_pos += n
        return True

    def commit(self, data: bytes | None, size: int) -> None:
        """Submit (data) or discard (None) a reservation of ``size`` bytes."""
        if data is None:
            self.pending -= self.need(size)
            self.consumer_pos += self.need(size)
        else:
            self.records.append(bytes(data))

    def consume(self) -> list[bytes]:
        out, self.records = self.records, []
        freed = sum(self.need(len(r)) for r in out)
        self.pending -= freed
        self.consumer_pos += freed
        return out


class PerfEventArray(VMMap):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: output captured as ``records`` of (cpu, bytes)."""

    map_type = MapType.PERF_EVENT_ARRAY

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.records: list[tuple[int, bytes]] = []


class ProgArray(VMMap, collections.abc.MutableMapping):
    """BPF_MAP_TYPE_PROG_ARRAY: index -> program (anything ``pybpf.vm.run`` accepts)."""

    map_type = MapType.PROG_ARRAY

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.progs: dict[int, object] = {}

    def _i(self, key) -> int:
        i = key if isinstance(key, int) else int.from_bytes(bytes(key), "little")
        if not 0 <= i < self.max_entries:
            raise KeyError(key)
        return i

    def __getitem__(self, key):
        return self.progs[self._i(key)]

    def __setitem__(self, key, prog):
        self.progs[self._i(key)] = prog

    def __delitem__(self, key):
        del self.progs[self._i(key)]

    def __iter__(self):
        return iter(sorted(self.progs))

    def __len__(self):
        return len(self.progs)


_CLASSES = {cls.map_type: cls for cls in (
    HashMap, ArrayMap, PerCPUHashMap, PerCPUArrayMap, LRUHashMap, LRUPerCPUHashMap,
    QueueMap, StackMap, RingBuf, PerfEventArray, ProgArray)}
_NAMES = {name.lower(): value for name, value in vars(MapType).items() if name.isupper()}


def map_type_of(value) -> int:
    """An ``enum bpf_map_type`` from an int, an IntEnum, or a name like "percpu_hash"."""
    if isinstance(value, str):
        key = value.lower().removeprefix("bpf_map_type_")
        if key not in _NAMES:
            raise VMError(f"map type {value!r} is not supported by the VM")
        return _NAMES[key]
    return int(value)


def create_map(spec, *, cpus: int = 1) -> VMMap:
    """A VM map from a map spec: any object with ``type``, ``key_size``,
    ``value_size``, ``max_entries`` and ``flags`` (and optionally ``name``)."""
    mtype = map_type_of(spec.type)
    cls = _CLASSES.get(mtype)
    if cls is None:
        raise VMError(f"map type {spec.type!r} ({mtype}) is not supported by the VM")
    max_entries = spec.max_entries
    if mtype == MapType.PERF_EVENT_ARRAY and not max_entries:
        max_entries = cpus
    if max_entries <= 0 and mtype != MapType.PERF_EVENT_ARRAY:
        raise VMError(f"map {getattr(spec, 'name', '')!r}: max_entries must be > 0")
    return cls(spec.key_size, spec.value_size, max_entries, getattr(spec, "flags", 0) or 0,
               name=getattr(spec, "name", "") or "", cpus=cpus)
