"""XDP: a program on a network interface's receive path, before the stack allocates an skb.

Two ways in: ``BPF_LINK_CREATE`` with attach type ``BPF_XDP`` (Linux 5.9; a
bpf_link owned by an fd, gone when the process dies) and the older
rtnetlink ``IFLA_XDP`` attribute (what ``ip link set dev X xdp`` does; it
stays until removed, so it is registered for cleanup). The mode picks the
hook: ``generic`` (``XDP_FLAGS_SKB_MODE``, works on every device, after skb
allocation), ``driver`` (``XDP_FLAGS_DRV_MODE``, native support in the
driver), ``offload`` (``XDP_FLAGS_HW_MODE``, run on the NIC); ``None`` lets
the kernel choose (driver if supported, else generic).
"""

from __future__ import annotations

import os

from pybpf.program.types import AttachType, ProgType
from pybpf.syscall import FD, InvalidArgument, NotSupported

from . import _netlink
from .base import FDLink, Link, link_create, prog_fd_of

__all__ = ["XDPFlags", "XDPLink", "XDPNetlinkAttachment", "attach_xdp", "xdp_prog_id"]


class XDPFlags:
    """XDP_FLAGS_* from include/uapi/linux/if_link.h."""

    UPDATE_IF_NOEXIST = 1 << 0
    SKB_MODE = 1 << 1
    DRV_MODE = 1 << 2
    HW_MODE = 1 << 3
    REPLACE = 1 << 4


_MODES = {None: 0, "generic": XDPFlags.SKB_MODE, "skb": XDPFlags.SKB_MODE,
          "driver": XDPFlags.DRV_MODE, "native": XDPFlags.DRV_MODE, "offload": XDPFlags.HW_MODE,
          "hw": XDPFlags.HW_MODE}
_ATTACHED_ID = {0: "IFLA_XDP_PROG_ID", XDPFlags.SKB_MODE: "IFLA_XDP_SKB_PROG_ID",
                XDPFlags.DRV_MODE: "IFLA_XDP_DRV_PROG_ID", XDPFlags.HW_MODE: "IFLA_XDP_HW_PROG_ID"}


class XDPLink(FDLink):
    """XDP attached with BPF_LINK_CREATE."""

    kind = "xdp"


class XDPNetlinkAttachment(Link):
    """XDP attached with rtnetlink (IFLA_XDP); removed on detach, exit and signals."""

    kind = "xdp"

    def __init__(self, description: str, ifindex: int, flags: int):
        super().__init__(description)
        self.ifindex = ifindex
        self.flags = flags


def _mode_flags(mode: str | None) -> int:
    try:
        return int(_MODES[mode])
    except KeyError:
        raise ValueError(f"XDP mode {mode!r}: expected one of generic, driver, offload or None") from None


def xdp_prog_id(interface: str | int, mode: str | None = None, *, route=None) -> int:
    """The id of the XDP program attached to ``interface`` in ``mode`` (0 if none)."""
    idx = _netlink.ifindex(interface)
    own = route is None
    route = route or _netlink.open_route()
    try:
        msg = route.link("get", index=idx)[0]
    finally:
        if own:
            route.close()
    xdp = msg.get_attr("IFLA_XDP")
    if not xdp:
        return 0
    return xdp.get_attr(_ATTACHED_ID[_mode_flags(mode)]) or 0


def attach_xdp(prog: object, interface: str | int, *, mode: str | None = None,
               method: str = "auto", replace: bool = False) -> Link:
    """Attach an XDP program to ``interface`` (name or ifindex).

    ``method``: ``"link"`` (BPF_LINK_CREATE), ``"netlink"`` (IFLA_XDP), or
    ``"auto"`` (link, falling back to netlink on kernels before 5.9).
    ``replace`` lets a netlink attachment replace a program already there
    (by default an occupied interface gives ``Busy``/EBUSY or EEXIST).
    """
    flags = _mode_flags(mode)
    if method not in ("auto", "link", "netlink"):
        raise ValueError(f"XDP method {method!r}: expected auto, link or netlink")
    idx = _netlink.ifindex(interface)
    name = interface if isinstance(interface, str) else f"ifindex {idx}"
    prog_fd = prog_fd_of(prog, ProgType.XDP, hook=f"XDP on {name}")
    desc = f"xdp {name}" + (f" ({mode})" if mode else "")
    if method in ("auto", "link"):
        try:
            fd = link_create(prog_fd, idx, AttachType.XDP, f"attaching XDP to {name}", flags=flags)
            return XDPLink(desc, fd)
        except (InvalidArgument, NotSupported):
            if method == "link":
                raise
    return _attach_netlink(prog_fd, idx, flags, desc, replace)


def _attach_netlink(prog_fd: int, idx: int, flags: int, desc: str, replace: bool) -> Link:
    route = _netlink.open_route()
    set_flags = flags if replace else flags | XDPFlags.UPDATE_IF_NOEXIST
    try:
        route.link("set", index=idx, xdp={"attrs": [("IFLA_XDP_FD", prog_fd),
                                                     ("IFLA_XDP_FLAGS", int(set_flags))]})
    except Exception as exc:  # pyroute2 NetlinkError
        route.close()
        raise _netlink.netlink_error(exc, "RTM_SETLINK", f"attaching XDP ({desc})") from None
    att = XDPNetlinkAttachment(desc + " [netlink]", idx, flags)
    att._on_detach(route.close)
    # Keep a reference to the program so the expected-fd check below can name it.
    own = FD(os.dup(prog_fd))
    att._on_detach(own.close)

    def remove() -> None:
        # Only remove our own program: XDP_FLAGS_REPLACE with IFLA_XDP_EXPECTED_FD (5.7+) fails
        # with EEXIST when someone else's program has replaced ours meanwhile.
        attrs = [("IFLA_XDP_FD", -1), ("IFLA_XDP_FLAGS", int(flags | XDPFlags.REPLACE)),
                 ("IFLA_XDP_EXPECTED_FD", own.fd)]
        try:
            route.link("set", index=idx, xdp={"attrs": attrs})
        except Exception as exc:
            if getattr(exc, "code", None) == 17:  # EEXIST: not ours any more
                return
            if getattr(exc, "code", None) in (19,):  # ENODEV: the interface is gone
                return
            route.link("set", index=idx, xdp={"attrs": [("IFLA_XDP_FD", -1),
                                                         ("IFLA_XDP_FLAGS", int(flags))]})
    att._on_detach(remove)
    return att
