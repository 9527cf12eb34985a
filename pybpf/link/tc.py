"""TC (sched_cls) programs on an interface's ingress or egress.

Linux 6.6+ has tcx: ``BPF_LINK_CREATE`` with ``BPF_TCX_INGRESS`` /
``BPF_TCX_EGRESS`` gives a bpf_link, no qdisc needed, gone with the fd.
Before that (or with ``method="netlink"``), the iproute2 way: a ``clsact``
qdisc and a ``bpf`` filter in direct-action mode (the program's return
value is the verdict: TC_ACT_OK, TC_ACT_SHOT, ...). The filter, and the
qdisc when we created it, stay until removed, so they are registered for
cleanup.
"""

from __future__ import annotations

import errno

from pybpf.program.types import AttachType, ProgType
from pybpf.syscall import InvalidArgument, NotSupported

from . import _netlink
from .base import FDLink, Link, link_create, prog_fd_of

__all__ = ["TCXLink", "TCFilterAttachment", "attach_tc", "tc_filters", "TC_ACT_OK", "TC_ACT_SHOT"]

TC_ACT_UNSPEC, TC_ACT_OK, TC_ACT_RECLASSIFY, TC_ACT_SHOT = -1, 0, 1, 2
TC_H_CLSACT = 0xFFFFFFF1
PARENTS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}  # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_{IN,E}GRESS)
_TCX = {"ingress": AttachType.TCX_INGRESS, "egress": AttachType.TCX_EGRESS}
ETH_P_ALL = 0x0003


class TCXLink(FDLink):
    kind = "tcx"


class TCFilterAttachment(Link):
    """A direct-action bpf filter on a clsact qdisc (rtnetlink)."""

    kind = "tc"

    def __init__(self, description: str, ifindex: int, direction: str, priority: int, handle: int):
        super().__init__(description)
        self.ifindex = ifindex
        self.direction = direction
        self.priority = priority
        self.handle = handle


def tc_filters(interface: str | int, direction: str = "ingress", *, route=None) -> list[dict]:
    """The bpf filters on ``interface``'s clsact ``direction``: ``[{"priority", "handle", "name"}]``."""
    idx = _netlink.ifindex(interface)
    own = route is None
    route = route or _netlink.open_route()
    out = []
    try:
        try:
            msgs = route.get_filters(idx, parent=PARENTS[direction])
        except Exception as exc:  # no qdisc: no filters
            if getattr(exc, "code", None) in (errno.EINVAL, errno.ENOENT):
                return []
            raise
        for msg in msgs:
            if msg.get_attr("TCA_KIND") != "bpf" or not msg.get("handle"):
                continue
            opts = msg.get_attr("TCA_OPTIONS")
            name = opts.get_attr("TCA_BPF_NAME") if opts else None
            out.append({"priority": msg["info"] >> 16, "handle": msg["handle"], "name": name})
    finally:
        if own:
            route.close()
    return out


def attach_tc(prog: object, interface: str | int, direction: str = "ingress", *,
              method: str = "auto", priority: int = 1, handle: int = 1, name: str = "pybpf") -> Link:
    """Attach a ``BPF_PROG_TYPE_SCHED_CLS`` program to ``interface``'s ``direction``.

    ``method``: ``"tcx"`` (bpf_link, 6.6+), ``"netlink"`` (clsact + bpf filter),
    or ``"auto"`` (tcx where the kernel has it). ``priority``/``handle``
    place the netlink filter; an existing filter there gives EEXIST.
    """
    if direction not in PARENTS:
        raise ValueError(f"TC direction {direction!r}: expected 'ingress' or 'egress'")
    if method not in ("auto", "tcx", "netlink"):
        raise ValueError(f"TC method {method!r}: expected auto, tcx or netlink")
    idx = _netlink.ifindex(interface)
    ifname = interface if isinstance(interface, str) else f"ifindex {idx}"
    prog_fd = prog_fd_of(prog, ProgType.SCHED_CLS, ProgType.SCHED_ACT,
                         hook=f"TC {direction} on {ifname}")
    if method in ("auto", "tcx"):
        try:
            fd = link_create(prog_fd, idx, _TCX[direction], f"attaching tcx {direction} to {ifname}")
            return TCXLink(f"tcx {direction} {ifname}", fd)
        except (InvalidArgument, NotSupported):
            if method == "tcx":
                raise
    return _attach_netlink(prog_fd, idx, ifname, direction, priority, handle, name)


def _attach_netlink(prog_fd: int, idx: int, ifname: str, direction: str, priority: int,
                    handle: int, name: str) -> Link:
    route = _netlink.open_route()
    att = TCFilterAttachment(f"tc {direction} {ifname} prio {priority} handle {handle} [netlink]",
                             idx, direction, priority, handle)
    att._on_detach(route.close)
    try:
        try:
            route.tc("add", "clsact", idx)
            created_qdisc = True
        except Exception as exc:
            if getattr(exc, "code", None) != errno.EEXIST:
                raise _netlink.netlink_error(exc, "RTM_NEWQDISC", f"adding clsact to {ifname}") from None
            created_qdisc = False
        if created_qdisc:
            def remove_qdisc() -> None:
                if not tc_filters(idx, "ingress", route=route) and not tc_filters(idx, "egress", route=route):
                    try:
                        route.tc("del", "clsact", idx)
                    except Exception as exc:
                        if getattr(exc, "code", None) not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
                            raise
            att._on_detach(remove_qdisc)
        try:
            route.tc("add-filter", "bpf", idx, handle, fd=prog_fd, name=name, parent=PARENTS[direction],
                     classid=1, direct_action=True, prio=priority, protocol=ETH_P_ALL)
        except Exception as exc:
            raise _netlink.netlink_error(exc, "RTM_NEWTFILTER",
                                         f"adding bpf filter to {ifname} {direction}") from None

        def remove_filter() -> None:
            try:
                route.tc("del-filter", "bpf", idx, handle, parent=PARENTS[direction], prio=priority,
                         protocol=ETH_P_ALL)
            except Exception as exc:
                if getattr(exc, "code", None) not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
                    raise
        att._on_detach(remove_filter)
    except BaseException:
        att.detach()
        raise
    return att
