"""Raw tracepoints: the tracepoint's C arguments, unformatted, without perf.

``BPF_PROG_TYPE_RAW_TRACEPOINT`` programs attach by name with
``BPF_RAW_TRACEPOINT_OPEN``. BTF-typed ones (``tp_btf``: a
``BPF_PROG_TYPE_TRACING`` program with expected attach type
``BPF_TRACE_RAW_TP`` and ``attach_btf_id`` naming the ``btf_trace_<name>``
typedef) attach with ``BPF_LINK_CREATE``, or ``BPF_RAW_TRACEPOINT_OPEN``
with no name on kernels before 6.0.
"""

from __future__ import annotations

from pybpf.syscall import InvalidArgument, NotSupported

from pybpf.program.types import AttachType, ProgType

from .base import FDLink, link_create, prog_fd_of, raw_tracepoint_open

__all__ = ["RawTracepointLink", "attach_raw_tracepoint", "attach_tp_btf", "tp_btf_id"]


class RawTracepointLink(FDLink):
    kind = "raw_tracepoint"


def attach_raw_tracepoint(prog: object, name: str) -> RawTracepointLink:
    """Attach a raw tracepoint program to the tracepoint ``name`` (e.g. ``"sys_enter"``)."""
    if ":" in name:
        name = name.split(":", 1)[1]  # "syscalls:sys_enter" style is accepted for convenience
    if not name:  # the kernel would read a NULL name and answer EFAULT
        raise ValueError("raw tracepoint name is empty: give one, e.g. 'sys_enter'")
    prog_fd = prog_fd_of(prog, ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE,
                         hook=f"raw tracepoint {name}")
    fd = raw_tracepoint_open(name, prog_fd, f"raw tracepoint {name}")
    return RawTracepointLink(f"raw_tracepoint {name}", fd)


def tp_btf_id(name: str) -> int:
    """The vmlinux BTF id of ``btf_trace_<name>``: the attach_btf_id of a tp_btf program."""
    from pybpf.btf import load_kernel_btf
    from pybpf.btf.kinds import Kind

    return load_kernel_btf().lookup(f"btf_trace_{name}", Kind.TYPEDEF).id


def attach_tp_btf(prog: object, name: str = "") -> RawTracepointLink:
    """Attach a loaded tp_btf program (its tracepoint was fixed at load by attach_btf_id)."""
    prog_fd = prog_fd_of(prog)
    try:
        fd = link_create(prog_fd, 0, AttachType.TRACE_RAW_TP,
                         f"tp_btf {name or '(by attach_btf_id)'}")
    except (InvalidArgument, NotSupported):
        fd = raw_tracepoint_open(None, prog_fd, f"tp_btf {name}")
    return RawTracepointLink(f"tp_btf {name}".rstrip(), fd)
