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


def run_once(fd: int, data: bytes = bytes(64)) -> int:
    """BPF_PROG_TEST_RUN once on ``data``; the program's return value (r0, as u32)."""
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    attr = ctypes.create_string_buffer(80)
    struct.pack_into("<IIIIQQI", attr, 0, fd, 0, len(data), 0, ctypes.addressof(buf), 0, 1)
    ret, err = _bpf(10, attr)
    if ret < 0:
        raise OSError(err, os.strerror(err))
    return struct.unpack_from("<I", attr, 4)[0]


def load_and_run(code: bytes, data: bytes = bytes(64)) -> int:
    """Load a socket filter, run it once, close it; its r0. Raise with the log if rejected."""
    fd, err, log = prog_load(code)
    if fd < 0:
        raise OSError(err, f"kernel rejected the program:\n{log[-2000:]}")
    try:
        return run_once(fd, data)
    finally:
        os.close(fd)
