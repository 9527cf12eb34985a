"""A deliberately tiny bpf(2) BPF_PROG_LOAD / BPF_MAP_CREATE through ctypes.

The asm tests use it instead of pybpf.program so that they test the
disassembler against the kernel without depending on the loader under test.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NR_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), -1)

PROG_TYPE_SOCKET_FILTER = 1
PROG_TYPE_SYSCALL = 31
MAP_TYPE_ARRAY = 2
MAP_TYPE_ARENA = 33


def _bpf(cmd: int, attr: ctypes.Array) -> tuple[int, int]:
    ret = _libc.syscall(_NR_BPF, cmd, attr, len(attr))
    return ret, (ctypes.get_errno() if ret < 0 else 0)


def can_bpf() -> bool:
    """True if this process may load programs (root on a kernel with bpf(2))."""
    if _NR_BPF < 0 or os.geteuid() != 0:
        return False
    fd = create_array_map()
    if fd < 0:
        return False
    os.close(fd)
    return True


def create_array_map(value_size: int = 64, max_entries: int = 1) -> int:
    attr = ctypes.create_string_buffer(72)
    struct.pack_into("<IIII", attr, 0, MAP_TYPE_ARRAY, 4, value_size, max_entries)
    fd, _ = _bpf(0, attr)
    return fd


def prog_load(code: bytes, prog_type: int = PROG_TYPE_SOCKET_FILTER, *, log_level: int = 2,
              log_size: int = 1 << 22, flags: int = 0) -> tuple[int, int, str]:
    """Load bytecode; return (fd or -1, errno, verifier log). The caller closes fd."""
    insns = ctypes.create_string_buffer(bytes(code), len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(log_size)
    attr = ctypes.create_string_buffer(152)
    struct.pack_into("<IIQQIIQ", attr, 0, prog_type, len(code) // 8, ctypes.addressof(insns),
                     ctypes.addressof(lic), log_level, log_size, ctypes.addressof(log))
    struct.pack_into("<I", attr, 44, flags)
    fd, err = _bpf(5, attr)
    return fd, err, log.value.decode(errors="replace")
