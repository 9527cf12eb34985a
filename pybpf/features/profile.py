"""Capture a kernel profile: what the verifier simulator needs to know about one kernel.

A profile is the ``pybpf feature probe --json`` document (release, program
types, map types, ISA features, helpers allowed per program type) plus a
``"profile"`` section with the facts the plain probe does not cover: the
instructions newer than ISA v4 (``may_goto``, load-acquire/store-release) and
which helper answers were inconclusive (hidden by lockdown, say), so that a
missing helper is told apart from one we could not ask about.

    from pybpf.features.profile import capture
    json.dump(capture(), open("mykernel.json", "w"))
    verify(prog, "xdp", kernel="mykernel.json")

Plain ``pybpf feature probe --json`` output is a valid profile too; what it
lacks is derived from the kernel release (see :mod:`pybpf.verifier.profiles`).
"""

from __future__ import annotations

import errno as E

from pybpf.asm import opcodes as op
from pybpf.asm.helpers import HELPER_NAMES
from pybpf.asm.instruction import Instruction
from pybpf.program.types import ProgType

from . import probes
from .cache import probe_all
from .probes import Probe, Status

__all__ = ["capture", "EXTRA_ISA", "probe_extra_isa"]


def _i(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Instruction:
    return Instruction(opcode, dst, src, off, imm)


_R0_0 = _i(op.ALU64 | op.MOV | op.K)
_EXIT = _i(op.EXIT_OP)
_FILL = _i(op.ST | op.MEM | op.DW, 10, 0, -8, 0)  # *(u64 *)(r10 -8) = 0
# Instructions newer than ISA v4, with the release that added them (Linux commit history).
EXTRA_ISA: dict[str, tuple[str, list[Instruction]]] = {
    # may_goto +0 is refused as "invalid may_goto off 0" by 6.12: jump over one insn
    "may_goto": ("6.9", [_R0_0, _i(op.JCOND_OP, 0, 0, 1, 0), _R0_0, _EXIT]),
    "load_acquire": ("6.15", [_FILL, _i(op.STX | op.ATOMIC | op.DW, 0, 10, -8, op.LOAD_ACQ), _R0_0, _EXIT]),
    "store_release": ("6.15", [_FILL, _i(op.STX | op.ATOMIC | op.DW, 10, 1, -8, op.STORE_REL), _R0_0, _EXIT]),
}


def probe_extra_isa(name: str) -> Probe:
    """Does the verifier accept the instruction ``name`` of EXTRA_ISA?"""
    _, insns = EXTRA_ISA[name]
    if name == "store_release":   # r1 must hold a value: r1 = 0 first
        insns = [_i(op.ALU64 | op.MOV | op.K, 1), *insns]
    a = probes._load(insns, ProgType.SOCKET_FILTER)
    if a.ok:
        return Probe(name, Status.SUPPORTED)
    if a.errno == E.EPERM or (a.errno == E.EACCES and not a.log.strip()):
        return probes._not_permitted(name, a.errno)
    if a.errno == E.EINVAL:
        return Probe(name, Status.UNSUPPORTED, probes._last_line(a.log) or "EINVAL")
    return Probe(name, Status.INCONCLUSIVE, probes._last_line(a.log) or probes._errname(a.errno))


def capture(*, helpers: bool = True) -> dict:
    """This kernel's profile: ``probe_all()`` plus the ``"profile"`` section (JSON-ready)."""
    data = probe_all(helpers=helpers)
    release = data["kernel"]
    nums = release.split("-")[0].split(".")
    section: dict = {"version": ".".join(nums[:2]),
                     "isa": {n: probe_extra_isa(n).as_dict() for n in EXTRA_ISA}}
    if helpers:
        unknown: dict = {}
        for t in ProgType:
            if t.bpftool_name not in data.get("helpers", {}):
                continue
            names = [f"bpf_{HELPER_NAMES[h]}" for h in sorted(HELPER_NAMES)
                     if h and probes.helper(t, h).status is Status.INCONCLUSIVE]
            if names:
                unknown[t.bpftool_name] = names
        section["helpers_inconclusive"] = unknown
    data["profile"] = section
    return data
