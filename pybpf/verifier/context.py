"""Context access rules per program type: which ``ctx`` offsets and sizes are valid.

Each rule is the kernel's ``*_is_valid_access()`` for that program type
(net/core/filter.c, kernel/trace/bpf_trace.c), rewritten as a plain function
returning the type of the loaded value (``SCALAR`` or a pointer type such as
``PTR_TO_PACKET``) or None when the access is invalid. Layouts are the UAPI's
(struct __sk_buff, struct xdp_md, struct pt_regs on x86-64).
"""

from __future__ import annotations

from .state import (MAYBE_NULL, PTR_TO_PACKET, PTR_TO_PACKET_END, PTR_TO_PACKET_META,
                    PTR_TO_SOCK_COMMON, PTR_TO_SOCKET, SCALAR)

__all__ = ["ctx_access", "PROG_TYPES", "prog_type_number"]

# enum bpf_prog_type
PROG_TYPES = {
    "socket_filter": 1, "kprobe": 2, "sched_cls": 3, "sched_act": 4, "tracepoint": 5, "xdp": 6,
    "perf_event": 7, "cgroup_skb": 8, "cgroup_sock": 9, "lwt_in": 10, "lwt_out": 11,
    "lwt_xmit": 12, "sock_ops": 13, "sk_skb": 14, "cgroup_device": 15, "sk_msg": 16,
    "raw_tracepoint": 17, "cgroup_sock_addr": 18, "lwt_seg6local": 19, "lirc_mode2": 20,
    "sk_reuseport": 21, "flow_dissector": 22, "cgroup_sysctl": 23,
    "raw_tracepoint_writable": 24, "cgroup_sockopt": 25, "tracing": 26, "struct_ops": 27,
    "ext": 28, "lsm": 29, "sk_lookup": 30, "syscall": 31, "netfilter": 32,
}
SOCKET_FILTER, KPROBE, SCHED_CLS, SCHED_ACT, TRACEPOINT, XDP, PERF_EVENT, CGROUP_SKB = 1, 2, 3, 4, 5, 6, 7, 8
RAW_TRACEPOINT = 17
BPF_XDP_DEVMAP = 33  # enum bpf_attach_type

# struct __sk_buff field offsets
SKB_SIZE = 192
MARK, QUEUE_MAPPING, PRIORITY, TC_INDEX = 8, 12, 32, 44
CB0, CB_END = 48, 68
TC_CLASSID, DATA, DATA_END, NAPI_ID = 72, 76, 80, 84
FAMILY, REMOTE_IP4, LOCAL_IP4, REMOTE_IP6, LOCAL_IP6, REMOTE_PORT, LOCAL_PORT = 88, 92, 96, 100, 116, 132, 136
LOCAL_PORT_END = 140
DATA_META, FLOW_KEYS, TSTAMP, WIRE_LEN, GSO_SEGS, SK, GSO_SIZE, TSTAMP_TYPE, HWTSTAMP = (
    140, 144, 152, 160, 164, 168, 176, 180, 184)
PT_REGS_SIZE = 168


def prog_type_number(t) -> int:
    if isinstance(t, str):
        key = t.lower().removeprefix("bpf_prog_type_")
        if key not in PROG_TYPES:
            raise ValueError(f"unknown program type {t!r}; known: {', '.join(PROG_TYPES)}")
        return PROG_TYPES[key]
    return int(t)


def _in(off: int, lo: int, size: int) -> bool:
    """bpf_ctx_range(): off falls inside a field of ``size`` bytes at ``lo``."""
    return lo <= off < lo + size


