"""A tiny private ctypes loader for differential tests: BPF_MAP_CREATE and BPF_PROG_LOAD.

Kept deliberately small; the project's loader lives in ``pybpf.program``. Used
only by the verifier tests and ``bench/verifier_agreement.py`` so that each
corpus program can be checked against the running kernel's verifier.
"""

from __future__ import annotations

import ctypes
import os
import re
import struct
import time
from dataclasses import dataclass

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NR_BPF = 321  # x86_64
BPF_MAP_CREATE, BPF_PROG_LOAD = 0, 5
_ATTR_SIZE = 144
_LICENSE = ctypes.create_string_buffer(b"GPL")


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    ret = _libc.syscall(_NR_BPF, cmd, attr, _ATTR_SIZE)
    if ret < 0:
        return -ctypes.get_errno()
    return ret


def available() -> bool:
    """True when BPF_PROG_LOAD works here (root on a kernel with bpf(2))."""
    if os.geteuid() != 0:
        return False
    res = load(b"\xb7\x00\x00\x00\x00\x00\x00\x00\x95\x00\x00\x00\x00\x00\x00\x00", 1)
    return res.ok


def create_map(map_type: int, key_size: int, value_size: int, max_entries: int,
               flags: int = 0, inner_fd: int = 0) -> int:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIIIII", attr, 0, map_type, key_size, value_size, max_entries, flags, inner_fd)
    fd = _bpf(BPF_MAP_CREATE, attr)
    if fd < 0:
        raise OSError(-fd, f"BPF_MAP_CREATE type={map_type}: {os.strerror(-fd)}")
    return fd


@dataclass
class KernelResult:
    ok: bool
    errno: int
    error: str | None
    log: str
    processed: int | None
    seconds: float


_PROCESSED = re.compile(r"processed (\d+) insns")


def error_line(log: str) -> str | None:
    """The verifier's reason: the last log line that is not a statistics line."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("infinite loop detected"):
            return ln
    while lines and (lines[-1].startswith("processed ") or lines[-1].startswith("verification time")
                     or lines[-1].startswith("stack depth")):
        lines.pop()
    if not lines:
        return None
    last = lines[-1]
    cut = last.find("verification time")  # some reasons are printed without a newline
    return last[:cut] if cut > 0 else last


def load(code: bytes, prog_type: int, *, expected_attach_type: int = 0, prog_flags: int = 0,
         log_level: int = 4, log_size: int = 1 << 16) -> KernelResult:
    """BPF_PROG_LOAD ``code``; closes the fd at once and returns verdict, reason and log."""
    insns = ctypes.create_string_buffer(code, len(code))
    log = ctypes.create_string_buffer(log_size)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQQIIQII", attr, 0, prog_type, len(code) // 8,
                     ctypes.addressof(insns), ctypes.addressof(_LICENSE),
                     log_level, log_size, ctypes.addressof(log), 0, prog_flags)
    struct.pack_into("<I", attr, 68, expected_attach_type)
    t0 = time.perf_counter()
    fd = _bpf(BPF_PROG_LOAD, attr)
    seconds = time.perf_counter() - t0
    text = log.value.decode(errors="replace")
    m = _PROCESSED.search(text)
    processed = int(m.group(1)) if m else None
    if fd >= 0:
        os.close(fd)
        return KernelResult(True, 0, None, text, processed, seconds)
    return KernelResult(False, -fd, error_line(text) or os.strerror(-fd), text, processed, seconds)
