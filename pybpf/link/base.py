"""The one interface every attachment shares.

A :class:`Link` is an attached program: ``detach()`` (alias ``close()``)
undoes the attachment exactly once, ``with`` undoes it on leaving the block
(also on an exception), and ``__del__`` undoes it when the object is
garbage-collected. The undo steps live in a :class:`~pybpf.link.cleanup.Release`
registered with the process-wide cleanup registry, so exit and SIGINT/SIGTERM
undo it too.
"""

from __future__ import annotations

import sys

from pybpf.program.types import ProgType
from pybpf.syscall import FD, BPFError, fd_of, prog_cmds
from pybpf.syscall.attr_prog import LinkCreateAttr
from pybpf.syscall.errors import WrongObjectKind, expect_kind, fd_kind
from pybpf.syscall.map_cmds import object_ids, open_objects

from .cleanup import Release

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Iterator

    from pybpf.syscall.attr_attach import LinkInfo

__all__ = ["Link", "FDLink", "link_ids", "link_infos"]


def prog_fd_of(prog: object, *types: ProgType, hook: str = "") -> int:
    """The raw fd of a program object, an :class:`FD`, or an int.

    With ``types``, anything else is refused here, before the attachment's
    first step, naming what was passed: the kernel answers these mistakes with
    a bare EINVAL (or, for XDP over netlink, an extack line) that does not say
    what is wrong. That is a program of another type (a bare fd's type is asked
    of the kernel), a map passed by mistake (which has a ``type`` too), or an fd
    that is no BPF program at all.
    """
    fd = fd_of(prog, "a loaded program")
    if not types:
        return fd
    hook = hook or "this hook"
    wanted = " or ".join(t.kernel_name for t in types)
    name = getattr(prog, "name", "") or "unnamed"
    kind = fd_kind(fd)
    if kind is None:
        expect_kind(fd, "prog", hook)  # raises: says what the fd is instead
    if kind != "prog":
        raise WrongObjectKind(f"{hook} takes a {wanted} program, not a BPF {kind} "
                              f"({name!r}, fd {fd})")
    ptype = getattr(prog, "type", None)
    if not isinstance(ptype, ProgType):  # a bare fd (or FD): the kernel knows its type
        info = prog_cmds.prog_info(fd)
        name = info.name.decode(errors="replace") or name
        try:
            ptype = ProgType(info.type)
        except ValueError:
            raise TypeError(f"{hook} takes a {wanted} program, not program type {info.type} "
                            f"({name!r})") from None
    if ptype not in types:
        raise TypeError(f"{hook} takes a {wanted} program, not {ptype.kernel_name} ({name!r})")
    return fd


def link_create(prog_fd: int, target_fd: int, attach_type: int, context: str, *, flags: int = 0,
                cookie: int = 0) -> FD:
    """BPF_LINK_CREATE as an owned fd; ``cookie`` is the perf_event link's bpf_cookie."""
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=int(attach_type),
                          flags=flags)
    attr.u.perf_event.bpf_cookie = cookie
    return FD(prog_cmds.link_create(attr, context))


def raw_tracepoint_open(name: str | None, prog_fd: int, context: str) -> FD:
    """BPF_RAW_TRACEPOINT_OPEN as an owned fd (``name`` None for BTF-typed programs)."""
    return FD(prog_cmds.raw_tracepoint_open(name, prog_fd, context=context))


def link_info(fd: int) -> LinkInfo:
    """struct bpf_link_info of a link fd (type, id, prog_id and the per-type part)."""
    from pybpf.syscall.attr_attach import LinkInfo  # not at import: start-up time (attr_attach)
    return prog_cmds.obj_get_info(fd, LinkInfo(), f"link info of fd {fd}")


def link_ids() -> Iterator[int]:
    """Every bpf_link id in the system (LINK_GET_NEXT_ID enumeration)."""
    return object_ids("link")


def link_infos() -> Iterator[LinkInfo]:
    """Info of every link still open (links that vanish meanwhile are skipped)."""
    for fd in open_objects("link"):
        try:
            info = link_info(fd.fd)
        except BPFError:
            continue
        yield info


class Link:
    """An attachment of a BPF program to a hook."""

    kind = "link"

    def __init__(self, description: str):
        self.description = description
        self._release = Release(description)

    def __del__(self, _finalizing=sys.is_finalizing) -> None:
        # Garbage-collected while attached: undo it. A __del__, not weakref.finalize:
        # importing weakref is start-up time every tool would pay. Nothing is done once
        # the interpreter is shutting down (as a finalize(atexit=False) would not):
        # the cleanup registry's atexit hook has undone every attachment in order by
        # then, and a forked child, whose registry dropped the parent's attachments,
        # must not undo them as its modules are torn down.
        release = getattr(self, "_release", None)  # None if a subclass __init__ failed first
        if release is not None and release.pending and not _finalizing():
            release()

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
        try:
            return self._fd.fd
        except ValueError:
            raise ValueError(f"use of detached {self.description}") from None

    def fileno(self) -> int:
        return self.fd

    @property
    def id(self) -> int:
        """The kernel's link id (only for bpf_link-backed attachments)."""
        if not self.is_bpf_link:
            raise TypeError(f"{self.description} is a perf event attachment, not a bpf_link")
        return link_info(self.fd).id

    def info(self):
        """struct bpf_link_info (type, id, prog_id, ...)."""
        return link_info(self.fd)
