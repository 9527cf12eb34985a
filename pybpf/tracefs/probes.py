"""Legacy probe events: ``kprobe_events`` and ``uprobe_events``.

Before perf_event_open could create kprobes/uprobes directly (the PMU
way, see pybpf.link), one wrote ``p:group/name target`` to these files and
then opened the resulting tracepoint.  We keep the fallback (it is also the
only way to set a kretprobe's maxactive), name every entry
``pybpf_<pid>_<seq>_<name>`` so leftovers are attributable and two probes on
one symbol do not collide, and remove it on close.  An entry outlives the
process that wrote it, so :func:`sweep_stale_probe_events` removes those of
pids that no longer exist (a process killed by SIGKILL).
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import weakref

from .mount import TracefsError, read_file, tracefs_path, write_file

__all__ = ["ProbeEvent", "add_kprobe_event", "add_uprobe_event", "list_probe_events",
           "probe_event_names", "probe_events_available", "sweep_stale_probe_events"]

_SANITIZE = re.compile(r"[^A-Za-z0-9_]")
_OWNER = re.compile(r"^pybpf_(\d+)_")
_KSYM = re.compile(r"(?:[\w.-]+:)?[A-Za-z_.][\w.]*")  # [MOD:]SYM
_KINDS = ("kprobe", "uprobe")
_seq = itertools.count()


def _event_name(name: str) -> str:
    # The kernel caps event names at MAX_EVENT_NAME_LEN (64) including the NUL.
    return f"pybpf_{os.getpid()}_{next(_seq)}_{_SANITIZE.sub('_', name)}"[:63]


def _remove(file: str, group: str, name: str, owner: int) -> None:
    if os.getpid() != owner:
        return  # a forked child does not own its parent's entries
    try:
        write_file(f"-:{group}/{name}\n", file)
    except TracefsError as e:
        if e.errno not in (errno.ENOENT, errno.EINVAL):
            raise


class ProbeEvent:
    """One entry in kprobe_events/uprobe_events; a tracepoint while it lives."""

    def __init__(self, file: str, group: str, name: str, definition: str) -> None:
        self.file, self.group, self.name, self.definition = file, group, name, definition
        self._finalizer = weakref.finalize(self, _remove, file, group, name, os.getpid())

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


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'kprobe' or 'uprobe', not {kind!r}")


def probe_events_available(kind: str) -> bool:
    """Whether tracefs is there (mounting it if need be) with a ``<kind>_events`` file."""
    _check_kind(kind)
    try:
        return os.path.exists(tracefs_path(f"{kind}_events"))
    except TracefsError:
        return False


def _add(kind: str, letter: str, group: str, name: str, target: str) -> ProbeEvent:
    file = f"{kind}_events"
    if not os.path.exists(tracefs_path(file)):
        raise TracefsError(errno.ENOTSUP, f"{tracefs_path(file)} does not exist: kernel built "
                           f"without CONFIG_{kind.upper()}_EVENTS (no {kind}s)")
    ev = _event_name(name)
    definition = f"{letter}:{group}/{ev} {target}"
    write_file(definition + "\n", file)
    return ProbeEvent(file, group, ev, definition)


def _letter(retprobe: bool, maxactive: int) -> str:
    if maxactive and not retprobe:
        raise ValueError("maxactive applies to return probes only")
    if maxactive < 0:
        raise ValueError(f"maxactive must be positive, not {maxactive}")
    return f"r{maxactive or ''}" if retprobe else "p"


def add_kprobe_event(symbol: str = "", *, retprobe: bool = False, offset: int = 0,
                     address: int = 0, maxactive: int = 0, name: str | None = None,
                     group: str = "kprobes") -> ProbeEvent:
    """``p:kprobes/pybpf_<pid>_<seq>_<name> [MOD:]symbol[+offset]`` or ``... 0xADDRESS``.

    ``retprobe`` writes ``r:`` (a kretprobe), ``maxactive=N`` writes ``rN:``:
    how many instances of the function may be probed at once.
    """
    if bool(symbol) == bool(address):
        raise ValueError("give a kernel symbol or an address to probe (one of them)")
    if symbol and not _KSYM.fullmatch(symbol):
        raise ValueError(f"invalid kernel symbol {symbol!r}")
    target = symbol + (f"+{offset}" if offset else "") if symbol else f"{address:#x}"
    return _add("kprobe", _letter(retprobe, maxactive), group,
                name or symbol or f"addr_{address:x}", target)


def add_uprobe_event(path: str, offset: int, *, retprobe: bool = False, ref_ctr_offset: int = 0,
                     name: str | None = None, group: str = "uprobes") -> ProbeEvent:
    """``p:uprobes/pybpf_<pid>_<seq>_<name> /path:0xoffset[(0xref_ctr_offset)]``.

    ``offset`` is a file offset; ``ref_ctr_offset`` the file offset of a USDT
    semaphore the kernel increments while the probe exists.
    """
    path = os.path.realpath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "uprobe target not found", path)
    if any(c.isspace() for c in path):
        raise ValueError(f"uprobe path {path!r} contains whitespace, which uprobe_events cannot parse")
    target = f"{path}:{offset:#x}" + (f"({ref_ctr_offset:#x})" if ref_ctr_offset else "")
    return _add("uprobe", _letter(retprobe, 0), group,
                name or f"{os.path.basename(path)}_{offset:x}", target)


def list_probe_events(kind: str = "uprobe") -> list[str]:
    """Current lines of ``<kind>_events`` (``kprobe`` or ``uprobe``)."""
    if not probe_events_available(kind):
        return []
    return [line for line in read_file(f"{kind}_events").splitlines() if line.strip()]


def probe_event_names(kind: str = "uprobe") -> list[str]:
    """The ``GROUP/EVENT`` names currently in ``<kind>_events``."""
    names = []
    for line in list_probe_events(kind):
        head = line.split(" ", 1)[0]
        if ":" in head:
            names.append(head.split(":", 1)[1])
    return names


def sweep_stale_probe_events(groups: tuple[str, ...] = ("pybpf", "kprobes", "uprobes")) -> list[str]:
    """Remove ``pybpf_<pid>_...`` probe events of ``groups`` whose pid no longer exists.

    Returns the removed ``GROUP/EVENT`` names.
    """
    removed = []
    for kind in _KINDS:
        for full in probe_event_names(kind):
            group, _, name = full.partition("/")
            m = _OWNER.match(name)
            if group not in groups or not m:
                continue
            pid = int(m.group(1))
            if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
                continue
            try:
                write_file(f"-:{group}/{name}\n", f"{kind}_events")
                removed.append(full)
            except TracefsError:
                pass
    return removed
