"""One small function per map, object and id command of bpf(2).

Buffers are passed as ``bytes`` (inputs only), ``bytearray``/ctypes arrays
(inputs or outputs) or ``None`` (a NULL pointer, e.g. the key of a queue).
Callers own the buffers and keep them alive for the call; nothing here
allocates per element, so the batch paths stay at one syscall per batch.
"""

from __future__ import annotations

import ctypes
import errno
import os

from .attr_map import (BpfMapInfo, EnableStatsAttr, GetIdAttr, InfoByFdAttr, MapBatchAttr,
                       MapCreateAttr, MapElemAttr, ObjPinAttr)
from .bpf import Cmd, bpf
from .errors import BadFD, BPFError, KeyNotFound, ObjectNotFound
from .fd import FD

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Iterator

__all__ = [
    "map_create", "map_lookup_elem", "map_update_elem", "map_delete_elem", "map_get_next_key",
    "map_lookup_and_delete_elem", "map_lookup_batch", "map_lookup_and_delete_batch",
    "map_update_batch", "map_delete_batch", "map_freeze", "obj_pin", "obj_get",
    "prog_get_next_id", "map_get_next_id", "link_get_next_id", "prog_get_fd_by_id",
    "map_get_fd_by_id", "link_get_fd_by_id", "object_ids", "open_objects", "obj_get_info_by_fd", "map_get_info", "enable_stats",
    "BPF_STATS_RUN_TIME",
]

BPF_STATS_RUN_TIME = 0
_NOT_FOUND = {errno.ENOENT: ObjectNotFound}

_c_void_p = ctypes.c_void_p
_c_char = ctypes.c_char
_CTYPES = (ctypes._SimpleCData, ctypes.Array, ctypes.Structure, ctypes.Union)


def buffer_address(buf) -> int:
    """The address the kernel should read/write for ``buf`` (0 for ``None``)."""
    if buf is None:
        return 0
    if isinstance(buf, _CTYPES):
        return ctypes.addressof(buf)
    if isinstance(buf, bytes):
        return ctypes.cast(buf, _c_void_p).value or 0
    if not len(buf):
        return 0
    return ctypes.addressof((_c_char * len(buf)).from_buffer(buf))


_addr = buffer_address


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0, *,
               name: str | bytes = "", inner_map_fd: int = 0, numa_node: int = 0,
               map_extra: int = 0, ifindex: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0,
               btf_value_type_id: int = 0, btf_vmlinux_value_type_id: int = 0,
               context: str = "") -> FD:
    """BPF_MAP_CREATE; returns the owned map fd."""
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                         max_entries=max_entries, map_flags=flags, inner_map_fd=inner_map_fd,
                         numa_node=numa_node, map_ifindex=ifindex, btf_fd=btf_fd,
                         btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                         btf_vmlinux_value_type_id=btf_vmlinux_value_type_id, map_extra=map_extra)
    attr.map_name = name.encode() if isinstance(name, str) else name
    return FD(bpf(Cmd.MAP_CREATE, attr, context))


def map_lookup_elem(fd: int, key, value_out, flags: int = 0, context: str = "") -> None:
    """BPF_MAP_LOOKUP_ELEM into ``value_out``; a missing key raises :class:`KeyNotFound`."""
    bpf(Cmd.MAP_LOOKUP_ELEM, MapElemAttr(fd, _addr(key), _addr(value_out), flags), context)


def map_update_elem(fd: int, key, value, flags: int = 0, context: str = "") -> None:
    """BPF_MAP_UPDATE_ELEM with BPF_ANY/BPF_NOEXIST/BPF_EXIST/BPF_F_LOCK ``flags``."""
    bpf(Cmd.MAP_UPDATE_ELEM, MapElemAttr(fd, _addr(key), _addr(value), flags), context)


def map_delete_elem(fd: int, key, flags: int = 0, context: str = "") -> None:
    """BPF_MAP_DELETE_ELEM."""
    bpf(Cmd.MAP_DELETE_ELEM, MapElemAttr(fd, _addr(key), 0, flags), context)


