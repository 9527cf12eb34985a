"""Typed errors for bpf(2) and friends.

errno values become a small hierarchy under :class:`BPFError` so that callers
test the kind (``except KeyNotFound``) while users read the details (the
command, the errno name, what was being done). Where Python users expect a
built-in exception (a missing map key), the class also derives from it.
"""

from __future__ import annotations

import errno as _errno
import os

ENOTSUPP = 524  # kernel-internal "not supported", leaks to user space from some paths


class BPFError(OSError):
    """A bpf(2) (or perf_event_open, netlink) call failed.

    ``command`` names the call (``"BPF_MAP_CREATE"``), ``context`` says what
    pybpf was doing, ``errno`` is the raw value.
    """

    def __init__(self, err: int, command: str = "", context: str = "", hint: str = ""):
        self.command = command
        self.context = context
        self.hint = hint
        name = _errno.errorcode.get(err, "ENOTSUPP" if err == ENOTSUPP else str(err))
        text = os.strerror(err) if err != ENOTSUPP else "Operation not supported"
        parts = [f"{command}: " if command else "", f"{name} ({text})"]
        if context:
            parts.append(f": {context}")
        if hint:
            parts.append(f". {hint}")
        super().__init__(err, "".join(parts))

    def __str__(self) -> str:  # OSError's default adds "[Errno N]" noise
        return self.strerror or ""


class NotSupported(BPFError):
    """The running kernel lacks what was asked for (program/map type, helper, attach kind)."""


class BPFPermissionError(BPFError, PermissionError):
    """Missing privileges (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN) or lockdown."""


class KeyNotFound(BPFError, KeyError):
    """The map has no such key (ENOENT from a lookup, delete or get-next-key)."""

    def __str__(self) -> str:
        return self.strerror or ""


class KeyExists(BPFError):
    """BPF_NOEXIST update of a key that is already present (EEXIST)."""


class MapFull(BPFError):
    """The map has reached max_entries (E2BIG on update)."""


class InvalidArgument(BPFError):
    """EINVAL: the kernel refused the attributes (wrong sizes, flags, types)."""


class BadFD(BPFError):
    """EBADF: an fd that is closed or of the wrong kind."""


class Busy(BPFError):
    """EBUSY: already attached, or the resource is in use."""


class ObjectNotFound(BPFError, FileNotFoundError):
    """No program, map or link with that id, or nothing pinned at that path (ENOENT from
    *_GET_FD_BY_ID or BPF_OBJ_GET); unlike :class:`KeyNotFound` this is not a missing map key."""


_BY_ERRNO: dict[int, type[BPFError]] = {
    _errno.EPERM: BPFPermissionError,
    _errno.EACCES: BPFPermissionError,
    _errno.ENOENT: KeyNotFound,
    _errno.EEXIST: KeyExists,
    _errno.E2BIG: MapFull,
    _errno.EINVAL: InvalidArgument,
    _errno.EBADF: BadFD,
    _errno.EBUSY: Busy,
    _errno.EOPNOTSUPP: NotSupported,
    ENOTSUPP: NotSupported,
}

PERMISSION_HINT = ("bpf(2) needs CAP_BPF (plus CAP_PERFMON for tracing, CAP_NET_ADMIN for networking "
                   "programs, or CAP_SYS_ADMIN on older kernels); run as root, e.g. with sudo")


def error_for(err: int, command: str = "", context: str = "", *, cls: type[BPFError] | None = None,
              hint: str = "") -> BPFError:
    """Build the typed exception for ``err``; ``cls`` overrides the errno-based choice."""
    kind = cls or _BY_ERRNO.get(err, BPFError)
    if kind is BPFPermissionError and not hint:
        hint = PERMISSION_HINT
    return kind(err, command, context, hint)
