"""Handing a BTF blob to the kernel (BPF_BTF_LOAD).

The kernel validates BTF much like the verifier validates programs and
writes its complaint ("[3] STRUCT pair size=8 vlen=2 Invalid member") into a
log buffer; on failure we retry with the log enabled and put its last lines
into the exception, since an errno alone says nothing about which type is
wrong.
"""

from __future__ import annotations

import errno
import os

from pybpf.syscall.attr_prog import BtfLoadAttr  # noqa: F401 (kept importable from here)

from .errors import BTFError

__all__ = ["BtfLoadAttr", "load_btf", "BTFLoadError"]


class BTFLoadError(BTFError, OSError):
    """The kernel rejected a BTF blob; ``log`` is its full BTF verifier log."""

    def __init__(self, err: int, message: str, log: str) -> None:
        OSError.__init__(self, err, message)
        self.log = log

    def __str__(self) -> str:
        return self.strerror or ""


def load_btf(blob: bytes, *, log_size: int = 1 << 16):
    """Load ``blob`` with BPF_BTF_LOAD; returns an owned :class:`pybpf.syscall.fd.FD`."""
    from pybpf.syscall.errors import BPFError
    from pybpf.syscall.fd import FD
    from pybpf.syscall.prog_cmds import btf_load

    try:
        return FD(btf_load(blob, context="loading BTF").fd)
    except BPFError as first:
        try:  # pragma: no cover (flaky kernel)
            return FD(btf_load(blob, log_level=1, log_size=log_size, context="loading BTF").fd)
        except BPFError as e:
            text = (getattr(e, "log", "") or "").strip()
            err = e.errno or first.errno
            tail = " ".join(line.strip() for line in text.splitlines()[-2:])
            msg = f"BPF_BTF_LOAD: {errno.errorcode.get(err, err)} ({os.strerror(err)})"
            raise BTFLoadError(err, msg + (f": {tail}" if tail else ""), text) from None
