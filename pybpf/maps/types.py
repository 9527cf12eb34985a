"""Kernel constants for maps: enum bpf_map_type, BPF_MAP_CREATE flags, update flags."""

from __future__ import annotations

from pybpf._intenum import IntEnum

__all__ = ["MapType", "MapFlags", "UpdateFlags", "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK",
           "PERCPU_TYPES", "FD_VALUE_TYPES", "MAP_OF_MAPS_TYPES", "KEYLESS_TYPES",
           "ARRAY_TYPES", "INDEX_TYPES"]


class MapType(IntEnum):
    """enum bpf_map_type (names without the BPF_MAP_TYPE_ prefix)."""

    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33

    @property
    def bpftool_name(self) -> str:
        """The name bpftool prints (``percpu_hash``, ``lru_hash``...)."""
        return self.name.lower()


class MapFlags:
    """BPF_MAP_CREATE ``map_flags`` (names without the BPF_F_ prefix)."""

    NO_PREALLOC = 1 << 0
    NO_COMMON_LRU = 1 << 1
    NUMA_NODE = 1 << 2
    RDONLY = 1 << 3
    WRONLY = 1 << 4
    STACK_BUILD_ID = 1 << 5
    ZERO_SEED = 1 << 6
    RDONLY_PROG = 1 << 7
    WRONLY_PROG = 1 << 8
    CLONE = 1 << 9
    MMAPABLE = 1 << 10
    PRESERVE_ELEMS = 1 << 11
    INNER_MAP = 1 << 12
    LINK = 1 << 13
    PATH_FD = 1 << 14
    VTYPE_BTF_OBJ_FD = 1 << 15
    TOKEN_FD = 1 << 16
    SEGV_ON_FAULT = 1 << 17
    NO_USER_CONV = 1 << 18


class UpdateFlags:
    """BPF_MAP_UPDATE_ELEM ``flags``: BPF_ANY creates or replaces."""

    ANY = 0
    NOEXIST = 1
    EXIST = 2
    F_LOCK = 4


BPF_ANY = UpdateFlags.ANY
BPF_NOEXIST = UpdateFlags.NOEXIST
BPF_EXIST = UpdateFlags.EXIST
BPF_F_LOCK = UpdateFlags.F_LOCK

#: Types whose values are one slot per possible CPU in the syscall buffer.
PERCPU_TYPES = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                          MapType.PERCPU_CGROUP_STORAGE})
#: Types whose values are written as fds and read back as ids.
FD_VALUE_TYPES = frozenset({MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                            MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
MAP_OF_MAPS_TYPES = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
#: The array family: 4-byte index keys, below max_entries.
ARRAY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                         MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY, MapType.ARRAY_OF_MAPS})
#: Every type whose key is an index below max_entries: an update past the end is E2BIG,
#: not a full map.
INDEX_TYPES = ARRAY_TYPES | {MapType.DEVMAP, MapType.CPUMAP, MapType.XSKMAP, MapType.SOCKMAP,
                             MapType.REUSEPORT_SOCKARRAY}
#: Types created with key_size 0 (push/pop/peek or event streams, no keys).
KEYLESS_TYPES = frozenset({MapType.QUEUE, MapType.STACK, MapType.RINGBUF, MapType.USER_RINGBUF,
                           MapType.BLOOM_FILTER, MapType.ARENA})
