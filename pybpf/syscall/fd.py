"""File descriptors as owned objects.

Every fd pybpf obtains is wrapped in an :class:`FD` that closes it exactly
once: explicitly, through a ``with`` block, or from ``__del__`` when the
owner is garbage-collected, so no code path leaks descriptors.
"""

from __future__ import annotations

import os

__all__ = ["FD", "fd_of"]


class FD:
    """An owned file descriptor."""

    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd: int):
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd

    def __del__(self, _close=os.close) -> None:
        # Garbage-collected while still owning the fd. A __del__, not weakref.finalize:
        # importing weakref is start-up time every tool would pay. os.close is bound
        # at definition, as module globals may already be gone at interpreter exit.
        fd = getattr(self, "_fd", -1)  # -1 also if __init__ refused the fd
        if fd >= 0:
            self._fd = -1
            _close(fd)

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError("use of closed file descriptor")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def __int__(self) -> int:
        return self.fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def detach(self) -> int:
        """Give up ownership and return the raw fd (the caller must close it)."""
        fd = self.fd
        self._fd = -1
        return fd

    def dup(self) -> "FD":
        return FD(os.dup(self.fd))

    def __enter__(self) -> "FD":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FD({self._fd})" if self._fd >= 0 else "FD(closed)"


def fd_of(obj: object, what: str = "a BPF object") -> int:
    """The raw fd behind ``obj``: an int, an :class:`FD`, or anything with an ``fd``
    attribute holding either (a Map, a Program, a link).

    Every layer that hands an fd to the kernel accepts all three, so the
    unwrapping lives here once; a closed :class:`FD` raises ``ValueError``
    ("use of closed file descriptor") rather than passing -1 to the kernel.
    """
    if isinstance(obj, int):
        return obj
    fd = getattr(obj, "fd", obj)
    if isinstance(fd, int):
        return fd
    if hasattr(fd, "fileno"):
        return fd.fileno()
    raise TypeError(f"expected {what} or an fd, got {type(obj).__name__}")
