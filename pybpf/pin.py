"""Pinning: keep maps, programs and links alive in a bpf filesystem after the process exits.

A pinned object is a file on bpffs (normally ``/sys/fs/bpf``); opening it
(BPF_OBJ_GET) gives a new fd to the same kernel object. Relative paths are
taken relative to the bpffs mount point. The kind behind a pinned path is
checked before it is wrapped, so opening a program as a map is a clear error,
not a confusing EINVAL later.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from pybpf.syscall import map_cmds as cmds
from pybpf.syscall.attr_attach import LinkInfo
from pybpf.syscall.errors import BPFError, fd_kind
from pybpf.syscall.fd import FD, fd_of
from pybpf.syscall.prog_cmds import obj_get_info

__all__ = ["DEFAULT_BPFFS", "find_bpffs", "ensure_bpffs", "pin", "unpin", "open_pinned",
           "open_pinned_map", "open_pinned_fd", "object_kind", "PinnedObject", "PinError"]

DEFAULT_BPFFS = "/sys/fs/bpf"


class PinError(ValueError):
    """A pin path is not on a bpf filesystem, or holds the wrong kind of object."""


def find_bpffs() -> str | None:
    """The first mount point of a bpf filesystem, or None."""
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "bpf":
                return parts[1].replace("\\040", " ")
    return None


def ensure_bpffs(path: str = DEFAULT_BPFFS) -> str:
    """Return a bpffs mount point, mounting one at ``path`` if none is mounted
    (``mount -t bpf bpf /sys/fs/bpf``; needs CAP_SYS_ADMIN)."""
    found = find_bpffs()
    if found:
        return found
    os.makedirs(path, exist_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"bpf", os.fsencode(path), b"bpf", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        who = "" if os.geteuid() else "; run as root"  # root without CAP_SYS_ADMIN: no use
        raise OSError(err, f"mount -t bpf bpf {path}: {os.strerror(err)} (needs CAP_SYS_ADMIN{who})")
    return path


def _resolve(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isabs(path):
        path = os.path.join(ensure_bpffs(), path)
    return path


def pin(obj, path: str | os.PathLike) -> str:
    """Pin ``obj`` (a Map, loaded program, link, FD or fd int) at ``path``; returns the path.

    Parent directories on the bpf filesystem are created as needed.
    """
    path = _resolve(path)
    fd = fd_of(obj)
    # Checked first: the kernel's EPERM outside bpffs reads like a privilege problem, and the
    # parent directories below must not be created on another filesystem.
    if not _on_bpffs(path):
        if find_bpffs() is None:
            raise PinError(f"cannot pin at {path}: no bpf filesystem is mounted "
                           f"(mount -t bpf bpf {DEFAULT_BPFFS})")
        raise PinError(f"{path} is not on a bpf filesystem (pin under {find_bpffs()})")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    cmds.obj_pin(fd, path)
    return path


def unpin(path: str | os.PathLike) -> None:
    """Remove a pin (the object lives on while other references exist)."""
    path = _resolve(path)
    if not _on_bpffs(path):
        raise PinError(f"{path} is not on a bpf filesystem")
    os.unlink(path)


def _on_bpffs(path: str) -> bool:
    # statfs f_type is not exposed by os.statvfs; compare against the mount table instead.
    real = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        mounts = [p.split()[1] for p in f if len(p.split()) >= 3 and p.split()[2] == "bpf"]
    return any(real == m or real.startswith(m.rstrip("/") + "/") for m in mounts)


def object_kind(fd: int) -> str:
    """``"map"``, ``"prog"`` or ``"link"``: what kind of BPF object an fd refers to.

    The kernel names the anonymous inode behind every BPF fd (``anon_inode:bpf-map``);
    that is cheaper and more reliable than guessing from OBJ_GET_INFO_BY_FD sizes.
    """
    kind = fd_kind(fd)
    if kind is None or kind == "btf":
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        raise PinError(f"fd {fd} is not a BPF map, program or link ({target or 'unknown'})")
    return kind


@dataclass
class PinnedObject:
    """A pinned link opened by path: its kind, id and owned fd."""

    kind: str
    id: int
    fd_obj: FD
    path: str

    @property
    def fd(self) -> int:
        return self.fd_obj.fd

    def close(self) -> None:
        self.fd_obj.close()

    def __enter__(self) -> PinnedObject:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_pinned_fd(path: str | os.PathLike, kind: str | None = None) -> tuple[FD, str]:
    """Open a pin and return ``(fd, kind)``, checking the kind if one is expected."""
    path = _resolve(path)
    try:
        fd = cmds.obj_get(path)
    except BPFError as err:
        # BPF_OBJ_GET of a directory or an ordinary file is EACCES/EPERM: a wrong path, not
        # missing privileges.
        if err.errno in (errno.EACCES, errno.EPERM):
            noun = {"map": "map", "prog": "program", "link": "link"}.get(kind or "", "BPF object")
            if os.path.isdir(path):
                raise PinError(f"{path} is a directory, not a pinned {noun}: name a pinned "
                               f"object in it (ls {path})") from None
            if not _on_bpffs(path):
                raise PinError(f"{path}: not a pinned {noun}: it is not on a bpf filesystem "
                               f"(such as {find_bpffs() or DEFAULT_BPFFS})") from None
        raise
    try:
        found = object_kind(fd.fd)
        if kind is not None and found != kind:
            raise PinError(f"{path} holds a BPF {found}, not a {kind}")
    except BaseException:
        fd.close()
        raise
    return fd, found


def open_pinned_map(path: str | os.PathLike, spec=None):
    """Open the map pinned at ``path`` as a :class:`~pybpf.maps.Map`."""
    from pybpf.maps.map import Map
    fd, _ = open_pinned_fd(path, "map")
    return Map.from_fd(fd, spec)


def open_pinned(path: str | os.PathLike, kind: str | None = None):
    """Open whatever is pinned at ``path``: a :class:`~pybpf.maps.Map`, a
    :class:`~pybpf.program.Program`, or a :class:`PinnedObject` for links."""
    fd, found = open_pinned_fd(path, kind)
    if found == "map":
        from pybpf.maps.map import Map
        return Map.from_fd(fd)
    if found == "prog":
        from pybpf.program import Program
        return Program.from_fd(fd)
    info = obj_get_info(fd.fd, LinkInfo(), "link info")
    return PinnedObject("link", info.id, fd, os.fspath(path))
