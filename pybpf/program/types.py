"""Program and attach types of the kernel UAPI (enum bpf_prog_type, enum bpf_attach_type).

Facts copied from include/uapi/linux/bpf.h. Members are named without the
``BPF_PROG_TYPE_`` / ``BPF_`` prefix; ``kernel_name`` gives the UAPI spelling
and ``bpftool_name`` the lower-case name bpftool prints (``sched_cls``).
"""

from __future__ import annotations

from pybpf._intenum import IntEnum

__all__ = ["ProgType", "AttachType", "LinkType", "prog_type", "attach_type"]


class ProgType(IntEnum):
    """enum bpf_prog_type."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31
    NETFILTER = 32

    @property
    def kernel_name(self) -> str:
        return f"BPF_PROG_TYPE_{self.name}"

    @property
    def bpftool_name(self) -> str:
        return _BPFTOOL_NAMES.get(self, self.name.lower())


_BPFTOOL_NAMES = {ProgType.RAW_TRACEPOINT: "raw_tracepoint",
                  ProgType.RAW_TRACEPOINT_WRITABLE: "raw_tracepoint_writable"}


class AttachType(IntEnum):
    """enum bpf_attach_type."""

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
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
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38
    SK_REUSEPORT_SELECT = 39
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    LSM_CGROUP = 43
    STRUCT_OPS = 44
    NETFILTER = 45
    TCX_INGRESS = 46
    TCX_EGRESS = 47
    TRACE_UPROBE_MULTI = 48
    CGROUP_UNIX_CONNECT = 49
    CGROUP_UNIX_SENDMSG = 50
    CGROUP_UNIX_RECVMSG = 51
    CGROUP_UNIX_GETPEERNAME = 52
    CGROUP_UNIX_GETSOCKNAME = 53
    NETKIT_PRIMARY = 54
    NETKIT_PEER = 55
    TRACE_KPROBE_SESSION = 56
    TRACE_UPROBE_SESSION = 57

    @property
    def kernel_name(self) -> str:
        return f"BPF_{self.name}"


class LinkType(IntEnum):
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


def _lookup(enum_cls, value, prefix: str):
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        key = value.upper().replace("-", "_")
        key = key[len(prefix):] if key.startswith(prefix) else key
        aliases = {"RAW_TP": "RAW_TRACEPOINT", "TC": "SCHED_CLS", "SOCKET": "SOCKET_FILTER"}
        key = aliases.get(key, key) if enum_cls is ProgType else key
        try:
            return enum_cls[key]
        except KeyError:
            names = ", ".join(m.name.lower() for m in enum_cls)
            raise ValueError(f"unknown {enum_cls.__name__} {value!r} (one of: {names})") from None
    try:
        return enum_cls(int(value))
    except ValueError:
        raise ValueError(f"unknown {enum_cls.__name__} {value!r}") from None


def prog_type(value: "ProgType | int | str") -> ProgType:
    """A ProgType from an enum member, its number, or a name (``"xdp"``, ``"BPF_PROG_TYPE_XDP"``)."""
    return _lookup(ProgType, value, "BPF_PROG_TYPE_")


def attach_type(value: "AttachType | int | str") -> AttachType:
    """An AttachType from an enum member, its number, or a name (``"xdp"``, ``"BPF_XDP"``)."""
    return _lookup(AttachType, value, "BPF_")
