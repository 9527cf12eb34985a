"""Load programs as a loader with CAP_BPF (+ CAP_NET_ADMIN) but without CAP_PERFMON/CAP_SYS_ADMIN.

The kernel derives env->allow_ptr_leaks, bypass_spec_v1/v4 and
allow_uninit_stack from CAP_PERFMON, and bpf_capable from CAP_BPF: a worker
forked once, with its effective and permitted capabilities cut down by
capset(2), loads each program and reports the verdict. Holding CAP_BPF makes
``kernel.unprivileged_bpf_disabled`` irrelevant. The worker keeps its own map
fds (it inherits the parent's at fork and creates the rest itself).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pickle
import struct

__all__ = ["load", "CAP_NET_ADMIN", "CAP_BPF"]

CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 12, 21, 38, 39
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_worker: tuple[int, int, int] | None = None  # pid, write fd, read fd


def _capset(caps) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    hdr = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    lo = sum(1 << c for c in caps if c < 32)
    hi = sum(1 << (c - 32) for c in caps if c >= 32)
    data = (ctypes.c_uint32 * 6)(lo, lo, 0, hi, hi, 0)  # effective, permitted, inheritable
    if libc.capset(hdr, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _send(fd: int, obj) -> None:
    data = pickle.dumps(obj)
    os.write(fd, struct.pack("<I", len(data)))
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _recv(fd: int):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    return pickle.loads(_read_exact(fd, struct.unpack("<I", head)[0]))


def _read_exact(fd: int, n: int):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _serve(rfd: int, wfd: int) -> None:
    import kernel
    from runner import kernel_bytes
    _capset([CAP_NET_ADMIN, CAP_BPF])
    while True:
        req = _recv(rfd)
        if req is None:
            return
        insns, prog_type, attach, flags, log_level = req
        try:
            res = kernel.load(kernel_bytes(insns), prog_type, expected_attach_type=attach,
                              prog_flags=flags, log_level=log_level)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            res = exc
        _send(wfd, res)


def _start() -> tuple[int, int, int]:
    global _worker
    if _worker is None:
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                os.close(w1)
                os.close(r2)
                _serve(r1, w2)
            finally:
                os._exit(0)
        os.close(r1)
        os.close(w2)
        _worker = (pid, w1, r2)
        atexit.register(_stop)
    return _worker


def _stop() -> None:
    global _worker
    if _worker is not None:
        pid, w, r = _worker
        _worker = None
        os.close(w)
        os.close(r)
        os.waitpid(pid, 0)


def load(insns, prog_type: int, *, expected_attach_type: int = 0, prog_flags: int = 0,
         log_level: int = 4):
    """BPF_PROG_LOAD from the capability-reduced worker; returns a kernel.KernelResult."""
    pid, w, r = _start()
    _send(w, (list(insns), prog_type, expected_attach_type, prog_flags, log_level))
    res = _recv(r)
    if res is None:
        _stop()
        raise RuntimeError("the unprivileged loader worker died")
    if isinstance(res, Exception):
        raise res
    return res