def _skb_common(off: int, size: int, write: bool):
    if off < 0 or off >= SKB_SIZE or off % size:
        return None
    if CB0 <= off < CB_END:
        return SCALAR if off + size <= CB_END else None
    if (REMOTE_IP6 <= off < LOCAL_IP6 + 16 or _in(off, REMOTE_IP4, 4) or _in(off, LOCAL_IP4, 4)
            or _in(off, DATA, 4) or _in(off, DATA_META, 4) or _in(off, DATA_END, 4)):
        return SCALAR if size == 4 else None
    if _in(off, FLOW_KEYS, 8):
        return None
    if _in(off, HWTSTAMP, 8):
        return SCALAR if not write and size == 8 else None
    if _in(off, TSTAMP, 8):
        return SCALAR if size == 8 else None
    if off == SK:
        return PTR_TO_SOCK_COMMON | MAYBE_NULL if not write and size == 8 else None
    if _in(off, SK, 8):
        return None
    if off == TSTAMP_TYPE:
        return None
    if TSTAMP_TYPE + 1 <= off < HWTSTAMP:
        return None
    if write:
        return SCALAR if size == 4 else None
    return SCALAR if size <= 4 and not size & (size - 1) else None


def _socket_filter(off, size, write, attach):
    if (_in(off, TC_CLASSID, 4) or _in(off, DATA, 4) or _in(off, DATA_META, 4)
            or _in(off, DATA_END, 4) or FAMILY <= off < LOCAL_PORT_END or _in(off, TSTAMP, 8)
            or _in(off, WIRE_LEN, 4) or _in(off, HWTSTAMP, 8)):
        return None
    if write and not (CB0 <= off < CB_END):
        return None
    return _skb_common(off, size, write)


def _tc(off, size, write, attach):
    if write and not (_in(off, MARK, 4) or _in(off, TC_INDEX, 4) or _in(off, PRIORITY, 4)
                      or _in(off, TC_CLASSID, 4) or CB0 <= off < CB_END or _in(off, TSTAMP, 8)
                      or _in(off, QUEUE_MAPPING, 4)):
        return None
    if FAMILY <= off < LOCAL_PORT_END:
        return None
    t = _skb_common(off, size, write) if off != TSTAMP_TYPE else (SCALAR if size == 1 else None)
    return _skb_pkt(off, t, meta=True)


def _cgroup_skb(off, size, write, attach):
    if _in(off, TC_CLASSID, 4) or _in(off, DATA_META, 4) or _in(off, WIRE_LEN, 4):
        return None
    if write and not (_in(off, MARK, 4) or _in(off, PRIORITY, 4) or CB0 <= off < CB_END
                      or _in(off, TSTAMP, 8)):
        return None
    return _skb_pkt(off, _skb_common(off, size, write), meta=False)


def _xdp(off, size, write, attach):
    if attach != BPF_XDP_DEVMAP and off == 20:
        return None
    if write:
        return None
    if off < 0 or off >= 24 or off % size or size != 4:
        return None
    return {0: PTR_TO_PACKET, 4: PTR_TO_PACKET_END, 8: PTR_TO_PACKET_META}.get(off, SCALAR)


def _kprobe(off, size, write, attach):
    if off < 0 or off >= PT_REGS_SIZE or write or off % size or off + size > PT_REGS_SIZE:
        return None
    return SCALAR


def _tracepoint(off, size, write, attach):
    # The kernel compares ``off < sizeof(void *)`` unsigned: negative offsets pass that test.
    if 0 <= off < 8 or off >= 8192 or write or off % size:
        return None
    return SCALAR


def _raw_tp(off, size, write, attach):
    if off < 0 or off >= 8 * 12 or write or off % size:
        return None
    return SCALAR


def _perf_event(off, size, write, attach):
    if off < 0 or off >= 184 or write or off % size:
        return None
    if _in(off, 168, 8) or _in(off, 176, 8):
        return SCALAR if size <= 8 and not size & (size - 1) else None
    return SCALAR if size == 8 else None


def _sk_skb(off, size, write, attach):
    """sk_skb_is_valid_access(): tc_index and priority writable, mark not even readable."""
    if (_in(off, TC_CLASSID, 4) or _in(off, DATA_META, 4) or _in(off, TSTAMP, 8)
            or _in(off, WIRE_LEN, 4) or _in(off, HWTSTAMP, 8) or _in(off, MARK, 4)):
        return None
    if write and not (_in(off, TC_INDEX, 4) or _in(off, PRIORITY, 4)):
        return None
    return _skb_pkt(off, _skb_common(off, size, write), meta=False)


