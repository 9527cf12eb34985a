"""Tracepoints: ``perf_event_open(PERF_TYPE_TRACEPOINT, id)`` plus a perf link.

The id comes from tracefs ``events/<category>/<name>/id``. The event is
opened system-wide on CPU 0 with ``pid = -1``: for tracepoints the kernel
runs the program on every CPU regardless of the cpu argument, which only
chooses where samples would be counted.
"""

from __future__ import annotations

from pybpf.syscall import perf as _perf

from . import _probe_events
from .perf_event import PerfEventLink, attach_perf_event

__all__ = ["TracepointLink", "attach_tracepoint"]


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
    tp_id = _probe_events.tracepoint_id(category, name)
    attr = _perf.PerfEventAttr(type=_perf.PerfType.TRACEPOINT, config=tp_id, sample_period=1,
                               wakeup_events=1)
    cpu = 0 if pid == -1 else -1
    pfd = _perf.open_event(attr, pid=pid, cpu=cpu, context=f"tracepoint {category}:{name}")
    return attach_perf_event(prog, pfd, f"tracepoint {category}:{name}", cookie=cookie,
                             cls=TracepointLink)
