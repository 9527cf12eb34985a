"""The bpf(2) commands attachments use: LINK_CREATE, LINK_DETACH, RAW_TRACEPOINT_OPEN,
PROG_ATTACH/PROG_DETACH, and link enumeration.

Attr layouts are the ``union bpf_attr`` members of include/uapi/linux/bpf.h.
If ``pybpf.syscall.prog_cmds`` grows the same wrappers, these become thin
aliases; the link package needs only what is here.
"""

from __future__ import annotations

import ctypes
import enum
import errno
from ctypes import c_uint32, c_uint64
from typing import Iterator

from pybpf.syscall import FD, BPFError, Cmd, bpf
from pybpf.syscall.attr_map import BpfLinkInfoHead, GetIdAttr, InfoByFdAttr
from pybpf.syscall.errors import BadFD, KeyNotFound


class AttachType(enum.IntEnum):
    """enum bpf_attach_type (the values pybpf attaches with)."""

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    CGROUP_DEVICE = 6
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET_SOCK_RELEASE = 34
    XDP = 37
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    TCX_INGRESS = 46
    TCX_EGRESS = 47


class LinkType(enum.IntEnum):
    """enum bpf_link_type."""

    UNSPEC = 0
    RAW_TRACEPOINT = 1
    TRACING = 2
    CGROUP = 3
    ITER = 4
    NETNS = 5
    XDP = 6
    PERF_EVENT = 7
    KPROBE_MULTI = 8
    STRUCT_OPS = 9
    NETFILTER = 10
    TCX = 11
    UPROBE_MULTI = 12
    NETKIT = 13
    SOCKMAP = 14


# PROG_ATTACH flags
BPF_F_ALLOW_OVERRIDE = 1 << 0
BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2


class LinkCreateAttr(ctypes.Structure):
    """BPF_LINK_CREATE; the per-kind union is two u64 words.

    ``word0`` is ``target_btf_id`` (low half), ``perf_event.bpf_cookie``,
    ``tcx.relative_fd`` (low half); ``word1`` is ``tracing.cookie`` or
    ``tcx.expected_revision``.
    """

    _fields_ = [
        ("prog_fd", c_uint32),
        ("target_fd", c_uint32),  # also target_ifindex
        ("attach_type", c_uint32),
        ("flags", c_uint32),
        ("word0", c_uint64),
        ("word1", c_uint64),
    ]


class LinkDetachAttr(ctypes.Structure):
    _fields_ = [("link_fd", c_uint32)]


class RawTracepointAttr(ctypes.Structure):
    _fields_ = [("name", c_uint64), ("prog_fd", c_uint32), ("_pad", c_uint32), ("cookie", c_uint64)]


class ProgAttachAttr(ctypes.Structure):
    """BPF_PROG_ATTACH / BPF_PROG_DETACH."""

    _fields_ = [
        ("target_fd", c_uint32),
        ("attach_bpf_fd", c_uint32),
        ("attach_type", c_uint32),
        ("attach_flags", c_uint32),
        ("replace_bpf_fd", c_uint32),
        ("relative_fd", c_uint32),
        ("expected_revision", c_uint64),
    ]


def link_create(prog_fd: int, target_fd: int, attach_type: int, *, flags: int = 0,
                word0: int = 0, word1: int = 0, context: str = "") -> FD:
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=int(attach_type),
                          flags=flags, word0=word0, word1=word1)
    return FD(bpf(Cmd.LINK_CREATE, attr, context))


def link_detach(link_fd: int) -> None:
    bpf(Cmd.LINK_DETACH, LinkDetachAttr(link_fd=link_fd), "detaching link")


def raw_tracepoint_open(name: str | None, prog_fd: int, context: str = "") -> FD:
    buf = ctypes.create_string_buffer(name.encode()) if name else None
    attr = RawTracepointAttr(name=ctypes.addressof(buf) if buf is not None else 0, prog_fd=prog_fd)
    return FD(bpf(Cmd.RAW_TRACEPOINT_OPEN, attr, context))


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0,
                context: str = "") -> None:
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd,
                          attach_type=int(attach_type), attach_flags=flags)
    bpf(Cmd.PROG_ATTACH, attr, context)


def prog_detach(target_fd: int, prog_fd: int, attach_type: int, context: str = "") -> None:
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=int(attach_type))
    bpf(Cmd.PROG_DETACH, attr, context)


def link_info(fd: int) -> BpfLinkInfoHead:
    info = BpfLinkInfoHead()
    attr = InfoByFdAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, "link info")
    return info


def prog_id(prog_fd: int) -> int:
    """The kernel id of a loaded program (bpf_prog_info.id, at byte 4)."""
    info = (ctypes.c_uint32 * 2)()
    attr = InfoByFdAttr(bpf_fd=prog_fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, "program info")
    return info[1]


def link_ids() -> Iterator[int]:
    """Every bpf_link id in the system (LINK_GET_NEXT_ID enumeration)."""
    start = 0
    while True:
        attr = GetIdAttr(start_id=start)
        try:
            bpf(Cmd.LINK_GET_NEXT_ID, attr, errors={errno.ENOENT: KeyNotFound})
        except KeyNotFound:
            return
        start = attr.next_id
        yield start


def link_infos() -> Iterator[BpfLinkInfoHead]:
    """Info of every link still open (links that vanish meanwhile are skipped)."""
    for link_id in link_ids():
        attr = GetIdAttr(start_id=link_id)
        try:
            fd = FD(bpf(Cmd.LINK_GET_FD_BY_ID, attr, errors={errno.ENOENT: KeyNotFound}))
        except (KeyNotFound, BadFD):
            continue
        with fd:
            try:
                yield link_info(fd.fd)
            except BPFError:
                continue


def prog_fd_of(prog: object) -> int:
    """The raw fd of a program object, an :class:`FD`, or an int."""
    if isinstance(prog, int):
        return prog
    fd = getattr(prog, "fd", prog)
    if isinstance(fd, int):
        return fd
    if hasattr(fd, "fileno"):
        return fd.fileno()
    raise TypeError(f"expected a loaded program or an fd, got {type(prog).__name__}")