def _lwt(off, size, write, attach):
    """lwt_is_valid_access(): no socket fields; mark, priority and cb writable."""
    if (_in(off, TC_CLASSID, 4) or FAMILY <= off < LOCAL_PORT_END or _in(off, DATA_META, 4)
            or _in(off, TSTAMP, 8) or _in(off, WIRE_LEN, 4) or _in(off, HWTSTAMP, 8)):
        return None
    if write and not (_in(off, MARK, 4) or _in(off, PRIORITY, 4) or CB0 <= off < CB_END):
        return None
    return _skb_pkt(off, _skb_common(off, size, write), meta=False)


def _skb_pkt(off, t, meta):
    """The packet pointers an skb context hands out (``meta``: data_meta too), else ``t``."""
    if t is None:
        return None
    if _in(off, DATA, 4):
        return PTR_TO_PACKET
    if _in(off, DATA_END, 4):
        return PTR_TO_PACKET_END
    if meta and _in(off, DATA_META, 4):
        return PTR_TO_PACKET_META
    return t


def _narrow(size: int, field: int) -> bool:
    """bpf_ctx_narrow_access_ok()."""
    return size <= field and not size & (size - 1)


# struct sk_msg_md: data, data_end, then u32 address fields (16..72), then sk at 72
MSG_DATA, MSG_DATA_END, MSG_FAMILY, MSG_SK, MSG_SIZE_END = 0, 8, 16, 72, 72


def _sk_msg(off, size, write, attach):
    if write or off < 0 or off % size:
        return None
    if off == MSG_DATA or off == MSG_DATA_END:
        return (PTR_TO_PACKET if off == MSG_DATA else PTR_TO_PACKET_END) if size == 8 else None
    if off == MSG_SK:
        return PTR_TO_SOCKET if size == 8 else None
    if MSG_FAMILY <= off < MSG_SIZE_END:
        return SCALAR if size == 4 else None
    return None


# struct bpf_sk_lookup: sk (u64) at 0, u32 fields, remote_port a __be16 at 36 then padding;
# the last field, ingress_ifindex, ends at 68: the u64 alignment pads the struct to 72 and
# sk_lookup_is_valid_access() refuses that tail padding
LOOKUP_SIZE, LOOKUP_FAMILY, LOOKUP_REMOTE_PORT, LOOKUP_LOCAL_IP4, LOOKUP_FIELDS_END = 72, 8, 36, 40, 68


def _sk_lookup(off, size, write, attach):
    if off < 0 or off >= LOOKUP_SIZE or off % size or write:
        return None
    if off == 0:
        return PTR_TO_SOCKET | MAYBE_NULL if size == 8 else None
    if _in(off, LOOKUP_REMOTE_PORT, 2):
        return SCALAR if size == 4 or _narrow(size, 2) else None
    if _in(off, LOOKUP_REMOTE_PORT + 2, 2):  # zero padding, readable for compatibility
        return SCALAR if _narrow(size, 2) else None
    if LOOKUP_FAMILY <= off < LOOKUP_FIELDS_END:
        return SCALAR if _narrow(size, 4) else None
    return None


# enum bpf_attach_type values that widen cgroup_sock's struct bpf_sock access
INET_SOCK_CREATE, INET4_POST_BIND, INET6_POST_BIND, INET_SOCK_RELEASE = 2, 12, 13, 34


def _cgroup_sock(off, size, write, attach):
    """sock_filter_is_valid_access(): struct bpf_sock, some fields only for some attach types."""
    from .mem import _sock_access_ok
    if attach == 0:  # bpf_prog_load_fixup_attach_type(): 0 means sock_create, for old loaders
        attach = INET_SOCK_CREATE
    if not _sock_access_ok(PTR_TO_SOCKET, off, size):
        return None
    if off in (0, 16, 20):  # bound_dev_if, mark, priority
        return SCALAR if attach in (INET_SOCK_CREATE, INET_SOCK_RELEASE) else None
    if write:
        return None
    if _in(off, 24, 4):  # src_ip4
        return SCALAR if attach == INET4_POST_BIND else None
    if 28 <= off < 44:  # src_ip6
        return SCALAR if attach == INET6_POST_BIND else None
    if _in(off, 44, 4):  # src_port
        return SCALAR if attach in (INET4_POST_BIND, INET6_POST_BIND) else None
    return SCALAR


