"""BPF_PROG_TEST_RUN with output buffers sized for what the program may do.

XDP programs can grow a packet at the head (up to the 256-byte headroom) and
at the tail (up to the page the kernel builds the frame in); skb programs can
grow it with bpf_skb_change_tail()/adjust_room(). data_out is therefore sized
generously by default, and if the kernel still answers ENOSPC (it reports the
size it needed) the run is repeated once with that size.

Some types run exactly once and take only a context: raw tracepoints, tracing
(fentry/fexit) and syscall programs; for those ``repeat`` must be 1 and
data_in/data_out are refused by the kernel.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from pybpf.syscall import prog_cmds
from pybpf.syscall.errors import BPFError

from .types import ProgType

__all__ = ["TestRunResult", "test_run", "DATA_OUT_EXTRA"]

DATA_OUT_EXTRA = 4096  # room for XDP head/tail growth beyond data_in
_ONCE = {ProgType.RAW_TRACEPOINT, ProgType.TRACING, ProgType.SYSCALL, ProgType.STRUCT_OPS}
_NO_CTX_OUT = {ProgType.RAW_TRACEPOINT, ProgType.TRACING, ProgType.SYSCALL, ProgType.STRUCT_OPS}


@dataclass(frozen=True)
class TestRunResult:
    """``retval`` (r0 at exit), outputs trimmed to the kernel's sizes, ``duration`` in ns per run."""

    __test__ = False
    retval: int
    data_out: bytes | None
    ctx_out: bytes | None
    duration: int


def test_run(prog_fd: int, prog_type: ProgType | int, *, data_in: bytes | None = None,
             ctx_in: bytes | None = None, repeat: int = 1, flags: int = 0, cpu: int = 0,
             batch_size: int = 0, data_size_out: int | None = None,
             ctx_size_out: int | None = None) -> TestRunResult:
    if prog_type in _ONCE:
        if repeat > 1:
            raise ValueError(f"BPF_PROG_TEST_RUN runs {ProgType(prog_type).bpftool_name} programs "
                             f"once: repeat must be 1, not {repeat}")
        if data_in is not None:
            raise ValueError(f"{ProgType(prog_type).bpftool_name} programs take no packet: "
                             f"pass their arguments as ctx_in")
        repeat = 0
    if data_size_out is None:
        data_size_out = len(data_in) + DATA_OUT_EXTRA if data_in is not None else 0
    if ctx_size_out is None:
        ctx_size_out = len(ctx_in) if ctx_in is not None and prog_type not in _NO_CTX_OUT else 0
    for _ in range(3):
        try:
            out = prog_cmds.prog_test_run(prog_fd, data_in=data_in, data_size_out=data_size_out,
                                          ctx_in=ctx_in, ctx_size_out=ctx_size_out, repeat=repeat,
                                          flags=flags, cpu=cpu, batch_size=batch_size,
                                          context=f"test run of program fd {prog_fd}")
        except BPFError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            need_data = getattr(exc, "data_size_out", 0)
            need_ctx = getattr(exc, "ctx_size_out", 0)
            if need_data <= data_size_out and need_ctx <= ctx_size_out:
                raise
            data_size_out = max(data_size_out, need_data)
            ctx_size_out = max(ctx_size_out, need_ctx)
            continue
        return TestRunResult(out.retval, out.data_out, out.ctx_out, out.duration)
    raise BPFError(errno.ENOSPC, "BPF_PROG_TEST_RUN", "output buffers kept growing")
