"""Handing a BTF blob to the kernel (BPF_BTF_LOAD).

The kernel validates BTF much like the verifier validates programs and
writes its complaint ("[3] STRUCT pair size=8 vlen=2 Invalid member") into a
log buffer; on failure we retry with the log enabled and put its last lines
into the exception, since an errno alone says nothing about which type is
wrong.
"""

from __future__ import annotations

import ctypes
import errno
import os

from .errors import BTFError

__all__ = ["BtfLoadAttr", "load_btf", "BTFLoadError"]


class BtfLoadAttr(ctypes.Structure):
    """The BPF_BTF_LOAD member of ``union bpf_attr``."""

    _fields_ = [
        ("btf", ctypes.c_uint64),
        ("btf_log_buf", ctypes.c_uint64),
        ("btf_size", ctypes.c_uint32),
        ("btf_log_size", ctypes.c_uint32),
        ("btf_log_level", ctypes.c_uint32),
        ("btf_log_true_size", ctypes.c_uint32),
        ("btf_flags", ctypes.c_uint32),
        ("btf_token_fd", ctypes.c_int32),
    ]


class BTFLoadError(BTFError, OSError):
    """The kernel rejected a BTF blob; ``log`` is its full BTF verifier log."""

    def __init__(self, err: int, message: str, log: str) -> None:
        OSError.__init__(self, err, message)
        self.log = log

    def __str__(self) -> str:
        return self.strerror or ""


def load_btf(blob: bytes, *, log_size: int = 1 << 16):
    """Load ``blob`` with BPF_BTF_LOAD; returns an owned :class:`pybpf.syscall.fd.FD`."""
    from pybpf.syscall.bpf import Cmd, bpf
    from pybpf.syscall.errors import BPFError
    from pybpf.syscall.fd import FD

    buf = ctypes.create_string_buffer(bytes(blob), len(blob))
    attr = BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(blob))
    try:
        return FD(bpf(Cmd.BTF_LOAD, attr, "loading BTF"))
    except BPFError as first:
        log = ctypes.create_string_buffer(log_size)
        attr = BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(blob),
                           btf_log_buf=ctypes.addressof(log), btf_log_size=log_size,
                           btf_log_level=1)
        try:
            return FD(bpf(Cmd.BTF_LOAD, attr, "loading BTF"))  # pragma: no cover (flaky kernel)
        except BPFError as e:
            text = log.value.decode(errors="replace").strip()
            err = e.errno or first.errno
            tail = " ".join(line.strip() for line in text.splitlines()[-2:])
            msg = f"BPF_BTF_LOAD: {errno.errorcode.get(err, err)} ({os.strerror(err)})"
            raise BTFLoadError(err, msg + (f": {tail}" if tail else ""), text) from None
