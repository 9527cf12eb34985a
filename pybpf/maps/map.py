"""Map: a kernel map created from a :class:`MapSpec`, with a dict-like API.

Keys and values go through the spec's layouts, so ``m[1] = 2`` works for a
``"I"``/``"Q"`` map, while raw ``bytes`` of the right size always work too.
Per-CPU maps read as a list with one value per possible CPU and accept a
list (or one value, written to every CPU). Writes to prog arrays and maps of
maps take objects with ``.fd``; reads give back the kernel's object ids.
"""

from __future__ import annotations

import ctypes
import errno
import os

from pybpf.syscall import map_cmds as cmds
from pybpf.syscall.errors import (BPFError, BPFPermissionError, IndexOutOfRange, InvalidArgument,
                                  KeyNotFound, MapFull, NotSupported, WrongObjectKind, error_for,
                                  expect_kind)
from pybpf.syscall.fd import FD

from .cpus import possible_cpus, round8
from .spec import MapSpec, MapSpecError
from .types import INDEX_TYPES, KEYLESS_TYPES, MapFlags, MapType, UpdateFlags

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Any, Iterator

__all__ = ["Map"]

_MISSING: Any = object()
_FROZEN_HINT = ("the map is frozen (BPF_MAP_FREEZE) or read-only for user space "
                "(BPF_F_RDONLY): writes from bpf(2) are refused")


