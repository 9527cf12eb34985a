"""Reading ``trace_pipe``: where bpf_trace_printk() and trace_marker text go.

Lines look like (the default ``context-info`` and ``irq-info`` options)::

           <...>-1234    [001] d..31  5678.123456: bpf_trace_printk: hello
     python3 x-77    (   77) [000] ..... 5678.123457: tracing_mark_write: hi

:func:`parse_trace_line` splits them into the same parts as BCC's
``trace_fields`` (task, pid, cpu, flags, timestamp, message), plus the event
name.  :class:`TracePipe` reads with a timeout, so a tool can poll it without
hanging when nothing is traced.
"""

from __future__ import annotations

import errno
import os
import re
import select
import time
import weakref

from pybpf._record import Record

from .mount import TracefsError, tracefs_path

__all__ = ["TraceLine", "TraceParseError", "parse_trace_line", "TracePipe", "Instance",
           "sweep_stale_instances"]

_LINE_RE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*(?P<tgid>[\d-]+)\)\s+)?"
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\[\]]{4,6})\s+)?"
    r"(?P<ts>\d+\.\d+):\s+"
    r"(?P<rest>.*)$")


class TraceParseError(ValueError):
    """A trace_pipe line is not in the ``task-pid [cpu] flags ts: msg`` format."""


class TraceLine(Record):
    """One parsed trace_pipe line (a record, not a dataclass: see pybpf._record)."""

    __slots__ = ("task", "pid", "cpu", "flags", "timestamp", "event", "message", "tgid")
    task: str
    pid: int
    cpu: int
    flags: str
    timestamp: float
    event: str
    message: str
    tgid: int | None

    def __init__(self, task: str, pid: int, cpu: int, flags: str, timestamp: float, event: str,
                 message: str, tgid: int | None = None) -> None:
        self._assign(task=task, pid=pid, cpu=cpu, flags=flags, timestamp=timestamp,
                     event=event, message=message, tgid=tgid)

    def __iter__(self):
        """Unpacks like BCC's ``(task, pid, cpu, flags, ts, msg)``."""
        return iter((self.task, self.pid, self.cpu, self.flags, self.timestamp, self.message))


def parse_trace_line(line: str) -> TraceLine:
    m = _LINE_RE.match(line.rstrip("\n"))
    if m is None:
        raise TraceParseError(f"not a trace_pipe event line: {line.rstrip()!r}")
    rest = m.group("rest")
    event, sep, message = rest.partition(": ")
    if not sep or " " in event:
        event, message = "", rest
    tgid = m.group("tgid")
    return TraceLine(
        task=m.group("task"), pid=int(m.group("pid")), cpu=int(m.group("cpu")),
        flags=m.group("flags") or "", timestamp=float(m.group("ts")), event=event,
        message=message, tgid=int(tgid) if tgid and tgid.strip("-") else None)


class TracePipe:
    """Non-blocking line reader over ``trace_pipe`` (of the top level or an instance).

    Reading trace_pipe consumes events for every reader; use an
    :class:`Instance` to get a private buffer when that matters.
    """

    def __init__(self, instance: "Instance | str | None" = None) -> None:
        parts = ("trace_pipe",)
        if instance is not None:
            parts = ("instances", str(instance), "trace_pipe")
        self.path = tracefs_path(*parts)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise TracefsError(e.errno, f"opening {self.path}: {e.strerror}") from None
        self._buf = b""

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("TracePipe is closed")
        return self._fd

    def readline(self, timeout: float | None = None) -> str | None:
        """Next full line, or None once ``timeout`` seconds pass without one.

        ``timeout=None`` waits forever; ``0`` only returns what is buffered.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.fileno(), select.POLLIN)
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1:]
                return line.decode(errors="replace")
            if deadline is None:
                wait_ms = None
            else:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if poller.poll(wait_ms):
                try:
                    chunk = os.read(self._fd, 65536)
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EINTR):
                        raise
                    chunk = None
                if chunk:
                    self._buf += chunk
                    continue
                if chunk is None and wait_ms == 0:
                    return None
                # trace_pipe can report readable with nothing to read; do not spin.
                time.sleep(0.01)
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def read_fields(self, timeout: float | None = None) -> TraceLine | None:
        """Next parsed event line (skipping e.g. ``CPU:1 [LOST 3 EVENTS]``), or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            line = self.readline(left)
            if line is None:
                return None
            try:
                return parse_trace_line(line)
            except TraceParseError:
                continue

    trace_fields = read_fields  # BCC's name

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "TracePipe":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            os.close(fd)


def _rmdir_quietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def sweep_stale_instances(prefix: str = "pybpf_") -> list[str]:
    """Remove tracing instances ``<prefix><pid>_...`` whose process no longer exists.

    An :class:`Instance` removes itself on close (or when collected), but a
    process killed with SIGKILL does neither: its instance stays, with the
    events it enabled still filling its buffer. The default name carries the
    creator's pid, so the next user can tell. A pid that was reused keeps its
    instance until that process is gone too. Returns the removed names.
    """
    try:
        names = os.listdir(tracefs_path("instances"))
    except OSError:
        return []
    removed = []
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].partition("_")[0]
        if not (pid.isascii() and pid.isdigit()) or int(pid) == os.getpid() \
                or os.path.exists(f"/proc/{int(pid)}"):
            continue
        try:
            os.rmdir(tracefs_path("instances", name))  # the kernel disables its events first
        except OSError:  # gone already, or still open somewhere (EBUSY)
            continue
        removed.append(name)
    return removed


class Instance:
    """A private tracing instance (``instances/<name>``): own buffer, trace_pipe
    and trace_marker, so concurrent tools do not steal each other's lines.
    Removed on close."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"pybpf_{os.getpid()}_{id(self):x}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name) or self.name in (".", ".."):
            raise ValueError(f"invalid tracing instance name {self.name!r}")
        self.path = tracefs_path("instances", self.name)
        try:
            os.mkdir(self.path)
        except OSError as e:
            raise TracefsError(e.errno, f"creating tracing instance {self.path}: "
                                        f"{e.strerror}") from None
        self._open = True
        # Tracing instances outlive the process: remove ours even if close() is forgotten.
        self._finalizer = weakref.finalize(self, _rmdir_quietly, self.path)

    def __str__(self) -> str:
        return self.name

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def mark(self, text: str) -> None:
        """Write ``text`` to this instance's ``trace_marker``."""
        with open(self.file("trace_marker"), "w") as f:
            f.write(text)

    def pipe(self) -> TracePipe:
        return TracePipe(self)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._finalizer.detach()
            try:
                os.rmdir(self.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise TracefsError(e.errno, f"removing tracing instance {self.path}: "
                                            f"{e.strerror} (still in use?)") from None

    def __enter__(self) -> "Instance":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
