"""The raw bpf(2) and perf_event_open(2) system calls through ctypes.

Everything above this module passes a ctypes structure (the relevant member
of ``union bpf_attr``) and gets an int back or a typed :class:`BPFError`.
"""

from __future__ import annotations

import ctypes
import os

from pybpf._intenum import IntEnum

from .errors import BPFError, error_for

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

_NR = {
    "x86_64": {"bpf": 321, "perf_event_open": 298, "ioctl": 16},
    "aarch64": {"bpf": 280, "perf_event_open": 241, "ioctl": 29},
}[os.uname().machine]


class Cmd(IntEnum):
    """bpf(2) commands (enum bpf_cmd)."""

    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_PIN = 6
    OBJ_GET = 7
    PROG_ATTACH = 8
    PROG_DETACH = 9
    PROG_TEST_RUN = 10
    PROG_GET_NEXT_ID = 11
    MAP_GET_NEXT_ID = 12
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    PROG_QUERY = 16
    RAW_TRACEPOINT_OPEN = 17
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    TASK_FD_QUERY = 20
    MAP_LOOKUP_AND_DELETE_ELEM = 21
    MAP_FREEZE = 22
    BTF_GET_NEXT_ID = 23
    MAP_LOOKUP_BATCH = 24
    MAP_LOOKUP_AND_DELETE_BATCH = 25
    MAP_UPDATE_BATCH = 26
    MAP_DELETE_BATCH = 27
    LINK_CREATE = 28
    LINK_UPDATE = 29
    LINK_GET_FD_BY_ID = 30
    LINK_GET_NEXT_ID = 31
    ENABLE_STATS = 32
    ITER_CREATE = 33
    LINK_DETACH = 34
    PROG_BIND_MAP = 35
    TOKEN_CREATE = 36


def bpf(cmd: Cmd, attr: ctypes.Structure, context: str = "", *,
        errors: dict[int, type[BPFError]] | None = None) -> int:
    """Call bpf(cmd, &attr, sizeof(attr)); return the result or raise a typed error.

    ``errors`` overrides the errno-to-class choice for this call (an ENOENT
    from PROG_GET_FD_BY_ID is not a missing map key).
    """
    ret = _syscall(_NR["bpf"], int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        cls = errors.get(err) if errors else None
        raise error_for(err, f"BPF_{Cmd(cmd).name}", context, cls=cls)
    return ret


def perf_event_open(attr: ctypes.Structure, pid: int, cpu: int, group_fd: int = -1, flags: int = 0,
                    context: str = "") -> int:
    """perf_event_open(2); returns the raw fd (wrap it in :class:`FD`)."""
    ret = _syscall(_NR["perf_event_open"], ctypes.byref(attr), ctypes.c_int(pid), ctypes.c_int(cpu),
                   ctypes.c_int(group_fd), ctypes.c_ulong(flags))
    if ret < 0:
        raise error_for(ctypes.get_errno(), "perf_event_open", context)
    return ret


def ioctl(fd: int, request: int, arg: int, name: str) -> int:
    """ioctl(2) with an integer argument (the perf event ioctls), raising a typed error.

    Here rather than through :func:`fcntl.ioctl`: this module's syscall() is at hand,
    and importing fcntl is start-up time every tool would pay.
    """
    ret = _syscall(_NR["ioctl"], ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_ulong(arg))
    if ret < 0:
        raise error_for(ctypes.get_errno(), name)
    return ret


def ptr(buf) -> int:
    """Address of a ctypes buffer / bytes-like object, as the u64 the kernel expects."""
    if buf is None:
        return 0
    return ctypes.addressof(buf)
