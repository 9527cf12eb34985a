"""rtnetlink access through pyroute2, kept in one place.

A netlink socket is bound to the network namespace it was opened in, so an
attachment keeps the socket it attached with: detaching then works from a
signal handler or atexit even if the thread has moved to another namespace.
"""

from __future__ import annotations

import errno
import socket

from pybpf.syscall import BPFError, error_for

__all__ = ["ifindex", "open_route", "netlink_error"]


def ifindex(interface: str | int) -> int:
    """An interface index from a name or index (in the current network namespace)."""
    if isinstance(interface, int):
        return interface
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise error_for(errno.ENODEV, "if_nametoindex", f"no network interface {interface!r} "
                        "in this network namespace") from None


def open_route():
    from pyroute2 import IPRoute

    return IPRoute()


def netlink_error(exc: Exception, command: str, context: str) -> BPFError:
    code = getattr(exc, "code", None) or errno.EINVAL
    return error_for(code, command, f"{context}: {exc}")
