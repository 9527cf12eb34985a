"""kprobes and kretprobes: through the ``kprobe`` perf PMU, else tracefs ``kprobe_events``.

The PMU path (Linux 4.17+) opens a perf event of the dynamic type in
``/sys/bus/event_source/devices/kprobe/type`` with ``config1`` pointing to
the symbol name, ``config2`` the offset, and the ``retprobe`` config bit
(``format/retprobe``, ``config:0``) for a kretprobe. Nothing outlives the fd.
The legacy path writes ``p:pybpf/<event> SYM+OFF`` (``r`` for return probes,
``rN`` with maxactive) to ``kprobe_events`` and opens the new tracepoint;
the entry is removed on detach and by the cleanup registry.

System calls are entered through per-architecture wrappers since 4.17
(``__x64_sys_getpid``, ``__arm64_sys_getpid``); ``sys_getpid`` is rewritten to
the wrapper when the kernel has it (checked in /proc/kallsyms, else
``available_filter_functions``).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os

from pybpf.syscall import FD, BPFError, InvalidArgument, KeyNotFound, NotSupported
from pybpf.syscall import perf as _perf
from pybpf.tracefs import TracefsError, tracefs_path

from .perf_event import PerfEventLink, attach_perf_event, probe_pmu_attr
from .tracepoint import attach_probe_event

__all__ = ["KprobeLink", "attach_kprobe", "attach_kretprobe", "syscall_prefix", "resolve_symbol",
           "kprobes_supported"]

_ARCH_PREFIX = {
    "x86_64": "__x64_", "aarch64": "__arm64_", "s390x": "__s390x_", "ppc64le": "", "riscv64": "__riscv_",
}


class KprobeLink(PerfEventLink):
    kind = "kprobe"


@functools.cache
def _kernel_symbols() -> frozenset[str]:
    names: set[str] = set()
    for path in ("/proc/kallsyms",):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        names.add(parts[2])
        except OSError:
            pass
    if not names:
        try:
            with open(tracefs_path("available_filter_functions")) as f:
                for line in f:
                    if line.strip():
                        names.add(line.split()[0])
        except (OSError, TracefsError):
            pass
    return frozenset(names)


def syscall_prefix() -> str:
    """This architecture's syscall wrapper prefix (``__x64_`` on x86-64), or ``""``."""
    return _ARCH_PREFIX.get(os.uname().machine, "")


def resolve_symbol(symbol: str) -> str:
    """``sys_NAME`` -> ``<arch prefix>sys_NAME`` when the kernel has syscall wrappers."""
    prefix = syscall_prefix()
    if prefix and symbol.startswith("sys_"):
        symbols = _kernel_symbols()
        wrapped = prefix + symbol
        if wrapped in symbols or (not symbols and _has_pmu()):
            return wrapped
    return symbol


def _has_pmu() -> bool:
    return os.path.exists(os.path.join(_perf.EVENT_SOURCE, "kprobe", "type"))


def kprobes_supported() -> bool:
    """Whether this kernel offers kprobes at all (PMU or tracefs)."""
    from pybpf.tracefs.probes import probe_events_available  # on first use: start-up time

    return _has_pmu() or probe_events_available("kprobe")


def _no_kprobes(symbol: str) -> NotSupported:
    base = symbol
    for p in (syscall_prefix(), "__se_", "__do_", "ksys_"):
        if p and base.startswith(p):
            base = base[len(p):]
    if base.startswith("sys_"):
        name = base[4:]
        hint = (f"Use the tracepoint syscalls:sys_enter_{name} (or syscalls:sys_exit_{name}) instead: "
                f"attach_tracepoint(prog, 'syscalls:sys_enter_{name}'), or the raw tracepoint sys_enter")
    else:
        hint = ("Use a tracepoint instead (listed in /sys/kernel/tracing/available_events), e.g. "
                "attach_tracepoint(prog, 'syscalls:sys_enter_getpid'), or a raw tracepoint")
    return NotSupported(
        errno.EOPNOTSUPP, "kprobe",
        f"cannot attach to {symbol}: this kernel is built without kprobes (CONFIG_KPROBES / "
        f"CONFIG_KPROBE_EVENTS off: no {_perf.EVENT_SOURCE}/kprobe PMU and no tracefs kprobe_events)",
        hint=hint)


