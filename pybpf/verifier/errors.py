"""The simulator's verdict exception: the kernel's reason text and the slot index."""

from __future__ import annotations

__all__ = ["Reject"]


class Reject(Exception):
    """Raised inside the checker when the kernel would refuse the program.

    ``message`` holds the kernel's line(s) (the last line is the reason the
    kernel's log ends with); ``insn`` is the slot index being checked.
    """

    UNSUPPORTED = -1  # errno for "not modelled": verify() raises NotImplementedError

    def __init__(self, message: str, insn: int | None = None, errno: int = 13):
        super().__init__(message)
        self.message = message
        self.insn = insn
        self.errno = errno
