"""Shared fixtures for the map tests: root check, a trivial loaded program, fd counting."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest

from pybpf.syscall.fd import FD

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for bpf(2)")

# r0 = 0; exit
RET0 = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
SOCKET_FILTER = 1
RAW_TRACEPOINT = 17


class _RawProg:
    """Fallback when pybpf.program is unavailable: a raw BPF_PROG_LOAD, fd owned by FD."""

    class _Attr(ctypes.Structure):
        _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                    ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                    ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                    ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                    ("prog_flags", ctypes.c_uint32)]

    def __init__(self, code: bytes, prog_type: int):
        from pybpf.syscall.bpf import Cmd, bpf
        from pybpf.syscall.map_cmds import buffer_address
        lic = b"GPL\0"
        attr = self._Attr(prog_type, len(code) // 8, buffer_address(code), buffer_address(lic))
        self._fd = FD(bpf(Cmd.PROG_LOAD, attr, "test program"))
        info = (ctypes.c_uint32 * 2)()
        from pybpf.syscall.attr_map import InfoByFdAttr
        a = InfoByFdAttr(self._fd.fd, 8, ctypes.addressof(info))
        bpf(Cmd.OBJ_GET_INFO_BY_FD, a, "prog info")
        self.id = info[1]

    @property
    def fd(self) -> int:
        return self._fd.fd

    def close(self) -> None:
        self._fd.close()


def load_prog(code: bytes = RET0, prog_type: int = SOCKET_FILTER):
    """A loaded program object with ``.fd``, ``.id`` and ``.close()``."""
    try:
        from pybpf.program import ProgramSpec
    except ImportError:
        return _RawProg(code, prog_type)
    # raw bytecode with map fds baked in: the kernel's verifier is the judge here
    return ProgramSpec(code, prog_type).load(verify=False)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def prog():
    p = load_prog()
    yield p
    p.close()