def _open_pmu(symbol: str, offset: int, address: int, retprobe: bool) -> FD:
    attr = probe_pmu_attr("kprobe", retprobe)
    name = ctypes.create_string_buffer(symbol.encode()) if symbol else None
    if name is not None:
        attr.config1 = ctypes.addressof(name)  # kprobe_func
        attr.config2 = offset  # probe_offset
    else:
        attr.config2 = address  # kprobe_addr
    what = f"{'kretprobe' if retprobe else 'kprobe'} {symbol or hex(address)}"
    try:
        return _perf.open_event(attr, pid=-1, cpu=0, context=what)
    except (KeyNotFound, InvalidArgument) as exc:
        if exc.errno == errno.ENOENT or (exc.errno == errno.EINVAL and symbol
                                         and symbol not in _kernel_symbols() and _kernel_symbols()):
            raise KeyNotFound(exc.errno, "perf_event_open",
                              f"{what}: symbol not found in the kernel (see /proc/kallsyms)") from None
        raise InvalidArgument(exc.errno, "perf_event_open",
                              f"{what}: the kernel refused the probe (not a probeable function, "
                              "on the kprobe blacklist, or a bad offset)") from None


def _attach(prog: object, symbol: str, *, offset: int, address: int, retprobe: bool, cookie: int,
            maxactive: int, pmu: bool) -> KprobeLink:
    if symbol and address:
        raise ValueError("give a symbol or an address, not both")
    if not kprobes_supported():
        raise _no_kprobes(symbol or hex(address))
    symbol = resolve_symbol(symbol) if symbol else ""
    kind = "kretprobe" if retprobe else "kprobe"
    target = symbol or hex(address)
    desc = f"{kind} {target}" + (f"+{offset:#x}" if offset else "")
    if pmu and _has_pmu() and not maxactive:
        try:
            pfd = _open_pmu(symbol, offset, address, retprobe)
        except (KeyNotFound, NotSupported):
            raise
        except BPFError:
            from pybpf.tracefs.probes import probe_events_available

            if not probe_events_available("kprobe"):
                raise
            pfd = None
        if pfd is not None:
            return attach_perf_event(prog, pfd, desc, cookie=cookie, cls=KprobeLink)
    # Legacy tracefs path (also the only way to set maxactive for kretprobes).
    return attach_probe_event(prog, "kprobe", desc, cookie=cookie, cls=KprobeLink, symbol=symbol,
                              offset=offset if symbol else 0, address=address, retprobe=retprobe,
                              maxactive=maxactive)


def attach_kprobe(prog: object, symbol: str = "", *, offset: int = 0, address: int = 0,
                  cookie: int = 0, pmu: bool = True) -> KprobeLink:
    """Attach a ``BPF_PROG_TYPE_KPROBE`` program at the entry of kernel function ``symbol``.

    ``sys_NAME`` is rewritten to the architecture's syscall wrapper. Raises
    :class:`NotSupported` on a kernel built without kprobes, naming the
    tracepoint to use instead. ``pmu=False`` skips the perf PMU and uses a
    tracefs ``kprobe_events`` entry.
    """
    return _attach(prog, symbol, offset=offset, address=address, retprobe=False, cookie=cookie,
                   maxactive=0, pmu=pmu)


def attach_kretprobe(prog: object, symbol: str = "", *, address: int = 0, cookie: int = 0,
                     maxactive: int = 0, pmu: bool = True) -> KprobeLink:
    """Attach at the return of ``symbol``; ``maxactive`` (tracefs only) bounds concurrent instances.

    ``pmu=False`` (implied by ``maxactive``) uses a tracefs ``kprobe_events`` entry.
    """
    return _attach(prog, symbol, offset=0, address=address, retprobe=True, cookie=cookie,
                   maxactive=maxactive, pmu=pmu)
