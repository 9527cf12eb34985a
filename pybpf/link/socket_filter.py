"""Socket filters: ``setsockopt(SO_ATTACH_BPF)`` of a BPF_PROG_TYPE_SOCKET_FILTER program.

The program sees each packet queued to the socket; its return value is how
many bytes to keep (0 drops the packet). The attachment belongs to the
socket: it ends with ``SO_DETACH_BPF`` or when the socket is closed.
"""

from __future__ import annotations

import errno
import socket

from pybpf.program.types import ProgType
from pybpf.syscall import error_for

from .base import Link, prog_fd_of

__all__ = ["SocketFilterAttachment", "attach_socket_filter", "SO_ATTACH_BPF", "SO_DETACH_BPF"]

SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # = SO_DETACH_FILTER


class SocketFilterAttachment(Link):
    kind = "socket_filter"

    def __init__(self, description: str, sock: socket.socket):
        super().__init__(description)
        self.socket = sock


def attach_socket_filter(prog: object, sock: socket.socket | int) -> SocketFilterAttachment:
    """Attach ``prog`` to ``sock`` (a socket object or a raw fd)."""
    s = sock if isinstance(sock, socket.socket) else socket.socket(fileno=sock)
    borrowed = not isinstance(sock, socket.socket)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd_of(prog, ProgType.SOCKET_FILTER, hook="a socket filter"))
    except OSError as exc:
        if borrowed:
            s.detach()
        raise error_for(exc.errno or errno.EINVAL, "setsockopt(SO_ATTACH_BPF)",
                        f"attaching a socket filter to fd {s.fileno()}") from None
    att = SocketFilterAttachment(f"socket_filter fd {s.fileno()}", s)

    def remove() -> None:
        if s.fileno() < 0:
            return  # closed: the kernel dropped the filter with the socket
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBADF, errno.ENOTSOCK):
                raise
        finally:
            if borrowed:
                s.detach()  # give the fd back to its owner without closing it
    att._on_detach(remove)
    return att