class Map:
    """A BPF map. Create with ``Map(spec)``/``spec.create()``, or open an existing one with
    :meth:`from_id`, :meth:`from_pin` or :meth:`from_fd`. Closing drops this process's
    reference; the kernel frees the map when nothing else (pin, program) holds it."""

    def __init__(self, spec: MapSpec):
        if not isinstance(spec, MapSpec):
            raise TypeError(f"Map() takes a MapSpec, not {type(spec).__name__}")
        inner_fd = None
        try:
            if spec.inner is not None:
                # The kernel only needs an inner map as a template; it is closed right after.
                inner_fd = Map(spec.inner)
            flags = spec.flags
            if spec.numa_node is not None:
                flags |= MapFlags.NUMA_NODE
            fd = cmds.map_create(
                spec.type, spec.key_size, spec.value_size, spec.max_entries, flags,
                name=spec.name, inner_map_fd=inner_fd.fd if inner_fd else 0,
                numa_node=spec.numa_node or 0, map_extra=spec.map_extra,
                btf_fd=spec.btf.fd if spec.btf is not None else 0,
                btf_key_type_id=spec.btf_key_type_id, btf_value_type_id=spec.btf_value_type_id,
                context=_describe_spec(spec))
        except BPFError as err:
            raise _explain_create(err, spec) from None
        finally:
            if inner_fd is not None:
                inner_fd.close()
        self._setup(fd, spec)

    # -- opening existing maps --------------------------------------------------------------

    @classmethod
    def from_fd(cls, fd: FD | int, spec: MapSpec | None = None) -> Map:
        """Wrap a map fd (an :class:`FD` is taken over; an int is duplicated).

        ``spec`` supplies key/value layouts; its sizes must match the kernel's.
        """
        owned = fd if isinstance(fd, FD) else FD(os.dup(fd))
        try:
            # OBJ_GET_INFO_BY_FD fills a map's info from a program too: check the kind first.
            expect_kind(owned.fd, "map", "Map.from_fd")
            info = cmds.map_get_info(owned.fd)
        except (BPFError, WrongObjectKind):
            owned.close()
            raise
        found = MapSpec.from_info(info)
        if spec is not None:
            for attr in ("type", "key_size", "value_size", "max_entries"):
                if getattr(spec, attr) != getattr(found, attr):
                    owned.close()
                    raise MapSpecError(f"map id {info.id}: {attr} is {getattr(found, attr)}, "
                                       f"the spec says {getattr(spec, attr)}")
        self = cls.__new__(cls)
        self._setup(owned, spec or found, info=info)
        return self

    @classmethod
    def from_id(cls, map_id: int, spec: MapSpec | None = None) -> Map:
        """Open the map with this id (BPF_MAP_GET_FD_BY_ID)."""
        return cls.from_fd(cmds.map_get_fd_by_id(map_id), spec)

    @classmethod
    def from_pin(cls, path: str | os.PathLike, spec: MapSpec | None = None) -> Map:
        """Open the map pinned at ``path`` on a bpf filesystem."""
        from pybpf.pin import open_pinned_map
        return open_pinned_map(path, spec)

    def _setup(self, fd: FD, spec: MapSpec, info=None) -> None:
        self._fd = fd
        self.spec = spec
        info = info or cmds.map_get_info(fd.fd)
        self.id: int = info.id
        self._klayout = spec.key_layout
        self._vlayout = spec.value_layout
        self._ncpus = possible_cpus() if spec.is_percpu else 1
        self._vstride = round8(spec.value_size) if spec.is_percpu else spec.value_size
        self._vbuf_size = self._vstride * self._ncpus
        self._keyless = spec.type in KEYLESS_TYPES or spec.key_size == 0
        self._ctx = f"map {spec.name!r} (id {self.id}, {spec.type.name.lower()})"

    # -- attributes the simulator and tools read ---------------------------------------------

    @property
    def fd(self) -> int:
        try:
            return self._fd.fd
        except ValueError:
            raise ValueError(f"use of closed {self._ctx}") from None

    @property
    def closed(self) -> bool:
        return self._fd.closed

    type = property(lambda self: self.spec.type)
    key_size = property(lambda self: self.spec.key_size)
    value_size = property(lambda self: self.spec.value_size)
    max_entries = property(lambda self: self.spec.max_entries)
    flags = property(lambda self: self.spec.flags)
    name = property(lambda self: self.spec.name)
    inner = property(lambda self: self.spec.inner)

    def info(self):
        """The kernel's ``bpf_map_info`` for this map."""
        return cmds.map_get_info(self.fd)

    def close(self) -> None:
        self._fd.close()

    def __enter__(self) -> Map:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd {self._fd.fd}"
        return (f"<Map {self.name!r} id={self.id} {self.type.name} key_size={self.key_size} "
                f"value_size={self.value_size} max_entries={self.max_entries} {state}>")

    # -- encoding -----------------------------------------------------------------------------

    def encode_key(self, key) -> bytes | None:
        if self._keyless:
            if key is not None:  # the kernel would ignore it: q[5] would be the head, 5 in q true
                raise TypeError(f"{self._ctx}: {self.type.name} maps have no keys, not {key!r} "
                                f"(queues and stacks: push(), pop(), peek())")
            return None
        return self._klayout.encode(key)

    def decode_key(self, raw):
        return self._klayout.decode(raw)

    def encode_value(self, value) -> bytes:
        if self._ncpus == 1 and self._vstride == self.spec.value_size:
            return self._vlayout.encode(value)
        # A list is one value per CPU; anything else is one value written to every CPU.
        values = value if isinstance(value, list) else [value] * self._ncpus
        if len(values) != self._ncpus:
            raise ValueError(f"{self._ctx}: per-CPU value needs {self._ncpus} entries (one per "
                             f"possible CPU), got {len(values)}")
        pad = bytes(self._vstride - self.spec.value_size)
        return b"".join(self._vlayout.encode(v) + pad for v in values)

    def decode_value(self, raw):
        if self._ncpus == 1 and self._vstride == self.spec.value_size:
            return self._vlayout.decode(raw)
        return self._vlayout.decode_many(memoryview(raw), self._ncpus, self._vstride)

    # -- element operations -------------------------------------------------------------------

    def _write_error(self, err: BPFError, key=_MISSING) -> BPFError:
        if isinstance(err, BPFPermissionError) and _has_bpf_capability():
            return error_for(err.errno, err.command, self._ctx, hint=_FROZEN_HINT)
        if isinstance(err, MapFull) and self.spec.type in INDEX_TYPES:
            # An array never fills up: E2BIG there means the index is past the end.
            index = key
            if isinstance(key, (bytes, bytearray)) and len(key) == 4:
                index = int.from_bytes(key, "little")
            what = f"index {index!r}" if key is not _MISSING else "an index"
            return IndexOutOfRange(err.errno, err.command, f"{self._ctx}: {what} out of range "
                                   f"(max_entries {self.spec.max_entries})")
        return err

    def lookup(self, key=None, flags: int = 0):
        """The value at ``key`` (raises :class:`KeyNotFound`, a ``KeyError``, if absent)."""
        buf = bytearray(self._vbuf_size)
        try:
            cmds.map_lookup_elem(self.fd, self.encode_key(key), buf, flags, self._ctx)
        except KeyNotFound:
            raise error_for(errno.ENOENT, "BPF_MAP_LOOKUP_ELEM",
                            f"{self._ctx}: no key {key!r}") from None
        return self.decode_value(buf)

    def update(self, key, value, flags: int = UpdateFlags.ANY) -> None:
        """Write ``value`` at ``key``; ``flags`` BPF_NOEXIST raises :class:`KeyExists` if present,
        BPF_EXIST raises :class:`KeyNotFound` if absent; a full map raises :class:`MapFull`."""
        try:
            cmds.map_update_elem(self.fd, self.encode_key(key), self.encode_value(value), flags,
                                 f"{self._ctx}: key {key!r}")
        except BPFError as err:
            raise self._write_error(err, key) from None

    def delete(self, key) -> None:
        try:
            cmds.map_delete_elem(self.fd, self.encode_key(key), 0, f"{self._ctx}: key {key!r}")
        except BPFError as err:
            raise self._write_error(err) from None

    def lookup_and_delete(self, key=None, flags: int = 0):
        buf = bytearray(self._vbuf_size)
        try:
            cmds.map_lookup_and_delete_elem(self.fd, self.encode_key(key), buf, flags,
                                            f"{self._ctx}: key {key!r}")
        except BPFError as err:
            raise self._write_error(err) from None
        return self.decode_value(buf)

    def __getitem__(self, key):
        return self.lookup(key)

    def __setitem__(self, key, value) -> None:
        self.update(key, value)

    def __delitem__(self, key) -> None:
        self.delete(key)

    def __contains__(self, key) -> bool:
        try:
            cmds.map_lookup_elem(self.fd, self.encode_key(key), bytearray(self._vbuf_size), 0,
                                 self._ctx)
        except KeyNotFound:
            return False
        return True

    def get(self, key, default=None):
        try:
            return self.lookup(key)
        except KeyNotFound:
            return default

    def pop(self, key=_MISSING, default=_MISSING):
        """Remove and return the value at ``key``; with no key, pop a queue or stack."""
        if key is _MISSING:
            if not self._keyless:
                raise TypeError(f"{self._ctx}: pop() needs a key (only queues and stacks pop "
                                f"without one)")
            key = None
        try:
            try:
                return self.lookup_and_delete(key)
            except (NotSupported, InvalidArgument):
                if self._keyless:
                    raise
                value = self.lookup(key)  # kernels without lookup-and-delete for this type
                self.delete(key)
                return value
        except KeyNotFound:
            if default is _MISSING:
                raise
            return default

    def setdefault(self, key, default):
        try:
            self.update(key, default, UpdateFlags.NOEXIST)
        except BPFError as err:
            if err.errno != errno.EEXIST:
                raise
        return self.lookup(key)

    # -- queue / stack --------------------------------------------------------------------------

    def push(self, value, flags: int = UpdateFlags.ANY) -> None:
        """Push onto a queue or stack (``flags=BPF_EXIST`` drops the oldest when full)."""
        self._need_keyless("push")
        self.update(None, value, flags)

    def peek(self):
        """The value ``pop()`` would return, without removing it."""
        self._need_keyless("peek")
        return self.lookup(None)

    def _need_keyless(self, op: str) -> None:
        if self.type not in (MapType.QUEUE, MapType.STACK):
            raise TypeError(f"{self._ctx}: {op}() is for queue and stack maps")

    # -- iteration ----------------------------------------------------------------------------

    def iter_raw_keys(self, max_restarts: int = 100) -> Iterator[bytes]:
        from .iterate import iter_raw_keys  # on first use: a tool that only writes skips it
        return iter_raw_keys(self.fd, self.key_size, self.type, max_entries=self.max_entries,
                             max_restarts=max_restarts, context=self._ctx)

    def __iter__(self) -> Iterator:
        if self._keyless:
            raise TypeError(f"{self._ctx}: {self.type.name} maps have no keys to iterate")
        decode = self._klayout.decode
        for raw in self.iter_raw_keys():
            yield decode(raw)

    def keys(self) -> Iterator:
        return iter(self)

    def items(self) -> Iterator[tuple]:
        """(key, value) pairs; keys deleted while iterating are skipped."""
        buf = ctypes.create_string_buffer(self._vbuf_size)
        kbuf = ctypes.create_string_buffer(self.key_size)
        fd, decode_key = self.fd, self._klayout.decode
        for raw in self.iter_raw_keys():
            kbuf.raw = raw
            try:
                cmds.map_lookup_elem(fd, kbuf, buf, 0, self._ctx)
            except KeyNotFound:
                continue
            except NotSupported:
                raise NotSupported(errno.EOPNOTSUPP, "BPF_MAP_LOOKUP_ELEM",
                                   f"{self._ctx}: the kernel does not read these values back "
                                   f"from user space") from None
            yield decode_key(raw), self.decode_value(buf)

    def values(self) -> Iterator:
        return (v for _, v in self.items())

    def __len__(self) -> int:
        """The number of keys, counted by iterating (the kernel keeps no count)."""
        from .iterate import INDEXED_TYPES
        if self.type in INDEXED_TYPES:
            return self.max_entries
        if self._keyless:
            raise TypeError(f"{self._ctx}: {self.type.name} maps have no length")
        return sum(1 for _ in self.iter_raw_keys())

    def __bool__(self) -> bool:
        return True  # a map object is truthy even when empty (``if m:`` means "have a map")

    def clear(self) -> None:
        """Remove every element; arrays (which cannot delete) are zeroed instead."""
        if self.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            zero = bytes(self._vbuf_size)
            for raw in list(self.iter_raw_keys()):
                cmds.map_update_elem(self.fd, raw, zero, 0, self._ctx)
            return
        if self._keyless:
            while True:
                try:
                    self.lookup_and_delete(None)
                except KeyNotFound:
                    return
        for raw in list(self.iter_raw_keys()):
            try:
                cmds.map_delete_elem(self.fd, raw, 0, self._ctx)
            except KeyNotFound:
                pass

    # -- freeze, mmap, map-in-map ----------------------------------------------------------------

    def freeze(self) -> None:
        """Make the map read-only for user space (programs can still write, see BPF_F_RDONLY_PROG)."""
        cmds.map_freeze(self.fd, self._ctx)

    def mmap(self, writable: bool = True):
        """Map a BPF_F_MMAPABLE array into memory: reads and writes without syscalls."""
        from .mmap import ArrayView
        return ArrayView(self, writable)

    def get_map(self, key, spec: MapSpec | None = None) -> Map:
        """Open the inner map stored at ``key`` of a map of maps (``spec`` defaults to ``inner``)."""
        if self.type not in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
            raise TypeError(f"{self._ctx}: get_map() is for maps of maps")
        return Map.from_id(self.lookup(key), spec or self.inner)

    # -- batch operations (see batch.py) ---------------------------------------------------------

    def lookup_batch(self, chunk: int | None = None) -> tuple[list, list]:
        """All ``(keys, values)`` read with BPF_MAP_LOOKUP_BATCH (per element where refused)."""
        from . import batch as _batch  # batch ops are rare: imported on first use
        return _batch.lookup_all(self, chunk, delete=False)

    def lookup_and_delete_batch(self, chunk: int | None = None) -> tuple[list, list]:
        """Like :meth:`lookup_batch`, deleting what it returns."""
        from . import batch as _batch
        return _batch.lookup_all(self, chunk, delete=True)

    def items_batch(self, chunk: int | None = None) -> Iterator[tuple]:
        """(key, value) pairs streamed one batch at a time."""
        from . import batch as _batch
        for keys, values in _batch.iter_batches(self, chunk, delete=False):
            yield from zip(keys, values)

    def update_batch(self, keys, values, flags: int = UpdateFlags.ANY) -> int:
        """Write many elements with BPF_MAP_UPDATE_BATCH; returns how many were written."""
        from . import batch as _batch
        return _batch.update_batch(self, keys, values, flags)

    def delete_batch(self, keys) -> int:
        """Delete many keys with BPF_MAP_DELETE_BATCH; returns how many were deleted."""
        from . import batch as _batch
        return _batch.delete_batch(self, keys)


def _has_bpf_capability() -> bool:
    """CAP_BPF (39) or CAP_SYS_ADMIN (21) in the effective set: then an EPERM on a
    write is about the map (frozen, read-only), not about privileges."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    caps = int(line.split()[1], 16)
                    return bool(caps & (1 << 39 | 1 << 21))
    except OSError:
        pass
    return os.geteuid() == 0


def _describe_spec(spec: MapSpec) -> str:
    return (f"{spec.type.name} map {spec.name!r} key_size={spec.key_size} "
            f"value_size={spec.value_size} max_entries={spec.max_entries} flags={spec.flags:#x}")


def _explain_create(err: BPFError, spec: MapSpec) -> BPFError:
    """Say why a create failed where the feature probes can tell (unsupported map type)."""
    if isinstance(err, BPFPermissionError) or err.hint:
        return err
    try:
        from pybpf.features import explain_map_failure
        hint = explain_map_failure(spec.type, err)
    except Exception:  # probes are advisory: never hide the original error
        hint = None
    if hint:
        return NotSupported(err.errno, err.command, err.context, hint)
    return err
