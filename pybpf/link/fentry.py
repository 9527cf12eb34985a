"""fentry / fexit / fmod_ret: BPF trampolines on a kernel function, chosen by BTF id.

Unlike kprobes, the target is fixed at *load* time: ``BPF_PROG_LOAD`` of a
``BPF_PROG_TYPE_TRACING`` program with ``expected_attach_type``
(``BPF_TRACE_FENTRY``/``FEXIT``/``BPF_MODIFY_RETURN``) and ``attach_btf_id``
= the function's ``FUNC`` id in vmlinux (or module) BTF. Attaching is then
``BPF_LINK_CREATE`` (or ``BPF_RAW_TRACEPOINT_OPEN`` with no name before 5.x).

When the kernel refuses such a load with EPERM even to root, the usual
reason is kernel lockdown; :func:`load_tracing` says so, with the mode read
from ``/sys/kernel/security/lockdown`` (or the build config), rather than the
generic "needs CAP_BPF" message.
"""

from __future__ import annotations

import errno
import gzip
import os

from pybpf.program.types import AttachType
from pybpf.syscall import BPFPermissionError, InvalidArgument, NotSupported

from .base import FDLink, link_create, prog_fd_of, raw_tracepoint_open

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Any

__all__ = ["TracingLink", "load_tracing", "attach_tracing", "lockdown_mode", "TRACING_KINDS"]

TRACING_KINDS = {
    "fentry": AttachType.TRACE_FENTRY,
    "fexit": AttachType.TRACE_FEXIT,
    "fmod_ret": AttachType.MODIFY_RETURN,
}
LOCKDOWN_FILE = "/sys/kernel/security/lockdown"


class TracingLink(FDLink):
    kind = "tracing"


def lockdown_mode() -> tuple[str | None, str]:
    """The kernel lockdown mode and where it was learnt: ``("integrity", "/sys/...")``.

    securityfs says it as ``none [integrity] confidentiality``; without
    securityfs, ``/proc/config.gz`` may tell the mode forced at build time.
    ``(None, reason)`` when unknown.
    """
    try:
        with open(LOCKDOWN_FILE) as f:
            text = f.read()
        if "[" in text:
            return text[text.index("[") + 1:text.index("]")], LOCKDOWN_FILE
    except OSError:
        pass
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            for line in f:
                for mode in ("NONE", "INTEGRITY", "CONFIDENTIALITY"):
                    if line.startswith(f"CONFIG_LOCK_DOWN_KERNEL_FORCE_{mode}=y"):
                        return mode.lower(), f"CONFIG_LOCK_DOWN_KERNEL_FORCE_{mode} in /proc/config.gz"
    except OSError:
        pass
    return None, f"{LOCKDOWN_FILE} is not readable (securityfs not mounted?)"


def _lockdown_error(exc: BPFPermissionError, kind: str, function: str) -> BPFPermissionError:
    mode, source = lockdown_mode()
    if mode and mode != "none":
        why = (f"kernel lockdown is active (mode {mode!r}, from {source}); under lockdown this kernel "
               f"refuses BPF trampolines (fentry/fexit/fmod_ret) even to root")
    elif mode == "none":
        why = ("lockdown is off here, so an LSM (SELinux, BPF LSM) or a kernel without BPF "
               "trampoline support (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) is the likely cause")
    else:
        why = (f"kernel lockdown is the likely cause ({source}): lockdown forbids BPF trampolines "
               "that read kernel memory; a kernel without ftrace direct calls "
               "(CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) refuses them too")
    caps = "running as root" if os.geteuid() == 0 else "not running as root"
    return BPFPermissionError(
        exc.errno, "BPF_PROG_LOAD",
        f"{kind} program on {function} refused with EPERM ({caps}): {why}",
        hint="Use a BTF-typed raw tracepoint (tp_btf), a raw tracepoint or a tracepoint instead")


def load_tracing(insns: Any, function: str, kind: str = "fentry", *, name: str = "",
                 module: str | None = None, verify: bool = False):
    """Load a fentry/fexit/fmod_ret program for kernel ``function``; returns a Program.

    ``insns`` is what :class:`~pybpf.program.ProgramSpec` takes (a Builder,
    instructions or bytecode). ``module`` looks the function up in that
    module's BTF instead of vmlinux.
    """
    from pybpf.btf import load_kernel_btf, load_module_btf
    from pybpf.program import Program, ProgramSpec, ProgType

    if kind not in TRACING_KINDS:
        raise ValueError(f"tracing kind {kind!r}: expected one of {', '.join(TRACING_KINDS)}")
    btf = load_module_btf(module) if module else load_kernel_btf()
    func_id = btf.func_id(function)
    if module:
        raise NotSupported(errno.EOPNOTSUPP, "BPF_PROG_LOAD",
                           f"{kind} on module function {module}:{function} needs the module's BTF "
                           "object fd (attach_btf_obj_fd), which pybpf does not pass yet")
    spec = ProgramSpec(insns, ProgType.TRACING, name=name or f"{kind}_{function}"[:15],
                       expected_attach_type=int(TRACING_KINDS[kind]), attach_btf_id=func_id)
    try:
        return Program.load(spec, verify=verify)
    except BPFPermissionError as exc:
        if exc.errno == errno.EPERM:
            raise _lockdown_error(exc, kind, function) from None
        raise


def attach_tracing(prog: object, kind: str = "fentry", function: str = "") -> TracingLink:
    """Attach a loaded fentry/fexit/fmod_ret (or tp_btf) program; its target came from the load."""
    prog_fd = prog_fd_of(prog)
    at = TRACING_KINDS.get(kind)
    if at is None:
        raise ValueError(f"tracing kind {kind!r}: expected one of {', '.join(TRACING_KINDS)}")
    desc = f"{kind} {function}".rstrip()
    try:
        fd = link_create(prog_fd, 0, at, desc)
    except (InvalidArgument, NotSupported):
        fd = raw_tracepoint_open(None, prog_fd, desc)
    return TracingLink(desc, fd)
