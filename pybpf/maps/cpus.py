"""Possible CPUs: per-CPU map values have one slot per *possible* CPU, not online CPU."""

from __future__ import annotations

__all__ = ["possible_cpus", "parse_cpu_list", "round8"]


def parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's cpu list syntax (``"0-3,5,7-8"``)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


# possible_cpus()'s answer, read once: it cannot change while the system runs. A
# global rather than functools.cache, whose import is start-up time the tools pay.
_possible: int | None = None


def possible_cpus() -> int:
    """How many CPUs the kernel considers possible (the size of a per-CPU value array)."""
    global _possible
    if _possible is None:
        with open("/sys/devices/system/cpu/possible") as f:
            _possible = len(parse_cpu_list(f.read()))
    return _possible


def round8(n: int) -> int:
    """Per-CPU values are 8-byte aligned in the syscall buffer."""
    return (n + 7) & ~7
