"""Hypothesis strategies for valid eBPF instructions (every encoding the kernel accepts).

Kept free of test code so that pybpf.testing can adopt it later.
"""

from __future__ import annotations

from hypothesis import strategies as st

from pybpf.asm import opcodes as op
from pybpf.asm.helpers import HELPER_NAMES
from pybpf.asm.instruction import Instruction

regs = st.integers(0, op.MAX_REG)
imm32 = st.integers(-(1 << 31), (1 << 31) - 1)
u32 = st.integers(0, (1 << 32) - 1)
off16 = st.integers(-(1 << 15), (1 << 15) - 1)
_ALU = (op.ADD, op.SUB, op.MUL, op.DIV, op.OR, op.AND, op.LSH, op.RSH, op.MOD, op.XOR, op.MOV, op.ARSH)
_SIZES = (op.B, op.H, op.W, op.DW)


def _alu(cls: int, opc: int, srcbit: int, dst: int, src: int, imm: int, variant: int) -> Instruction:
    off = 0
    if opc in (op.DIV, op.MOD):
        off = variant & 1
    elif opc == op.MOV and srcbit == op.X:
        choices = (0, 8, 16, 32) if cls == op.ALU64 else (0, 8, 16)
        off = choices[variant % len(choices)]
    if srcbit == op.X:
        return Instruction(cls | opc | op.X, dst, src, off, 0)
    return Instruction(cls | opc | op.K, dst, 0, off, imm)


alu = st.builds(_alu, st.sampled_from((op.ALU, op.ALU64)), st.sampled_from(_ALU),
                st.sampled_from((op.K, op.X)), regs, regs, imm32, st.integers(0, 7))
neg = st.builds(lambda cls, dst: Instruction(cls | op.NEG, dst), st.sampled_from((op.ALU, op.ALU64)), regs)
end = st.builds(lambda code, dst, width: Instruction(code, dst, 0, 0, width),
                st.sampled_from((op.ALU | op.END | op.TO_LE, op.ALU | op.END | op.TO_BE, op.ALU64 | op.END)),
                regs, st.sampled_from((16, 32, 64)))
addr_space_cast = st.builds(
    lambda dst, src, a, b: Instruction(op.ALU64 | op.MOV | op.X, dst, src, op.ADDR_SPACE_CAST,
                                       ((a << 16) | b) - ((a & 0x8000) << 17)),
    regs, regs, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
cond_jump = st.one_of(
    st.builds(lambda cls, opc, dst, o, imm: Instruction(cls | opc | op.K, dst, 0, o, imm),
              st.sampled_from((op.JMP, op.JMP32)), st.sampled_from(list(op.COND_SYMBOLS)), regs, off16, imm32),
    st.builds(lambda cls, opc, dst, src, o: Instruction(cls | opc | op.X, dst, src, o, 0),
              st.sampled_from((op.JMP, op.JMP32)), st.sampled_from(list(op.COND_SYMBOLS)), regs, regs, off16),
)
other_jump = st.one_of(
    st.builds(lambda o: Instruction(op.JA_OP, 0, 0, o, 0), off16),
    st.builds(lambda imm: Instruction(op.JMP32 | op.JA, 0, 0, 0, imm), imm32),
    st.builds(lambda o: Instruction(op.JCOND_OP, 0, op.MAY_GOTO, o, 0), off16),
    st.just(Instruction(op.EXIT_OP)),
    st.builds(lambda imm: Instruction(op.CALL_OP, 0, 0, 0, imm), st.one_of(st.sampled_from(sorted(HELPER_NAMES)), imm32)),
    st.builds(lambda imm: Instruction(op.CALL_OP, 0, op.PSEUDO_CALL, 0, imm), imm32),
    st.builds(lambda imm, o: Instruction(op.CALL_OP, 0, op.PSEUDO_KFUNC_CALL, o, imm), imm32,
              st.one_of(st.just(0), off16)),
)


def _ld_imm64(dst: int, src: int, lo: int, hi: int) -> Instruction:
    if src in (op.PSEUDO_MAP_FD, op.PSEUDO_MAP_IDX, op.PSEUDO_FUNC):
        hi = 0
    return Instruction(op.LD_IMM64, dst, src, 0, lo | hi << 32)


ld_imm64 = st.builds(_ld_imm64, regs, st.integers(0, 6), u32, st.one_of(st.just(0), u32))
ld_legacy = st.one_of(
    st.builds(lambda size, imm: Instruction(op.LD | op.ABS | size, 0, 0, 0, imm), st.sampled_from(_SIZES[:3]), imm32),
    st.builds(lambda size, src, imm: Instruction(op.LD | op.IND | size, 0, src, 0, imm),
              st.sampled_from(_SIZES[:3]), regs, imm32),
)
memory = st.one_of(
    st.builds(lambda size, dst, src, o: Instruction(op.LDX | op.MEM | size, dst, src, o, 0),
              st.sampled_from(_SIZES), regs, regs, off16),
    st.builds(lambda size, dst, src, o: Instruction(op.LDX | op.MEMSX | size, dst, src, o, 0),
              st.sampled_from(_SIZES[:3]), regs, regs, off16),
    st.builds(lambda size, dst, o, imm: Instruction(op.ST | op.MEM | size, dst, 0, o, imm),
              st.sampled_from(_SIZES), regs, off16, imm32),
    st.builds(lambda size, dst, src, o: Instruction(op.STX | op.MEM | size, dst, src, o, 0),
              st.sampled_from(_SIZES), regs, regs, off16),
)
_RMW = [op.ATOMIC_ADD, op.ATOMIC_OR, op.ATOMIC_AND, op.ATOMIC_XOR]
atomic = st.one_of(
    st.builds(lambda size, dst, src, o, imm: Instruction(op.STX | op.ATOMIC | size, dst, src, o, imm),
              st.sampled_from((op.W, op.DW)), regs, regs, off16,
              st.sampled_from(_RMW + [a | op.FETCH for a in _RMW] + [op.XCHG, op.CMPXCHG])),
    st.builds(lambda size, dst, src, o, imm: Instruction(op.STX | op.ATOMIC | size, dst, src, o, imm),
              st.sampled_from(_SIZES), regs, regs, off16, st.sampled_from((op.LOAD_ACQ, op.STORE_REL))),
)


def instructions() -> st.SearchStrategy[Instruction]:
    """Any single valid instruction (fields as the kernel accepts them, no semantics)."""
    return st.one_of(alu, neg, end, addr_space_cast, cond_jump, other_jump, ld_imm64, ld_legacy,
                     memory, atomic)


def programs(max_size: int = 30) -> st.SearchStrategy[list[Instruction]]:
    return st.lists(instructions(), min_size=1, max_size=max_size)
