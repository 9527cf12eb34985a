"""Legacy probe events: ``kprobe_events`` and ``uprobe_events``.

Before perf_event_open could create kprobes/uprobes directly (the PMU
way, see pybpf.link), one wrote ``p:group/name target`` to these files and
then opened the resulting tracepoint.  We keep the fallback, name every
entry ``pybpf_<pid>_<name>`` so leftovers are attributable, and remove it on
close.
"""

from __future__ import annotations

import errno
import os
import re
import weakref

from .mount import TracefsError, read_file, tracefs_path, write_file

__all__ = ["ProbeEvent", "add_kprobe_event", "add_uprobe_event", "list_probe_events"]

_SANITIZE = re.compile(r"[^A-Za-z0-9_]")


def _event_name(name: str) -> str:
    return f"pybpf_{os.getpid()}_{_SANITIZE.sub('_', name)}"[:63]


def _remove(file: str, group: str, name: str) -> None:
    try:
        write_file(f"-:{group}/{name}\n", file)
    except TracefsError as e:
        if e.errno not in (errno.ENOENT, errno.EINVAL):
            raise


class ProbeEvent:
    """One entry in kprobe_events/uprobe_events; a tracepoint while it lives."""

    def __init__(self, file: str, group: str, name: str, definition: str) -> None:
        self.file, self.group, self.name, self.definition = file, group, name, definition
        self._finalizer = weakref.finalize(self, _remove, file, group, name)

    @property
    def id(self) -> int:
        """Tracepoint id for perf_event_open(PERF_TYPE_TRACEPOINT)."""
        return int(read_file("events", self.group, self.name, "id"))

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> "ProbeEvent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ProbeEvent {self.definition!r}{' closed' if self.closed else ''}>"


def _add(file: str, what: str, letter: str, group: str, name: str, target: str) -> ProbeEvent:
    if not os.path.exists(tracefs_path(file)):
        raise TracefsError(errno.ENOTSUP, f"{tracefs_path(file)} does not exist: kernel built "
                           f"without CONFIG_{what.upper()}_EVENTS (no {what}s)")
    ev = _event_name(name)
    definition = f"{letter}:{group}/{ev} {target}"
    write_file(definition + "\n", file)
    return ProbeEvent(file, group, ev, definition)


def add_kprobe_event(symbol: str, *, retprobe: bool = False, offset: int = 0,
                     name: str | None = None, group: str = "kprobes") -> ProbeEvent:
    """``p:kprobes/pybpf_<pid>_<name> symbol[+offset]`` (``r:`` for a kretprobe)."""
    if not re.fullmatch(r"[A-Za-z_.][\w.]*", symbol):
        raise ValueError(f"invalid kernel symbol {symbol!r}")
    target = symbol + (f"+{offset}" if offset else "")
    return _add("kprobe_events", "kprobe", "r" if retprobe else "p", group,
                name or symbol, target)


def add_uprobe_event(path: str, offset: int, *, retprobe: bool = False,
                     name: str | None = None, group: str = "uprobes") -> ProbeEvent:
    """``p:uprobes/pybpf_<pid>_<name> /path:0xoffset``; offset is a file offset."""
    path = os.path.realpath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "uprobe target not found", path)
    if any(c.isspace() for c in path):
        raise ValueError(f"uprobe path {path!r} contains whitespace, which uprobe_events cannot parse")
    return _add("uprobe_events", "uprobe", "r" if retprobe else "p", group,
                name or f"{os.path.basename(path)}_{offset:x}", f"{path}:0x{offset:x}")


def list_probe_events(kind: str = "uprobe") -> list[str]:
    """Current lines of ``<kind>_events`` (``kprobe`` or ``uprobe``)."""
    if kind not in ("kprobe", "uprobe"):
        raise ValueError(f"kind must be 'kprobe' or 'uprobe', not {kind!r}")
    if not os.path.exists(tracefs_path(f"{kind}_events")):
        return []
    return [line for line in read_file(f"{kind}_events").splitlines() if line.strip()]
