"""Finding (or mounting) tracefs.

Tracepoint ids, event formats, ``trace_pipe`` and the legacy probe files all
live in tracefs.  Modern systems mount it at ``/sys/kernel/tracing``; older
ones only expose it through debugfs at ``/sys/kernel/debug/tracing``.
"""

from __future__ import annotations

import ctypes
import errno
import os

__all__ = ["TracefsError", "TRACEFS_PATHS", "find_tracefs", "tracefs_path", "read_file",
           "write_file", "tracepoint_id"]

TRACEFS_PATHS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

_found: str | None = None


class TracefsError(OSError):
    """tracefs is missing, or a tracefs file rejected what we asked."""


def _mounted_tracefs() -> str | None:
    try:
        with open("/proc/self/mounts") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "tracefs":
            return parts[1].replace("\\040", " ")
    for path in TRACEFS_PATHS:  # debugfs auto-mounts tracefs below itself
        if os.path.exists(os.path.join(path, "events")):
            return path
    return None


def _mount(target: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", target.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise TracefsError(
            err, f"tracefs is not mounted and 'mount -t tracefs nodev {target}' failed: "
                 f"{os.strerror(err)} (need root / CAP_SYS_ADMIN, and CONFIG_TRACING)")


def find_tracefs(*, mount: bool = True) -> str:
    """Return tracefs' mount point, mounting it at /sys/kernel/tracing if needed."""
    global _found
    if _found is not None and os.path.isdir(os.path.join(_found, "events")):
        return _found
    path = _mounted_tracefs()
    if path is None:
        if not mount:
            raise TracefsError(errno.ENOENT, "tracefs is not mounted (tried "
                               + ", ".join(TRACEFS_PATHS) + ")")
        target = TRACEFS_PATHS[0]
        if not os.path.isdir(target):
            raise TracefsError(errno.ENOENT, f"{target} does not exist: kernel without tracefs "
                                             "(CONFIG_TRACING=n)?")
        _mount(target)
        path = target
    _found = path
    return path


def tracefs_path(*parts: str) -> str:
    """Path of a file inside tracefs, e.g. ``tracefs_path("events", "sched")``."""
    return os.path.join(find_tracefs(), *parts)


def read_file(*parts: str) -> str:
    path = tracefs_path(*parts)
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise TracefsError(e.errno, f"reading {path}: {e.strerror}") from None


def _last_error_log() -> str:
    """Last entry of tracefs' ``error_log``, where the kernel explains a rejected write."""
    try:
        with open(tracefs_path("error_log")) as f:
            text = f.read().strip()
    except OSError:
        return ""
    entries = [e for e in text.split("\n[") if e.strip()]
    return entries[-1].strip() if entries else ""


def write_file(text: str, *parts: str, append: bool = True) -> None:
    """Write ``text`` to a tracefs control file, explaining failures.

    Control files such as ``kprobe_events`` parse each write as a command,
    so one write per command, and append mode so we do not truncate entries
    other tools created.
    """
    path = tracefs_path(*parts)
    flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise TracefsError(e.errno, f"opening {path}: {e.strerror}") from None
    try:
        os.write(fd, text.encode())
    except OSError as e:
        detail = _last_error_log()
        msg = f"writing {text.strip()!r} to {path}: {e.strerror}"
        if detail:
            msg += f" (error_log: {detail})"
        raise TracefsError(e.errno, msg) from None
    finally:
        os.close(fd)


def _check_names(category: str, name: str) -> None:
    for part in (category, name):
        if not part or "/" in part or part in (".", ".."):
            raise ValueError(f"invalid tracepoint name {category}:{name}")


def tracepoint_id(category: str, name: str) -> int:
    """The id perf_event_open(PERF_TYPE_TRACEPOINT) takes as ``config``."""
    _check_names(category, name)
    try:
        return int(read_file("events", category, name, "id"))
    except TracefsError as e:
        raise TracefsError(e.errno, f"tracepoint {category}:{name} not found "
                                    f"({e.strerror})") from None
