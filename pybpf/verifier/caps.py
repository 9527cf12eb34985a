"""The loader's capabilities, as the verifier derives its permissions from them.

bpf_check() sets four switches from CAP_PERFMON (bpf_allow_ptr_leaks(),
bpf_bypass_spec_v1(), bpf_bypass_spec_v4(), allow_uninit_stack) and one from
CAP_BPF (bpf_capable). A loader with CAP_BPF but not CAP_PERFMON (nor
CAP_SYS_ADMIN) is "unprivileged" to the verifier: pointers may not leak into
maps, ctx, packets, helpers or the return value, pointers may not be compared,
pointer arithmetic must stay in bounds and be sanitizable (Spectre v1), and
uninitialised stack may not be read.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Capabilities", "PRIVILEGED", "UNPRIVILEGED", "capabilities", "PERFMON_HELPERS",
           "PERFMON_PROG_TYPES"]


@dataclass(frozen=True)
class Capabilities:
    """What the loading task holds. ``net_admin`` gates the networking program types."""
    bpf: bool = True
    perfmon: bool = True
    net_admin: bool = True

    @property
    def allow_ptr_leaks(self) -> bool:
        return self.perfmon

    @property
    def bypass_spec_v1(self) -> bool:
        return self.perfmon

    @property
    def bypass_spec_v4(self) -> bool:
        return self.perfmon

    @property
    def allow_uninit_stack(self) -> bool:
        return self.perfmon


PRIVILEGED = Capabilities()
UNPRIVILEGED = Capabilities(perfmon=False)  # CAP_BPF + CAP_NET_ADMIN, no CAP_PERFMON

# Helpers bpf_base_func_proto() hands out only to CAP_PERFMON holders (measured on
# 6.18 for socket_filter, sched_cls, xdp and cgroup_skb: identical sets).
PERFMON_HELPERS = frozenset({6, 16, 22, 35, 55, 109, 112, 113, 114, 115, 117, 136, 137, 138, 139,
                             140, 141, 148, 149, 158, 165, 175, 176, 177, 178, 180, 191, 196})
# is_perfmon_prog_type(): BPF_PROG_LOAD refuses these with EPERM before the verifier runs.
PERFMON_PROG_TYPES = frozenset({2, 5, 7, 17, 24, 26, 27, 28, 29})


def capabilities(privileged) -> Capabilities:
    """``True``/``False`` or a :class:`Capabilities` -> Capabilities."""
    if isinstance(privileged, Capabilities):
        return privileged
    return PRIVILEGED if privileged else UNPRIVILEGED
