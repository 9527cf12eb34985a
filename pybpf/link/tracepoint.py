"""Tracepoints: ``perf_event_open(PERF_TYPE_TRACEPOINT, id)`` plus a perf link.

The id comes from tracefs ``events/<category>/<name>/id``. The event is
opened system-wide on CPU 0 with ``pid = -1``: for tracepoints the kernel
runs the program on every CPU regardless of the cpu argument, which only
chooses where samples would be counted. Legacy kprobes and uprobes are
tracepoints too: :func:`attach_probe_event` adds the tracefs probe event
and attaches the same way.
"""

from __future__ import annotations

import errno

from pybpf.program.types import ProgType
from pybpf.syscall import FD, error_for
from pybpf.syscall import perf as _perf
from pybpf.tracefs import TracefsError, tracepoint_id

from .base import prog_fd_of
from .perf_event import PerfEventLink, attach_perf_event

__all__ = ["TracepointLink", "attach_tracepoint", "open_tracepoint", "attach_probe_event", "GROUP"]

GROUP = "pybpf"  # the tracefs group of pybpf's probe events


class TracepointLink(PerfEventLink):
    kind = "tracepoint"


def _split(category: str, name: str | None) -> tuple[str, str]:
    if name is None:
        category, sep, name = category.partition(":")
        if not sep:
            category, sep, name = category.partition("/")
        if not sep or not category or not name:
            raise ValueError(f"tracepoint {category!r}: expected 'category:name', "
                             "e.g. 'syscalls:sys_enter_getpid'")
    return category, name


def attach_tracepoint(prog: object, category: str, name: str | None = None, *,
                      cookie: int = 0, pid: int = -1) -> TracepointLink:
    """Attach a ``BPF_PROG_TYPE_TRACEPOINT`` program to ``category:name``.

    ``attach_tracepoint(prog, "syscalls", "sys_enter_getpid")`` or
    ``attach_tracepoint(prog, "syscalls:sys_enter_getpid")``. ``pid`` limits
    the event to one process (-1: all).
    """
    category, name = _split(category, name)
    desc = f"tracepoint {category}:{name}"
    prog_fd_of(prog, ProgType.TRACEPOINT, hook=desc)  # refuse a wrong type before opening the event
    pfd = open_tracepoint(tracepoint_id(category, name), pid, desc)
    return attach_perf_event(prog, pfd, desc, cookie=cookie, cls=TracepointLink)


def open_tracepoint(tp_id: int, pid: int, context: str, sample_type: int = 0) -> FD:
    """perf_event_open(PERF_TYPE_TRACEPOINT, ``tp_id``) for ``pid`` (-1: system-wide on CPU 0)."""
    attr = _perf.PerfEventAttr(type=_perf.PerfType.TRACEPOINT, config=tp_id, sample_period=1,
                               wakeup_events=1, sample_type=sample_type)
    return _perf.open_event(attr, pid=pid, cpu=0 if pid == -1 else -1, context=context)


def attach_probe_event(prog: object, kind: str, description: str, *, pid: int = -1,
                       cookie: int = 0, cls: type[PerfEventLink] = PerfEventLink,
                       **event) -> PerfEventLink:
    """Attach ``prog`` through a tracefs ``<kind>_events`` entry (the legacy probe path).

    ``event`` are the arguments of :func:`~pybpf.tracefs.add_kprobe_event` or
    :func:`~pybpf.tracefs.add_uprobe_event`. The entry is removed when the link
    detaches, after its perf fd is closed (the kernel refuses to remove an
    event in use), or when attaching fails.
    """
    from pybpf.tracefs import probes  # imported on first use: start-up time

    add_event = {"kprobe": probes.add_kprobe_event, "uprobe": probes.add_uprobe_event}[kind]
    try:
        ev = add_event(group=GROUP, **event)
    except TracefsError as exc:  # raise the bpf(2)-style error the PMU path raises too
        raise error_for(exc.errno or errno.EINVAL, f"{kind}_events", exc.strerror) from None
    try:
        pfd = open_tracepoint(ev.id, pid, description, _perf.SampleType.RAW)
    except BaseException:
        ev.close()
        raise
    link = attach_perf_event(prog, pfd, description, cookie=cookie, cls=cls, undo_first=ev.close)
    link.event = f"{ev.group}/{ev.name}"
    return link
