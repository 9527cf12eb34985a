"""The kernel's table of public opcodes, checked before any path is walked.

resolve_pseudo_ldimm64() walks the whole program once, dead code included,
before check_cfg(): a map-loading ``ld_imm64`` must leave the second slot's
imm zero (``unrecognized bpf_ld_imm64 insn``) and every other opcode must be
in kernel/bpf/core.c's public instruction table (``unknown opcode XX``).
The table is rebuilt here from its rules (which class takes which op, mode,
size and source bit), not copied.
"""

from __future__ import annotations

from pybpf.asm import opcodes as op

__all__ = ["PUBLIC_OPCODES", "check_insntable"]


def _table() -> frozenset[int]:
    t = set()
    for cls in (0x04, 0x07):  # ALU, ALU64
        for o in range(0x00, 0xD0, 0x10):
            if o == 0x80:  # NEG takes no source bit
                t.add(cls | o)
            else:
                t.update((cls | o | 0x00, cls | o | 0x08))
    t.update((0xD4, 0xDC, 0xD7))  # BPF_END to_le/to_be, ALU64 bswap
    for sz in (0x00, 0x08, 0x10, 0x18):
        t.update((0x61 | sz, 0x62 | sz, 0x63 | sz))  # LDX/ST/STX MEM
    t.update((0x81, 0x89, 0x91))  # LDX MEMSX W/H/B
    # Measured on 6.18: every LDX opcode passes the table (a bad mode is refused on the walk
    # as "BPF_LDX uses reserved fields"), unlike ST/STX with a bad mode.
    t.update(0x01 | mode | sz for mode in range(0, 0x100, 0x20) for sz in (0x00, 0x08, 0x10, 0x18))
    # ...except that the LDX check lets MEMSX through and the table has no MEMSX DW: 0x99 is
    # "unknown opcode 99"
    t.discard(0x01 | 0x80 | 0x18)
    t.update((0xC3, 0xDB, 0xCB, 0xD3))  # STX ATOMIC W/DW/H/B
    t.update((0x18, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50))  # LD imm64, ABS/IND B/H/W
    for cls in (0x05, 0x06):  # JMP, JMP32
        t.add(cls)  # JA / gotol
        for o in (0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0):
            t.update((cls | o, cls | o | 0x08))
    t.update((0x85, 0x95, 0xE5))  # CALL, EXIT, JCOND (may_goto)
    return frozenset(t)


PUBLIC_OPCODES = _table()


def check_insntable(ins, slot: int, reject) -> None:
    """Raise ``reject(message, slot, errno=22)`` where resolve_pseudo_ldimm64() would refuse."""
    if ins.opcode == op.LD_IMM64:
        if ins.src > 6 or ins.src in (op.PSEUDO_MAP_FD, 5) and (ins.imm >> 32) & 0xFFFFFFFF:  # MAP_FD, MAP_IDX
            raise reject("unrecognized bpf_ld_imm64 insn", slot, errno=22)
        return
    if ins.opcode not in PUBLIC_OPCODES:
        raise reject(f"unknown opcode {ins.opcode:02x}", slot, errno=22)
