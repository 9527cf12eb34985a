"""uprobes and uretprobes on a symbol (or offset) of an ELF file, optionally for one pid.

Like kprobes, through the ``uprobe`` perf PMU (``config1`` = path,
``config2`` = file offset, ``config`` bits 32-63 = ref_ctr_offset for USDT
semaphores, the ``retprobe`` bit for uretprobes), falling back to tracefs
``uprobe_events`` (``p:pybpf/<event> PATH:0xOFFSET[(0xREF_CTR_OFFSET)]``). The offset of a
symbol is computed by :mod:`pybpf.link.elf`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil

from pybpf.program.types import ProgType
from pybpf.syscall import BPFError, NotSupported
from pybpf.syscall import perf as _perf

from .base import prog_fd_of
from .elf import ElfFile
from .perf_event import PerfEventLink, attach_perf_event, probe_pmu_attr
from .tracepoint import attach_probe_event

__all__ = ["UprobeLink", "attach_uprobe", "attach_uretprobe", "resolve_binary"]

_LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
             "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


class UprobeLink(PerfEventLink):
    kind = "uprobe"

    path: str = ""
    offset: int = 0
    legacy: bool = False


def resolve_binary(path: str) -> str:
    """An absolute path for ``path``: as is when it contains ``/``, else PATH, else library dirs
    (``"libc.so.6"``, ``"bash"``)."""
    if "/" in path:
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "uprobe target does not exist", path)
        return os.path.realpath(path)
    found = shutil.which(path)
    if found:
        return os.path.realpath(found)
    for d in _LIB_DIRS:
        cand = os.path.join(d, path)
        if os.path.exists(cand):
            return os.path.realpath(cand)
    raise FileNotFoundError(errno.ENOENT, "uprobe target not found in PATH or library directories", path)


def _has_pmu() -> bool:
    return os.path.exists(os.path.join(_perf.EVENT_SOURCE, "uprobe", "type"))


def _open_pmu(path: str, offset: int, retprobe: bool, pid: int, ref_ctr_offset: int):
    attr = probe_pmu_attr("uprobe", retprobe)
    attr.config |= ref_ctr_offset << 32  # format/ref_ctr_offset: config:32-63
    name = ctypes.create_string_buffer(path.encode())
    attr.config1 = ctypes.addressof(name)  # uprobe_path
    attr.config2 = offset  # probe_offset
    cpu = 0 if pid == -1 else -1
    what = f"{'uretprobe' if retprobe else 'uprobe'} {path}:{offset:#x}"
    return _perf.open_event(attr, pid=pid, cpu=cpu, context=what)


def _attach(prog: object, binary: str, symbol: str, *, offset: int, address: int, pid: int,
            retprobe: bool, cookie: int, ref_ctr_offset: int, legacy: bool) -> UprobeLink:
    path = resolve_binary(binary)
    if symbol:
        elf = ElfFile(path)
        file_off = elf.address_to_offset(elf.symbol(symbol).value) + offset
    elif address:
        file_off = ElfFile(path).address_to_offset(address) + offset
    else:
        file_off = offset
    if not file_off and not symbol:
        raise ValueError("give a symbol, an address or a file offset to probe")
    kind = "uretprobe" if retprobe else "uprobe"
    desc = f"{kind} {path}:{symbol or hex(file_off)}" + (f" pid {pid}" if pid != -1 else "")
    # The kernel answers a program of another type with a bare EINVAL, after the probe is made.
    prog_fd_of(prog, ProgType.KPROBE, hook=desc)
    link = None
    from pybpf.tracefs.probes import probe_events_available  # on first use: start-up time

    if _has_pmu() and not legacy:
        try:
            pfd = _open_pmu(path, file_off, retprobe, pid, ref_ctr_offset)
            link = attach_perf_event(prog, pfd, desc, cookie=cookie, cls=UprobeLink)
        except NotSupported:
            if not probe_events_available("uprobe"):
                raise
        except BPFError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP) or \
                    not probe_events_available("uprobe"):
                raise
    if link is None:
        link = attach_probe_event(prog, "uprobe", desc, pid=pid, cookie=cookie, cls=UprobeLink,
                                  path=path, offset=file_off, retprobe=retprobe,
                                  ref_ctr_offset=ref_ctr_offset,
                                  name=f"{os.path.basename(path)}_{symbol or hex(file_off)}")
        link.legacy = True
    link.path, link.offset = path, file_off
    return link


def attach_uprobe(prog: object, binary: str, symbol: str = "", *, offset: int = 0, address: int = 0,
                  pid: int = -1, cookie: int = 0, ref_ctr_offset: int = 0,
                  legacy: bool = False) -> UprobeLink:
    """Attach a ``BPF_PROG_TYPE_KPROBE`` program at ``symbol`` (+``offset``) of ``binary``.

    ``binary`` is a path or a name found in PATH / the library directories
    (``"libc.so.6"``). Without ``symbol``, ``address`` is a virtual address
    and ``offset`` a raw file offset. ``pid`` restricts the probe to one
    process. ``legacy=True`` forces the tracefs ``uprobe_events`` path.
    """
    return _attach(prog, binary, symbol, offset=offset, address=address, pid=pid, retprobe=False,
                   cookie=cookie, ref_ctr_offset=ref_ctr_offset, legacy=legacy)


def attach_uretprobe(prog: object, binary: str, symbol: str = "", *, offset: int = 0, address: int = 0,
                     pid: int = -1, cookie: int = 0, ref_ctr_offset: int = 0,
                     legacy: bool = False) -> UprobeLink:
    """Attach at the return of ``symbol`` in ``binary`` (see :func:`attach_uprobe`)."""
    return _attach(prog, binary, symbol, offset=offset, address=address, pid=pid, retprobe=True,
                   cookie=cookie, ref_ctr_offset=ref_ctr_offset, legacy=legacy)