# struct bpf_sock_addr: user_family, user_ip4, user_ip6[4], user_port, family, type, protocol,
# msg_src_ip4, msg_src_ip6[4], then the sk pointer (8-aligned) at 64
SA_SIZE, SA_USER_IP4, SA_USER_IP6, SA_USER_PORT, SA_MSG_IP4, SA_MSG_IP6, SA_SK = 72, 4, 8, 24, 40, 44, 64
# enum bpf_attach_type: which cgroup_sock_addr hooks see which address fields
INET4_BIND, INET6_BIND, INET4_CONNECT, INET6_CONNECT, UDP4_SENDMSG, UDP6_SENDMSG = 8, 9, 10, 11, 14, 15
UDP4_RECVMSG, UDP6_RECVMSG = 19, 20
INET4_GETPEERNAME, INET6_GETPEERNAME, INET4_GETSOCKNAME, INET6_GETSOCKNAME = 29, 30, 31, 32
SOCK_ADDR_V4 = frozenset({INET4_BIND, INET4_CONNECT, UDP4_SENDMSG, UDP4_RECVMSG, INET4_GETPEERNAME,
                          INET4_GETSOCKNAME})
SOCK_ADDR_V6 = frozenset({INET6_BIND, INET6_CONNECT, UDP6_SENDMSG, UDP6_RECVMSG, INET6_GETPEERNAME,
                          INET6_GETSOCKNAME})


def _sock_addr(off, size, write, attach):
    """sock_addr_is_valid_access(): an address field exists only for the hooks of its family
    (the unix hooks see none); address and port fields read narrow and write whole; the
    IPv6 arrays also take 8-byte accesses at 8-aligned offsets inside them."""
    if off < 0 or off >= SA_SIZE or off % size:
        return None
    field = None
    if _in(off, SA_USER_IP4, 4):
        field = (SA_USER_IP4, 4) if attach in SOCK_ADDR_V4 else None
    elif SA_USER_IP6 <= off < SA_USER_IP6 + 16:
        field = (SA_USER_IP6, 16) if attach in SOCK_ADDR_V6 else None
    elif _in(off, SA_MSG_IP4, 4):
        field = (SA_MSG_IP4, 4) if attach == UDP4_SENDMSG else None
    elif SA_MSG_IP6 <= off < SA_MSG_IP6 + 16:
        field = (SA_MSG_IP6, 16) if attach == UDP6_SENDMSG else None
    elif _in(off, SA_USER_PORT, 4):
        field = (SA_USER_PORT, 4)
    elif off == SA_SK:
        return PTR_TO_SOCKET if not write and size == 8 else None
    else:  # user_family, family, type, protocol: whole-word reads only (60..63 is padding)
        return SCALAR if not write and size == 4 and off in (0, 28, 32, 36) else None
    if field is None:
        return None
    lo, n = field
    if size == 8:  # bpf_ctx_wide_access_ok()
        return SCALAR if n == 16 and off + 8 <= lo + n and off % 8 == 0 else None
    if write:
        return SCALAR if size == 4 else None
    return SCALAR if _narrow(size, 4) else None


_RULES = {
    SOCKET_FILTER: _socket_filter, SCHED_CLS: _tc, SCHED_ACT: _tc, CGROUP_SKB: _cgroup_skb,
    XDP: _xdp, KPROBE: _kprobe, TRACEPOINT: _tracepoint, RAW_TRACEPOINT: _raw_tp,
    PERF_EVENT: _perf_event, 14: _sk_skb, 16: _sk_msg, 30: _sk_lookup, 9: _cgroup_sock,
    10: _lwt, 11: _lwt, 12: _lwt, 18: _sock_addr,
}


def ctx_access(prog_type: int, off: int, size: int, write: bool, attach: int = 0):
    """The type a valid ctx access yields (SCALAR or a pointer type), None if invalid."""
    rule = _RULES.get(prog_type)
    if rule is None:
        return None
    return rule(off, size, write, attach)


def supported(prog_type: int) -> bool:
    return prog_type in _RULES
