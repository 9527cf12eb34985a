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


class TooBig(BPFError):
    """E2BIG: a size or count beyond a kernel limit, or an empty program.

    What it means depends on the command, so :func:`error_for` picks a
    subclass (:class:`MapFull`, :class:`IndexOutOfRange`) or a hint by command.
    """


class MapFull(TooBig):
    """The map has reached max_entries (E2BIG on an update of a hash-like map, queue or stack)."""


class IndexOutOfRange(TooBig, IndexError):
    """An array-like map was written at an index >= max_entries (E2BIG on update)."""

    def __str__(self) -> str:  # IndexError must not repr() the message
        return self.strerror or ""


class InvalidArgument(BPFError):
    """EINVAL: the kernel refused the attributes (wrong sizes, flags, types)."""


class BadFD(BPFError):
    """EBADF: an fd that is closed or of the wrong kind."""


class Busy(BPFError):
    """EBUSY: already attached, or the resource is in use."""


class ObjectNotFound(BPFError, FileNotFoundError):
    """No program, map or link with that id, or nothing pinned at that path (ENOENT from
    *_GET_FD_BY_ID or BPF_OBJ_GET); unlike :class:`KeyNotFound` this is not a missing map key."""


class WrongObjectKind(TypeError):
    """An fd refers to another kind of BPF object (a program where a map was wanted)."""


# The kernel names the anonymous inode behind each BPF fd; /proc/self/fd shows it.
# Older kernels call the link inode "bpf_link", newer ones "bpf-link".
_INODE_KINDS = {"anon_inode:bpf-map": "map", "anon_inode:bpf-prog": "prog",
                "anon_inode:bpf_link": "link", "anon_inode:bpf-link": "link",
                "anon_inode:btf": "btf"}
_KIND_WORDS = {"map": "a map", "prog": "a program", "link": "a link", "btf": "BTF"}


def fd_kind(fd: int) -> str | None:
    """``"map"``, ``"prog"``, ``"link"`` or ``"btf"``: the BPF object behind ``fd``, else None.

    One readlink: far cheaper than BPF_OBJ_GET_INFO_BY_FD, which happily fills a
    map's info struct from a program (garbage key sizes, then MemoryError).
    """
    try:
        return _INODE_KINDS.get(os.readlink(f"/proc/self/fd/{int(fd)}"))
    except OSError:
        return None


def expect_kind(fd: int, kind: str, what: str = "") -> None:
    """Raise :class:`WrongObjectKind` unless ``fd`` is a BPF object of ``kind``.

    The message says what the fd is instead: "fd 7 is a BPF prog, not a map".
    """
    found = fd_kind(fd)
    if found == kind:
        return
    prefix = f"{what}: " if what else ""
    if found is not None:
        raise WrongObjectKind(f"{prefix}fd {fd} is a BPF {found}, not {_KIND_WORDS[kind]}")
    try:
        target = os.readlink(f"/proc/self/fd/{int(fd)}")
    except OSError:
        raise WrongObjectKind(f"{prefix}fd {fd} is not open (wanted {_KIND_WORDS[kind]})") from None
    raise WrongObjectKind(f"{prefix}fd {fd} is not a BPF object but {target}, "
                          f"not {_KIND_WORDS[kind]}")


_BY_ERRNO: dict[int, type[BPFError]] = {
    _errno.EPERM: BPFPermissionError,
    _errno.EACCES: BPFPermissionError,
    _errno.ENOENT: KeyNotFound,
    _errno.EEXIST: KeyExists,
    _errno.E2BIG: TooBig,
    _errno.EINVAL: InvalidArgument,
    _errno.EBADF: BadFD,
    _errno.EBUSY: Busy,
    _errno.EOPNOTSUPP: NotSupported,
    ENOTSUPP: NotSupported,
}

PERMISSION_HINT = ("bpf(2) needs CAP_BPF (plus CAP_PERFMON for tracing, CAP_NET_ADMIN for networking "
                   "programs, or CAP_SYS_ADMIN on older kernels); run as root, e.g. with sudo")


# E2BIG by command: a full map only where an element is being added; elsewhere a limit.
_E2BIG_BY_COMMAND: dict[str, tuple[type[BPFError], str]] = {
    "BPF_MAP_UPDATE_ELEM": (MapFull, ""),
    "BPF_MAP_UPDATE_BATCH": (MapFull, ""),
    "BPF_PROG_LOAD": (TooBig, "the program is empty or has more instructions than the kernel "
                              "takes (4096 without CAP_BPF, 1M with it)"),
    "BPF_MAP_CREATE": (TooBig, "key_size, value_size or max_entries is over the kernel's limit "
                               "for this map type"),
    "BPF_BTF_LOAD": (TooBig, "the BTF blob or its log buffer is over the kernel's size limit"),
}


_CAP_SYS_ADMIN, _CAP_BPF = 21, 39


def effective_caps() -> int | None:
    """CapEff of this process as a bit mask, or None if /proc does not say: the one reader
    of it (the loader's, the tools' and the feature probes' hints all ask here)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


def permission_hint() -> str:
    """What to tell the user about an EPERM/EACCES, given who this process is.

    "Run as root" is advice only for a process that is not root; root without
    the capabilities, or with them and still refused, needs other words.
    """
    caps = effective_caps()
    if caps is not None and caps & (1 << _CAP_BPF | 1 << _CAP_SYS_ADMIN):
        return ("refused although this process has CAP_BPF or CAP_SYS_ADMIN: kernel lockdown, "
                "a seccomp or LSM policy, or file permissions refuse it")
    if os.geteuid() == 0:
        return ("bpf(2) needs CAP_BPF (plus CAP_PERFMON for tracing, CAP_NET_ADMIN for networking "
                "programs, or CAP_SYS_ADMIN on older kernels); this process runs as root but "
                "without those capabilities (dropped, or in a user namespace)")
    return PERMISSION_HINT


def error_for(err: int, command: str = "", context: str = "", *, cls: type[BPFError] | None = None,
              hint: str = "") -> BPFError:
    """Build the typed exception for ``err``; ``cls`` overrides the errno-based choice."""
    kind = cls
    if kind is None and err == _errno.E2BIG and command in _E2BIG_BY_COMMAND:
        kind, default_hint = _E2BIG_BY_COMMAND[command]
        hint = hint or default_hint
    kind = kind or _BY_ERRNO.get(err, BPFError)
    if kind is BPFPermissionError and not hint:
        hint = permission_hint()
    return kind(err, command, context, hint)
