"""Which capabilities a program load needs, and which ones this process lacks.

The kernel answers EPERM without saying why. bpf_prog_load() asks for
CAP_BPF for every type but the unprivileged ones, CAP_NET_ADMIN for
networking types (is_net_admin_prog_type()) and CAP_PERFMON for tracing
types (is_perfmon_prog_type()); CAP_SYS_ADMIN implies all three. Reading
CapEff from /proc/self/status lets the error name what is actually missing.
"""

from __future__ import annotations

import os

from pybpf.syscall.errors import effective_caps

from .types import ProgType

__all__ = ["CAPS", "required_capabilities", "effective_capabilities", "missing_capabilities",
           "permission_hint", "lockdown_mode"]

CAPS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}

_NET_ADMIN = {
    ProgType.SCHED_CLS, ProgType.SCHED_ACT, ProgType.XDP, ProgType.LWT_IN, ProgType.LWT_OUT,
    ProgType.LWT_XMIT, ProgType.LWT_SEG6LOCAL, ProgType.SK_SKB, ProgType.SK_MSG,
    ProgType.FLOW_DISSECTOR, ProgType.CGROUP_DEVICE, ProgType.CGROUP_SOCK,
    ProgType.CGROUP_SOCK_ADDR, ProgType.CGROUP_SOCKOPT, ProgType.CGROUP_SYSCTL,
    ProgType.SOCK_OPS, ProgType.EXT, ProgType.NETFILTER,
}
_PERFMON = {
    ProgType.KPROBE, ProgType.TRACEPOINT, ProgType.PERF_EVENT, ProgType.RAW_TRACEPOINT,
    ProgType.RAW_TRACEPOINT_WRITABLE, ProgType.TRACING, ProgType.LSM, ProgType.STRUCT_OPS,
    ProgType.EXT,
}


def required_capabilities(prog_type: ProgType | int) -> tuple[str, ...]:
    """Capabilities BPF_PROG_LOAD checks for ``prog_type`` (any of them can be replaced by CAP_SYS_ADMIN)."""
    caps = ["CAP_BPF"]
    if prog_type in _NET_ADMIN:
        caps.append("CAP_NET_ADMIN")
    if prog_type in _PERFMON:
        caps.append("CAP_PERFMON")
    return tuple(caps)


def effective_capabilities() -> set[str] | None:
    """The named capabilities in this process's effective set (None if unreadable)."""
    mask = effective_caps()
    if mask is None:
        return None
    return {name for name, bit in CAPS.items() if mask >> bit & 1}


def missing_capabilities(prog_type: ProgType | int) -> list[str] | None:
    have = effective_capabilities()
    if have is None:
        return None
    if "CAP_SYS_ADMIN" in have:
        return []
    return [cap for cap in required_capabilities(prog_type) if cap not in have]


def lockdown_mode() -> str | None:
    """The active kernel lockdown mode (``none``, ``integrity``, ``confidentiality``) if known."""
    try:
        with open("/sys/kernel/security/lockdown") as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def permission_hint(prog_type: ProgType | int, action: str = "loading") -> str:
    """Why EPERM, in words: what the type needs, what this process lacks, how to run as root."""
    try:
        name = ProgType(prog_type).bpftool_name
    except ValueError:
        name = f"type {int(prog_type)}"
    needed = " and ".join(required_capabilities(prog_type))
    missing = missing_capabilities(prog_type)
    text = f"{action} a {name} program needs {needed} (or CAP_SYS_ADMIN)"
    grant = ("grant the capabilities (e.g. `sudo setpriv --inh-caps=+bpf,+perfmon,+net_admin "
             "--ambient-caps=+bpf,+perfmon,+net_admin ...`)")
    if missing and os.geteuid() == 0:  # "run as root" would be no help: it is root already
        return (f"{text}; this process runs as root but lacks {', '.join(missing)} (capabilities "
                f"dropped, or a user namespace): {grant}")
    if missing:
        return (f"{text}; this process lacks {', '.join(missing)}. Run as root (e.g. `sudo python ...`) "
                f"or {grant}")
    if missing == []:
        mode = lockdown_mode()
        why = ("the kernel is locked down (/sys/kernel/security/lockdown: "
               f"{mode})" if mode and mode != "none" else "a security module (LSM) or sysctl")
        return (f"{text}; this process has them, so the refusal comes from elsewhere: {why}")
    return f"{text}." + ("" if os.geteuid() == 0 else " Run as root, e.g. with sudo")
