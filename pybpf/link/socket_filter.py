"""Socket filters: ``setsockopt(SO_ATTACH_BPF)`` of a BPF_PROG_TYPE_SOCKET_FILTER program.

The program sees each packet queued to the socket; its return value is how
many bytes to keep (0 drops the packet). The attachment belongs to the
socket: it ends with ``SO_DETACH_BPF`` or when the socket is closed.
"""

from __future__ import annotations

import errno
import os
import socket

from pybpf.program.types import ProgType
from pybpf.syscall import error_for

from .base import Link, prog_fd_of

__all__ = ["SocketFilterAttachment", "attach_socket_filter", "SO_ATTACH_BPF", "SO_DETACH_BPF"]

SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # = SO_DETACH_FILTER


class SocketFilterAttachment(Link):
    kind = "socket_filter"

    def __init__(self, description: str, sock: socket.socket | int):
        super().__init__(description)
        self.socket = sock  # the caller's socket object, or its raw fd


def _setsockopt(sock: socket.socket | int, option: int, value: int) -> None:
    """``setsockopt(SOL_SOCKET, option, value)`` on a socket object or a raw fd.

    A raw fd is wrapped in a socket object only for the call and handed back
    unclosed: the fd is the caller's.
    """
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, option, value)
        return
    s = socket.socket(fileno=sock)
    try:
        s.setsockopt(socket.SOL_SOCKET, option, value)
    finally:
        s.detach()


def _identity(fd: int) -> tuple[int, int] | None:
    """What file ``fd`` refers to now (device, inode), or None if it is closed."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def attach_socket_filter(prog: object, sock: socket.socket | int) -> SocketFilterAttachment:
    """Attach ``prog`` to ``sock`` (a socket object or a raw fd, which stays the caller's).

    Detaching undoes it on that same socket only: once the caller has closed
    it, the kernel has dropped the filter with it, and a raw fd number that
    now names another file is left alone.
    """
    prog_fd = prog_fd_of(prog, ProgType.SOCKET_FILTER, hook="a socket filter")
    fd = sock.fileno() if isinstance(sock, socket.socket) else sock
    if not isinstance(fd, int) or isinstance(fd, bool) or fd < 0:
        raise TypeError(f"attach_socket_filter: expected a socket or an open fd, got {sock!r}")
    try:
        _setsockopt(sock, SO_ATTACH_BPF, prog_fd)
    except OSError as exc:
        raise error_for(exc.errno or errno.EINVAL, "setsockopt(SO_ATTACH_BPF)",
                        f"attaching a socket filter to fd {fd}") from None
    att = SocketFilterAttachment(f"socket_filter fd {fd}", sock)
    attached_to = _identity(fd)

    def remove() -> None:
        if isinstance(sock, socket.socket):
            if sock.fileno() < 0:
                return  # closed: the kernel dropped the filter with the socket
        elif _identity(fd) != attached_to:
            return  # closed, and the number perhaps reused: not ours to touch
        try:
            _setsockopt(sock, SO_DETACH_BPF, 0)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBADF, errno.ENOTSOCK):
                raise
    att._on_detach(remove)
    return att
