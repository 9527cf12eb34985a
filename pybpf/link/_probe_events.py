"""Legacy (tracefs) probe events: ``kprobe_events`` / ``uprobe_events`` entries.

Kernels before 4.17, or ones whose perf PMU path refuses a probe, only offer
probes as tracefs dynamic events: write ``p:GROUP/EVENT TARGET`` to the
events file, read the new event's tracepoint id, open it as a tracepoint.
Such an entry survives the process, so it is named ``pybpf_<pid>_<n>_<target>``
(group ``pybpf``) and removed on detach; :func:`sweep_stale` removes entries of
pids that no longer exist (a process killed by SIGKILL).

Tracefs discovery prefers ``pybpf.tracefs`` when present.
"""

from __future__ import annotations

import errno
import itertools
import os
import re

from pybpf.syscall import NotSupported

GROUP = "pybpf"
_seq = itertools.count()
_NAME_RE = re.compile(r"^pybpf_(\d+)_")


def tracefs_root() -> str:
    """The tracefs mount point; mounts it at /sys/kernel/tracing if nothing is mounted."""
    try:
        from pybpf import tracefs as _tfs  # the tracefs engineer's discovery, if present
        for name in ("root", "tracefs_root", "find_tracefs", "mount_point"):
            fn = getattr(_tfs, name, None)
            if callable(fn):
                return str(fn())
    except ImportError:
        pass
    candidates = []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "tracefs":
                    candidates.append(parts[1])
    except OSError:
        pass
    for path in candidates + ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]:
        if os.path.exists(os.path.join(path, "events")):
            return path
    if os.path.isdir("/sys/kernel/tracing"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b"nodev", b"/sys/kernel/tracing", b"tracefs", 0, None) == 0:
            return "/sys/kernel/tracing"
    raise NotSupported(errno.ENOENT, "tracefs", "tracefs is not mounted and could not be mounted "
                       "(try: mount -t tracefs nodev /sys/kernel/tracing)")


def tracepoint_id(category: str, name: str) -> int:
    """The perf tracepoint id of ``events/<category>/<name>/id``."""
    try:
        from pybpf import tracefs as _tfs
        fn = getattr(_tfs, "tracepoint_id", None)
        if callable(fn):
            return int(fn(category, name))
    except ImportError:
        pass
    path = os.path.join(tracefs_root(), "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        raise NotSupported(errno.ENOENT, "perf_event_open",
                           f"tracepoint {category}:{name} does not exist ({path} not found)") from None


def events_file(kind: str) -> str:
    """``kprobe_events`` or ``uprobe_events`` under tracefs; NotSupported when absent."""
    path = os.path.join(tracefs_root(), f"{kind}_events")
    if not os.path.exists(path):
        raise NotSupported(errno.EOPNOTSUPP, f"{kind}_events", f"{path} does not exist")
    return path


def sanitize(text: str) -> str:
    """An event-name-safe version of a symbol or path (tracefs accepts ``[A-Za-z0-9_]``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def event_name(target: str) -> str:
    # The kernel caps event names at MAX_EVENT_NAME_LEN (64) including the NUL.
    return f"pybpf_{os.getpid()}_{next(_seq)}_{sanitize(target)}"[:63]


def _write(path: str, line: str) -> None:
    # O_APPEND: without it, opening the events file for writing clears every entry.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def create(kind: str, retprobe: bool, target: str, label: str, *, flavour: str = "") -> tuple[str, int]:
    """Add a probe event; returns (event name, tracepoint id).

    ``kind`` is ``kprobe`` or ``uprobe``; ``target`` is ``SYM[+offs]`` for
    kprobes, ``PATH:0xOFFSET`` for uprobes; ``label`` seeds the event name.
    """
    path = events_file(kind)
    name = event_name(label)
    line = f"{flavour or ('r' if retprobe else 'p')}:{GROUP}/{name} {target}\n"
    try:
        _write(path, line)
    except OSError as exc:
        detail = _error_log_tail()
        from pybpf.syscall import error_for

        raise error_for(exc.errno or errno.EINVAL, kind + "_events",
                        f"writing {line.strip()!r}" + (f": {detail}" if detail else "")) from None
    try:
        return name, tracepoint_id(GROUP, name)
    except Exception:
        remove(kind, name)
        raise


def remove(kind: str, name: str, group: str = GROUP) -> None:
    """Remove a probe event; a missing one is not an error."""
    try:
        _write(events_file(kind), f"-:{group}/{name}\n")
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOENT,):
            raise


def _error_log_tail() -> str:
    try:
        with open(os.path.join(tracefs_root(), "error_log")) as f:
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
        return " ".join(lines[-2:]) if lines else ""
    except OSError:
        return ""


def list_events(kind: str) -> list[str]:
    """The ``GROUP/EVENT`` names currently in ``kprobe_events``/``uprobe_events``."""
    try:
        with open(events_file(kind)) as f:
            text = f.read()
    except (NotSupported, OSError):
        return []
    out = []
    for line in text.splitlines():
        head = line.split(" ", 1)[0]
        if ":" in head:
            out.append(head.split(":", 1)[1])
    return out


def sweep_stale() -> list[str]:
    """Remove pybpf probe events whose creating pid is gone."""
    removed = []
    for kind in ("kprobe", "uprobe"):
        for full in list_events(kind):
            group, _, name = full.partition("/")
            m = _NAME_RE.match(name)
            if group not in (GROUP, "kprobes", "uprobes") or not m:
                continue
            pid = int(m.group(1))
            if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
                continue
            try:
                remove(kind, name, group)
                removed.append(full)
            except OSError:
                pass
    return removed
