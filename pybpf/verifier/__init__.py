"""Verifier simulator: the kernel's safety rules in Python, agreeing with the real verifier.

``verify(program, prog_type)`` returns the verdict, the kernel's reason and the
instruction (and Python source line) it concerns, without loading anything and
without root. The model follows kernel/bpf/verifier.c of Linux 6.18 for a
privileged loader (CAP_BPF + CAP_PERFMON: uninitialised stack may be read,
pointers may be spilled and compared) by default; ``privileged=False`` models a
loader with CAP_BPF + CAP_NET_ADMIN but no CAP_PERFMON (:mod:`.caps`,
:mod:`.sanitize`: pointer leaks, pointer comparisons, Spectre v1 limits on
pointer arithmetic, uninitialised stack reads).

Layers, bottom-up:

- :mod:`.tnum`, :mod:`.scalar`, :mod:`.scalar_jmp` -- tristate numbers and the
  64/32-bit signed/unsigned bounds, their ALU transfer functions and branch
  refinement, with the kernel's precision;
- :mod:`.state` -- registers, stack slots, frames, reference ids;
- :mod:`.cfg` -- subprograms, jump ranges, reachability, register liveness and
  a static superset of the scalars whose precision matters (for pruning);
- :mod:`.alu`, :mod:`.mem`, :mod:`.branch`, :mod:`.calls` -- the per-instruction
  checks; :mod:`.context` and :mod:`.helpers_proto`/:mod:`.helper_names` hold the
  per-program-type context layouts and helper prototypes/permissions;
- :mod:`.walk` -- depth-first path exploration with the kernel's branch order,
  checkpoints, pruning, loop detection and the 1M-instruction limit.

Modelled program types: socket_filter, kprobe, sched_cls/act, tracepoint, xdp,
perf_event, cgroup_skb, raw_tracepoint. Not modelled (``verify`` raises
NotImplementedError, so a loader can fall back to the kernel): kfuncs, BTF ids
and BTF-typed program types, callbacks (bpf_loop, for_each_map_elem, timers),
dynptrs, iterators, spin locks, may_goto, load-acquire/store-release, and helpers
without a prototype in :mod:`.helpers_proto`. Unprivileged (no CAP_PERFMON), the
walk also follows mispredicted branches as speculative paths, as the kernel does.
"""

from .api import VerifierResult, verify
from .context import PROG_TYPES

__all__ = ["verify", "VerifierResult", "PROG_TYPES"]
