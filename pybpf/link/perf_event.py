"""Attaching a program to a perf event fd: tracepoints, kprobes and uprobes share this.

Since 5.15 a ``BPF_LINK_CREATE`` with attach type ``BPF_PERF_EVENT`` gives a
bpf_link (visible to LINK_GET_NEXT_ID, and it carries a bpf_cookie). Older
kernels only have ``PERF_EVENT_IOC_SET_BPF`` followed by
``PERF_EVENT_IOC_ENABLE``; the perf fd itself then holds the attachment.
"""

from __future__ import annotations

import errno

from pybpf.syscall import FD, BPFError, InvalidArgument, NotSupported
from pybpf.syscall import perf as _perf

from pybpf.program.types import AttachType

from .base import Link, link_create, link_info, prog_fd_of

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["PerfEventLink", "attach_perf_event", "probe_pmu_attr"]

_link_supported: bool | None = None  # learnt on first use


class PerfEventLink(Link):
    """A program attached to a perf event (tracepoint, kprobe, uprobe).

    ``perf_fd`` is the event; ``fd`` the bpf_link when the kernel has perf
    links (``is_bpf_link``), otherwise the same perf fd.
    """

    kind = "perf_event"

    def __init__(self, description: str):
        super().__init__(description)
        self._perf_fd: FD | None = None
        self._link_fd: FD | None = None

    def _open(self, fd: FD | None) -> int:
        try:
            return fd.fd  # type: ignore[union-attr]
        except (AttributeError, ValueError):  # never set, or closed by detach()
            raise ValueError(f"use of detached {self.description}") from None

    @property
    def perf_fd(self) -> int:
        return self._open(self._perf_fd)

    @property
    def fd(self) -> int:
        return self._open(self._link_fd or self._perf_fd)

    def fileno(self) -> int:
        return self.fd

    @property
    def is_bpf_link(self) -> bool:
        return self._link_fd is not None

    @property
    def id(self) -> int:
        """The kernel's link id (only when attached through a bpf_link)."""
        return self.info().id

    def info(self):
        """struct bpf_link_info (type, id, prog_id, perf event details) of the bpf_link."""
        if self._link_fd is None:
            raise TypeError(f"{self.description} is attached with PERF_EVENT_IOC_SET_BPF (no bpf_link)")
        return link_info(self._open(self._link_fd))


def probe_pmu_attr(pmu: str, retprobe: bool) -> _perf.PerfEventAttr:
    """The perf_event_attr of a ``kprobe``/``uprobe`` PMU event; the caller sets the target
    (``config1``, ``config2``) and, for uprobes, the ref_ctr_offset bits of ``config``."""
    attr = _perf.PerfEventAttr(type=_perf.pmu_type(pmu), sample_period=1, wakeup_events=1,
                               sample_type=_perf.SampleType.RAW)
    if retprobe:
        attr.config |= 1 << _perf.pmu_retprobe_bit(pmu)
    return attr


def attach_perf_event(prog: object, perf_fd: FD, description: str, *, cookie: int = 0,
                      undo_first: Callable[[], None] | None = None,
                      cls: type[PerfEventLink] = PerfEventLink) -> PerfEventLink:
    """Attach ``prog`` to the open event ``perf_fd`` (ownership passes to the link).

    ``undo_first`` is an undo step that must run after the fds are closed
    (removing a tracefs probe event): it is registered before them.
    """
    global _link_supported
    if not isinstance(perf_fd, FD):  # the link closes it: a borrowed int would be closed too
        raise TypeError(f"attach_perf_event: perf_fd must be an owned pybpf.syscall.FD (from "
                        f"perf_event_open), not {type(perf_fd).__name__} {perf_fd!r}; for an fd "
                        f"you keep, pass FD(os.dup(fd))")
    link = cls(description)
    if undo_first is not None:
        link._on_detach(undo_first)
    link._perf_fd = link._own_fd(perf_fd)
    prog_fd = prog_fd_of(prog)
    try:
        if _link_supported is not False:
            try:
                lfd = link_create(prog_fd, perf_fd.fd, AttachType.PERF_EVENT,
                                  f"attaching to {description}", cookie=cookie)
                link._link_fd = link._own_fd(lfd)
                _link_supported = True
                return link
            except (InvalidArgument, NotSupported) as exc:
                if _link_supported:
                    raise  # perf links work here: this EINVAL is about the program or event
                first_error: BPFError = exc
        else:
            first_error = None  # type: ignore[assignment]
        if cookie:
            raise NotSupported(errno.EOPNOTSUPP, "BPF_LINK_CREATE",
                               f"bpf_cookie for {description} needs perf links (Linux 5.15)")
        try:
            _perf.ioctl_set_bpf(perf_fd.fd, prog_fd)
        except BPFError:
            if first_error is not None:
                raise first_error from None
            raise
        _link_supported = False
        _perf.ioctl_enable(perf_fd.fd)
        return link
    except BaseException:
        link.detach()
        raise