def map_get_next_key(fd: int, key, next_key_out, context: str = "") -> bool:
    """BPF_MAP_GET_NEXT_KEY; ``key=None`` asks for the first key.

    Returns False at the end of the map (ENOENT). Note that for hash maps and
    LPM tries the kernel restarts from the first key when ``key`` is missing.
    """
    try:
        bpf(Cmd.MAP_GET_NEXT_KEY, MapElemAttr(fd, _addr(key), _addr(next_key_out), 0), context)
    except KeyNotFound:
        return False
    return True


def map_lookup_and_delete_elem(fd: int, key, value_out, flags: int = 0, context: str = "") -> None:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM (``key=None`` pops a queue or stack)."""
    bpf(Cmd.MAP_LOOKUP_AND_DELETE_ELEM, MapElemAttr(fd, _addr(key), _addr(value_out), flags),
        context)


def _batch(cmd: Cmd, fd: int, in_batch, out_batch, keys, values, count: int, elem_flags: int,
           flags: int, context: str) -> tuple[int, bool]:
    attr = MapBatchAttr(_addr(in_batch), _addr(out_batch), _addr(keys), _addr(values), count, fd,
                        elem_flags, flags)
    try:
        bpf(cmd, attr, context)
    except KeyNotFound:
        return attr.count, True  # ENOENT: this was the last batch, ``count`` is still valid
    except BPFError as err:
        err.count = attr.count  # elements processed before the failure
        raise
    return attr.count, False


def map_lookup_batch(fd: int, in_batch, out_batch, keys, values, count: int, elem_flags: int = 0,
                     flags: int = 0, context: str = "") -> tuple[int, bool]:
    """BPF_MAP_LOOKUP_BATCH: returns ``(elements filled, done)``.

    ``in_batch=None`` starts at the beginning; feed ``out_batch`` back as the
    next ``in_batch`` until ``done``.
    """
    return _batch(Cmd.MAP_LOOKUP_BATCH, fd, in_batch, out_batch, keys, values, count, elem_flags,
                  flags, context)


def map_lookup_and_delete_batch(fd: int, in_batch, out_batch, keys, values, count: int,
                                elem_flags: int = 0, flags: int = 0,
                                context: str = "") -> tuple[int, bool]:
    """BPF_MAP_LOOKUP_AND_DELETE_BATCH: like :func:`map_lookup_batch`, deleting what it returns."""
    return _batch(Cmd.MAP_LOOKUP_AND_DELETE_BATCH, fd, in_batch, out_batch, keys, values, count,
                  elem_flags, flags, context)


def map_update_batch(fd: int, keys, values, count: int, elem_flags: int = 0, flags: int = 0,
                     context: str = "") -> int:
    """BPF_MAP_UPDATE_BATCH; on failure the error's ``count`` says how many were written."""
    return _batch(Cmd.MAP_UPDATE_BATCH, fd, None, None, keys, values, count, elem_flags, flags,
                  context)[0]


def map_delete_batch(fd: int, keys, count: int, elem_flags: int = 0, flags: int = 0,
                     context: str = "") -> int:
    """BPF_MAP_DELETE_BATCH; a missing key stops the batch with :class:`KeyNotFound`
    whose ``count`` says how many were deleted before it."""
    attr = MapBatchAttr(0, 0, _addr(keys), 0, count, fd, elem_flags, flags)
    try:
        bpf(Cmd.MAP_DELETE_BATCH, attr, context)
    except BPFError as err:
        err.count = attr.count
        raise
    return attr.count


def map_freeze(fd: int, context: str = "") -> None:
    """BPF_MAP_FREEZE: make the map read-only for user space from now on."""
    bpf(Cmd.MAP_FREEZE, MapElemAttr(map_fd=fd), context)


def obj_pin(fd: int, path: str | os.PathLike, context: str = "") -> None:
    """BPF_OBJ_PIN ``fd`` at ``path`` (which must be on a bpf filesystem)."""
    raw = os.fsencode(path)
    bpf(Cmd.OBJ_PIN, ObjPinAttr(pathname=_addr(raw), bpf_fd=fd), context or f"pin at {path}")


def obj_get(path: str | os.PathLike, file_flags: int = 0, context: str = "") -> FD:
    """BPF_OBJ_GET: open what is pinned at ``path``."""
    raw = os.fsencode(path)
    return FD(bpf(Cmd.OBJ_GET, ObjPinAttr(pathname=_addr(raw), file_flags=file_flags),
                  context or f"open pinned {path}", errors=_NOT_FOUND))


