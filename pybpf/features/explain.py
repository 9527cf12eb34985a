"""Explaining a failed load or map creation with the feature probes.

The kernel answers EINVAL for "no such program type", "no such map type",
"helper not allowed here" and a hundred other things. After a failure, the
(cached) probes can tell which of these it was, in words a user can act on.
"""

from __future__ import annotations

from typing import Any

from pybpf.asm import opcodes as op
from pybpf.asm.helpers import HELPER_NAMES
from pybpf.maps.types import MapType
from pybpf.program.types import ProgType

from . import probes
from .probes import ISA_FEATURES, Status

__all__ = ["explain_load_failure", "explain_map_failure"]


def _map_type_of(obj: Any) -> MapType | None:
    for holder in (obj, getattr(obj, "spec", None)):
        t = getattr(holder, "type", None) if holder is not None else None
        if t is not None:
            try:
                return MapType(int(t))
            except ValueError:
                return None
    return None


def explain_map_failure(map_type: MapType | int, error: BaseException | None = None) -> str | None:
    """``"this kernel does not support map type X"`` when the probe says so."""
    try:
        mtype = MapType(int(map_type))
    except ValueError:
        return f"map type {int(map_type)} is unknown to pybpf and probably to this kernel"
    p = probes.map_type(mtype)
    if p.status is Status.UNSUPPORTED:
        return f"this kernel does not support map type {mtype.bpftool_name} (BPF_MAP_TYPE_{mtype.name})"
    return None


def _isa_needed(insns) -> list[str]:
    """ISA v4 features the program uses (v2/v3 are in every kernel since 5.1)."""
    used = set()
    for insn in insns:
        cls = insn.opcode & 0x07
        code = insn.opcode & 0xF0
        if cls in (op.ALU, op.ALU64) and code in (op.DIV, op.MOD) and insn.off == 1:
            used.add("v4 sdiv/smod")
        elif cls in (op.ALU, op.ALU64) and code == op.MOV and insn.off in (8, 16, 32):
            used.add("v4 movsx")
        elif cls == op.LDX and insn.opcode & 0xE0 == op.MEMSX:
            used.add("v4 ldsx")
        elif cls == op.ALU64 and code == op.END:
            used.add("v4 bswap")
        elif insn.opcode == op.JMP32 | op.JA:
            used.add("v4 gotol")
        elif cls == op.JMP32:
            used.add("v3 jmp32")
    return sorted(u for u in used if u in ISA_FEATURES)


def explain_load_failure(spec: Any, error: BaseException | None = None) -> str | None:
    """Why a load (ProgramSpec) or map creation (MapSpec) failed, if the probes can tell.

    Returns one sentence per finding, joined, or None when the probes see
    nothing missing (then the kernel's own message is the best there is).
    """
    if not hasattr(spec, "prog_type"):
        mtype = _map_type_of(spec)
        return explain_map_failure(mtype, error) if mtype is not None else None
    ptype = ProgType(int(spec.prog_type))
    findings: list[str] = []
    p = probes.prog_type(ptype)
    if p.status is Status.UNSUPPORTED:
        return f"this kernel does not support program type {ptype.bpftool_name} ({ptype.kernel_name})"
    for m in spec.map_references():
        mtype = _map_type_of(m)
        if mtype is not None and (why := explain_map_failure(mtype)):
            findings.append(why)
    if p.status is Status.SUPPORTED and not p.detail:
        for hid in spec.helper_calls():
            h = probes.helper(ptype, hid)
            if h.status is Status.UNSUPPORTED:
                name = HELPER_NAMES.get(hid)
                what = f"helper bpf_{name}" if name else f"helper #{hid} (unknown to this kernel)"
                findings.append(f"{what} is not allowed in program type {ptype.bpftool_name}")
    for feature in _isa_needed(spec.instructions()):
        if probes.isa_feature(feature).status is Status.UNSUPPORTED:
            findings.append(f"this kernel's verifier does not accept ISA {feature} instructions")
    return "; ".join(findings) or None
