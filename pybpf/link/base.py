"""The one interface every attachment shares.

A :class:`Link` is an attached program: ``detach()`` (alias ``close()``)
undoes the attachment exactly once, ``with`` undoes it on leaving the block
(also on an exception), and a finalizer undoes it when the object is
garbage-collected. The undo steps live in a :class:`~pybpf.link.cleanup.Release`
registered with the process-wide cleanup registry, so exit and SIGINT/SIGTERM
undo it too.
"""

from __future__ import annotations

import weakref

from pybpf.syscall import FD

from . import _sys
from .cleanup import Release

__all__ = ["Link", "FDLink"]


class Link:
    """An attachment of a BPF program to a hook."""

    kind = "link"

    def __init__(self, description: str):
        self.description = description
        self._release = Release(description)
        self._finalizer = weakref.finalize(self, self._release)
        self._finalizer.atexit = False  # the cleanup registry's atexit hook runs it, in order

    def _on_detach(self, step) -> None:
        """Register an undo step (the last one registered runs first)."""
        self._release.add(step)

    def _own_fd(self, fd: FD) -> FD:
        """Hold ``fd`` until detach; closing it is the undo step."""
        self._on_detach(fd.close)
        return fd

    @property
    def attached(self) -> bool:
        return self._release.pending

    def detach(self) -> None:
        """Undo the attachment (idempotent)."""
        self._release()

    def close(self) -> None:
        self.detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<{type(self).__name__} {self.description} {state}>"


class FDLink(Link):
    """An attachment held by a kernel object fd: a bpf_link, or a perf event with a program.

    Closing the fd is what detaches, so such links also vanish when the
    process dies, even by SIGKILL.
    """

    def __init__(self, description: str, fd: FD, *, is_bpf_link: bool = True):
        super().__init__(description)
        self._fd = self._own_fd(fd)
        self.is_bpf_link = is_bpf_link

    @property
    def fd(self) -> int:
        return self._fd.fd

    def fileno(self) -> int:
        return self._fd.fd

    @property
    def id(self) -> int:
        """The kernel's link id (only for bpf_link-backed attachments)."""
        if not self.is_bpf_link:
            raise TypeError(f"{self.description} is a perf event attachment, not a bpf_link")
        return _sys.link_info(self.fd).id

    def info(self):
        """struct bpf_link_info head (type, id, prog_id)."""
        return _sys.link_info(self.fd)
