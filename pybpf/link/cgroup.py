"""cgroup programs (skb, sock, sock_addr, sockopt, sysctl, device) on a cgroup v2 directory.

``BPF_LINK_CREATE`` (5.7+) gives a bpf_link that goes away with its fd and
always allows several programs per hook. ``BPF_PROG_ATTACH`` with
``BPF_F_ALLOW_MULTI`` is the older way; that attachment outlives the
process, so it is registered for cleanup and undone with ``BPF_PROG_DETACH``.
"""

from __future__ import annotations

import os

from pybpf.program.types import AttachType, ProgType
from pybpf.syscall import FD, AttachFlags, InvalidArgument, NotSupported, prog_cmds

from .base import FDLink, Link, link_create, prog_fd_of

__all__ = ["CgroupLink", "CgroupAttachment", "attach_cgroup", "CGROUP_ATTACH_TYPES"]

CGROUP_ATTACH_TYPES = {
    "ingress": AttachType.CGROUP_INET_INGRESS,
    "egress": AttachType.CGROUP_INET_EGRESS,
    "sock_create": AttachType.CGROUP_INET_SOCK_CREATE,
    "sock_release": AttachType.CGROUP_INET_SOCK_RELEASE,
    "sock_ops": AttachType.CGROUP_SOCK_OPS,
    "device": AttachType.CGROUP_DEVICE,
    "bind4": AttachType.CGROUP_INET4_BIND,
    "bind6": AttachType.CGROUP_INET6_BIND,
    "connect4": AttachType.CGROUP_INET4_CONNECT,
    "connect6": AttachType.CGROUP_INET6_CONNECT,
    "post_bind4": AttachType.CGROUP_INET4_POST_BIND,
    "post_bind6": AttachType.CGROUP_INET6_POST_BIND,
    "sendmsg4": AttachType.CGROUP_UDP4_SENDMSG,
    "sendmsg6": AttachType.CGROUP_UDP6_SENDMSG,
    "recvmsg4": AttachType.CGROUP_UDP4_RECVMSG,
    "recvmsg6": AttachType.CGROUP_UDP6_RECVMSG,
    "sysctl": AttachType.CGROUP_SYSCTL,
    "getsockopt": AttachType.CGROUP_GETSOCKOPT,
    "setsockopt": AttachType.CGROUP_SETSOCKOPT,
}

_A = AttachType
# Which program type each cgroup hook runs (the kernel's attach_type_to_prog_type).
_PROG_TYPES = {
    **dict.fromkeys((_A.CGROUP_INET_INGRESS, _A.CGROUP_INET_EGRESS), ProgType.CGROUP_SKB),
    **dict.fromkeys((_A.CGROUP_INET_SOCK_CREATE, _A.CGROUP_INET_SOCK_RELEASE,
                     _A.CGROUP_INET4_POST_BIND, _A.CGROUP_INET6_POST_BIND), ProgType.CGROUP_SOCK),
    **dict.fromkeys((_A.CGROUP_INET4_BIND, _A.CGROUP_INET6_BIND, _A.CGROUP_INET4_CONNECT,
                     _A.CGROUP_INET6_CONNECT, _A.CGROUP_UDP4_SENDMSG, _A.CGROUP_UDP6_SENDMSG,
                     _A.CGROUP_UDP4_RECVMSG, _A.CGROUP_UDP6_RECVMSG,
                     _A.CGROUP_INET4_GETPEERNAME, _A.CGROUP_INET6_GETPEERNAME,
                     _A.CGROUP_INET4_GETSOCKNAME, _A.CGROUP_INET6_GETSOCKNAME,
                     _A.CGROUP_UNIX_CONNECT, _A.CGROUP_UNIX_SENDMSG, _A.CGROUP_UNIX_RECVMSG,
                     _A.CGROUP_UNIX_GETPEERNAME, _A.CGROUP_UNIX_GETSOCKNAME),
                    ProgType.CGROUP_SOCK_ADDR),
    _A.CGROUP_SOCK_OPS: ProgType.SOCK_OPS,
    _A.CGROUP_DEVICE: ProgType.CGROUP_DEVICE,
    _A.CGROUP_SYSCTL: ProgType.CGROUP_SYSCTL,
    **dict.fromkeys((_A.CGROUP_GETSOCKOPT, _A.CGROUP_SETSOCKOPT), ProgType.CGROUP_SOCKOPT),
    _A.LSM_CGROUP: ProgType.LSM,
}


class CgroupLink(FDLink):
    kind = "cgroup"


class CgroupAttachment(Link):
    """A BPF_PROG_ATTACH attachment, undone with BPF_PROG_DETACH."""

    kind = "cgroup"


def _attach_type(kind: "str | int") -> AttachType:
    if isinstance(kind, str):
        try:
            return CGROUP_ATTACH_TYPES[kind]
        except KeyError:
            raise ValueError(f"cgroup attach type {kind!r}: expected one of "
                             f"{', '.join(CGROUP_ATTACH_TYPES)}") from None
    return AttachType(kind)


def attach_cgroup(prog: object, cgroup: str, attach_type: "str | int", *, method: str = "auto",
                  flags: int = AttachFlags.ALLOW_MULTI) -> Link:
    """Attach ``prog`` to the cgroup v2 directory ``cgroup`` at ``attach_type``.

    ``attach_type`` is a name (``"egress"``, ``"ingress"``, ``"sock_create"``, ...)
    or an :class:`~pybpf.program.types.AttachType`. ``method`` is ``"link"``,
    ``"attach"`` (PROG_ATTACH with ``flags``) or ``"auto"``.
    """
    at = _attach_type(attach_type)
    if method not in ("auto", "link", "attach"):
        raise ValueError(f"cgroup method {method!r}: expected auto, link or attach")
    desc = f"cgroup {at.name.lower()} {cgroup}"
    wanted = _PROG_TYPES.get(at)
    # Checked before the cgroup is opened: the kernel would only say EINVAL.
    prog_fd = prog_fd_of(prog, *((wanted,) if wanted is not None else ()), hook=desc)
    try:
        cg = FD(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    except FileNotFoundError:
        raise FileNotFoundError(f"cgroup directory {cgroup!r} does not exist (cgroup v2 is usually "
                                "mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified)") from None
    with cg:
        if method in ("auto", "link"):
            try:
                return CgroupLink(desc, link_create(prog_fd, cg.fd, at, desc))
            except (InvalidArgument, NotSupported):
                if method == "link":
                    raise
        prog_cmds.prog_attach(cg.fd, prog_fd, at, flags, context=desc)
        att = CgroupAttachment(desc + " [prog_attach]")
        keep_cg, keep_prog = cg.dup(), FD(os.dup(prog_fd))
        att._on_detach(keep_cg.close)
        att._on_detach(keep_prog.close)
        att._on_detach(lambda: prog_cmds.prog_detach(keep_cg.fd, at, keep_prog.fd,
                                                                context=desc))
        return att