def _next_id(cmd: Cmd, start: int) -> int | None:
    attr = GetIdAttr(start_id=start)
    try:
        bpf(cmd, attr, f"after id {start}", errors=_NOT_FOUND)
    except ObjectNotFound:
        return None
    return attr.next_id


def prog_get_next_id(start: int = 0) -> int | None:
    """BPF_PROG_GET_NEXT_ID: the smallest program id above ``start``, or None."""
    return _next_id(Cmd.PROG_GET_NEXT_ID, start)


def map_get_next_id(start: int = 0) -> int | None:
    """BPF_MAP_GET_NEXT_ID: the smallest map id above ``start``, or None."""
    return _next_id(Cmd.MAP_GET_NEXT_ID, start)


def link_get_next_id(start: int = 0) -> int | None:
    """BPF_LINK_GET_NEXT_ID: the smallest link id above ``start``, or None."""
    return _next_id(Cmd.LINK_GET_NEXT_ID, start)


def _fd_by_id(cmd: Cmd, obj_id: int, open_flags: int, what: str) -> FD:
    attr = GetIdAttr(start_id=obj_id, open_flags=open_flags)
    return FD(bpf(cmd, attr, f"no {what} with id {obj_id}", errors=_NOT_FOUND))


def prog_get_fd_by_id(prog_id: int) -> FD:
    """BPF_PROG_GET_FD_BY_ID; :class:`ObjectNotFound` if there is no such program."""
    return _fd_by_id(Cmd.PROG_GET_FD_BY_ID, prog_id, 0, "program")


def map_get_fd_by_id(map_id: int, open_flags: int = 0) -> FD:
    """BPF_MAP_GET_FD_BY_ID (``open_flags``: BPF_F_RDONLY/BPF_F_WRONLY)."""
    return _fd_by_id(Cmd.MAP_GET_FD_BY_ID, map_id, open_flags, "map")


def link_get_fd_by_id(link_id: int) -> FD:
    """BPF_LINK_GET_FD_BY_ID."""
    return _fd_by_id(Cmd.LINK_GET_FD_BY_ID, link_id, 0, "link")


_ENUMERATE = {
    "prog": (prog_get_next_id, prog_get_fd_by_id),
    "map": (map_get_next_id, map_get_fd_by_id),
    "link": (link_get_next_id, link_get_fd_by_id),
}


def object_ids(kind: str) -> Iterator[int]:
    """Every id of a ``"prog"``, ``"map"`` or ``"link"`` in the system, ascending.

    The kernel hands ids out one at a time (BPF_*_GET_NEXT_ID); the walk is
    not a snapshot, so objects created or freed meanwhile may or may not show.
    """
    next_id = _ENUMERATE[kind][0]
    obj_id = next_id(0)
    while obj_id is not None:
        yield obj_id
        obj_id = next_id(obj_id)


def open_objects(kind: str) -> Iterator[FD]:
    """An fd for each live ``"prog"``, ``"map"`` or ``"link"``, closed when the
    caller moves on; objects freed between listing and opening are skipped."""
    get_fd = _ENUMERATE[kind][1]
    for obj_id in object_ids(kind):
        try:
            fd = get_fd(obj_id)
        except (ObjectNotFound, BadFD):
            continue
        with fd:
            yield fd


def obj_get_info_by_fd(fd: int, info: ctypes.Structure, context: str = "") -> int:
    """BPF_OBJ_GET_INFO_BY_FD into ``info`` (a bpf_map_info/bpf_prog_info/... structure).

    Returns the number of bytes the kernel filled (it never writes past ``sizeof(info)``).
    """
    attr = InfoByFdAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, context)
    return attr.info_len


def map_get_info(fd: int) -> BpfMapInfo:
    """bpf_map_info of a map fd."""
    info = BpfMapInfo()
    obj_get_info_by_fd(fd, info, "map info")
    return info


def enable_stats(stats_type: int = BPF_STATS_RUN_TIME) -> FD:
    """BPF_ENABLE_STATS: run-time stats stay enabled while the returned fd is open."""
    return FD(bpf(Cmd.ENABLE_STATS, EnableStatsAttr(type=stats_type), "enable run-time stats"))
