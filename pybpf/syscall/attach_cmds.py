"""bpf(2) commands on attachments: BPF_PROG_ATTACH/DETACH, BPF_PROG_QUERY,
BPF_LINK_UPDATE/DETACH, BPF_RAW_TRACEPOINT_OPEN and link info.

Apart from :mod:`pybpf.syscall.prog_cmds` (loading, BPF_LINK_CREATE) so that a
tool's start-up does not build these commands' ctypes layouts
(:mod:`pybpf.syscall.attr_attach`); ``prog_cmds.link_info`` and the others
still resolve here.
"""

from __future__ import annotations

import ctypes
import errno

from .attr_attach import (LinkDetachAttr, LinkInfo, LinkUpdateAttr, ProgAttachAttr, ProgQueryAttr,
                          RawTracepointOpenAttr)
from .bpf import Cmd, bpf
from .errors import BPFError, ObjectNotFound
from .prog_cmds import obj_get_info

TYPE_CHECKING = False  # typing is not imported at run time: see pybpf._record
if TYPE_CHECKING:
    from .prog_results import QueryResult

__all__ = ["link_info", "prog_attach", "prog_detach", "prog_query", "link_update", "link_detach",
           "raw_tracepoint_open"]


def link_info(fd: int) -> tuple[LinkInfo, str]:
    """struct bpf_link_info, and the tracepoint name for raw_tracepoint links."""
    info = obj_get_info(fd, LinkInfo(), f"link info of fd {fd}")
    name = ""
    if info.type == 1:  # BPF_LINK_TYPE_RAW_TRACEPOINT: second call to fetch the name
        size = info.u.raw_tracepoint.tp_name_len or 1
        buf = ctypes.create_string_buffer(size)
        again = LinkInfo()
        again.u.raw_tracepoint.tp_name = ctypes.addressof(buf)
        again.u.raw_tracepoint.tp_name_len = size
        info = obj_get_info(fd, again, f"link info of fd {fd}")
        name = buf.value.decode(errors="replace")
    return info, name


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0, *,
                replace_prog_fd: int = 0, relative_fd: int = 0, expected_revision: int = 0,
                context: str = "") -> None:
    """BPF_PROG_ATTACH (cgroups, sockmaps, flow dissector, lirc, legacy tcx/mprog)."""
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                          attach_flags=flags, replace_bpf_fd=replace_prog_fd,
                          relative_fd=relative_fd, expected_revision=expected_revision)
    bpf(Cmd.PROG_ATTACH, attr, context)


def prog_detach(target_fd: int, attach_type: int, prog_fd: int = 0, *, flags: int = 0,
                relative_fd: int = 0, expected_revision: int = 0, context: str = "") -> None:
    """BPF_PROG_DETACH."""
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                          attach_flags=flags, relative_fd=relative_fd,
                          expected_revision=expected_revision)
    bpf(Cmd.PROG_DETACH, attr, context)


def prog_query(target_fd: int, attach_type: int, query_flags: int = 0, *, max_progs: int = 64,
               context: str = "") -> QueryResult:
    """BPF_PROG_QUERY: the programs (and links, for mprog hooks) attached at a hook."""
    ids = (ctypes.c_uint32 * max_progs)()
    flags = (ctypes.c_uint32 * max_progs)()
    links = (ctypes.c_uint32 * max_progs)()
    attr = ProgQueryAttr(target_fd=target_fd, attach_type=attach_type, query_flags=query_flags,
                         prog_ids=ctypes.addressof(ids), prog_cnt=max_progs,
                         prog_attach_flags=ctypes.addressof(flags))
    try:
        bpf(Cmd.PROG_QUERY, attr, context)
    except BPFError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return prog_query(target_fd, attach_type, query_flags, max_progs=attr.prog_cnt, context=context)
    from .prog_results import QueryResult

    n = attr.prog_cnt
    # link_ids are reported only for mprog hooks (tcx, netkit); ask again with the array.
    link_list: tuple[int, ...] = ()
    if n:
        attr2 = ProgQueryAttr(target_fd=target_fd, attach_type=attach_type, query_flags=query_flags,
                              prog_ids=ctypes.addressof(ids), prog_cnt=max_progs,
                              link_ids=ctypes.addressof(links))
        try:
            bpf(Cmd.PROG_QUERY, attr2, context)
            link_list = tuple(links[:n])
        except BPFError:
            link_list = ()
    return QueryResult(attr.attach_flags, tuple(ids[:n]), tuple(flags[:n]), link_list, attr.revision)


def link_update(link_fd: int, new_prog_fd: int, *, old_prog_fd: int = 0, flags: int = 0,
                context: str = "") -> None:
    """BPF_LINK_UPDATE: swap the program behind a link (BPF_F_REPLACE checks ``old_prog_fd``)."""
    bpf(Cmd.LINK_UPDATE, LinkUpdateAttr(link_fd=link_fd, new_prog_fd=new_prog_fd, flags=flags,
                                        old_prog_fd=old_prog_fd), context)


def link_detach(link_fd: int, context: str = "") -> None:
    """BPF_LINK_DETACH: detach the link from its hook while the fd stays open (link defunct)."""
    bpf(Cmd.LINK_DETACH, LinkDetachAttr(link_fd=link_fd), context)


def raw_tracepoint_open(name: str | None, prog_fd: int, cookie: int = 0, context: str = "") -> int:
    """BPF_RAW_TRACEPOINT_OPEN; ``name`` None for tp_btf/fentry-style programs. Returns the link fd."""
    buf = ctypes.create_string_buffer(name.encode()) if name else None
    attr = RawTracepointOpenAttr(name=ctypes.addressof(buf) if buf is not None else 0,
                                 prog_fd=prog_fd, cookie=cookie)
    # ENOENT here means "no such tracepoint", not a missing map key.
    return bpf(Cmd.RAW_TRACEPOINT_OPEN, attr, context or (f"raw tracepoint {name!r}" if name else ""),
               errors={errno.ENOENT: ObjectNotFound})

