"""Programs that the kernel accepts and that together use every instruction kind.

Built from raw :class:`Instruction` fields (not from the text assembler), so
that comparing the kernel's log with our disassembly tests the disassembler
alone. Each program keeps every register a known scalar, so that the verifier
walks (and logs) every instruction.
"""

from __future__ import annotations

import random

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction as I

SCRATCH = (1, 2, 3, 4, 5, 7, 8, 9)  # r6 holds ctx, r10 is the frame pointer
ALU_OPS = (op.ADD, op.SUB, op.MUL, op.DIV, op.OR, op.AND, op.LSH, op.RSH, op.MOD, op.XOR,
           op.MOV, op.ARSH)
SIZES = (op.B, op.H, op.W, op.DW)


def _init_regs(rng: random.Random) -> list[I]:
    out = [I(op.ALU64 | op.MOV | op.K, r, 0, 0, rng.randint(-1000, 1000)) for r in (0,) + SCRATCH]
    return out


def _imm_for(opc: int, bits: int, rng: random.Random) -> int:
    if opc in (op.LSH, op.RSH, op.ARSH):
        return rng.randrange(bits)
    if opc in (op.DIV, op.MOD):
        return rng.choice([1, 3, 7, -5, 1 << 20])
    return rng.choice([0, 1, -1, 16, -300, 0x7FFFFFFF, -0x80000000, rng.randint(-2**31, 2**31 - 1)])


def alu_program(seed: int = 1) -> list[I]:
    rng = random.Random(seed)
    out = [I(op.ALU64 | op.MOV | op.X, 6, 1)] + _init_regs(rng)
    for cls, bits in ((op.ALU64, 64), (op.ALU, 32)):
        for opc in ALU_OPS:
            for srcbit in (op.K, op.X):
                dst, src = rng.choice(SCRATCH), rng.choice(SCRATCH)
                imm = _imm_for(opc, bits, rng) if srcbit == op.K else 0
                out.append(I(cls | opc | srcbit, dst, src if srcbit else 0, 0, imm))
        for opc in (op.DIV, op.MOD):  # sdiv / smod (off = 1)
            out.append(I(cls | opc | op.K, rng.choice(SCRATCH), 0, 1, rng.choice([3, -7])))
            out.append(I(cls | opc | op.X, rng.choice(SCRATCH), rng.choice(SCRATCH), 1, 0))
        for sx in ((8, 16, 32) if cls == op.ALU64 else (8, 16)):  # movsx
            out.append(I(cls | op.MOV | op.X, rng.choice(SCRATCH), rng.choice(SCRATCH), sx, 0))
        out.append(I(cls | op.NEG, rng.choice(SCRATCH)))
    for width in (16, 32, 64):
        out.append(I(op.ALU | op.END | op.TO_LE, rng.choice(SCRATCH), 0, 0, width))
        out.append(I(op.ALU | op.END | op.TO_BE, rng.choice(SCRATCH), 0, 0, width))
        out.append(I(op.ALU64 | op.END, rng.choice(SCRATCH), 0, 0, width))  # bswap
    for value in (0, 1, 0xFFFFFFFF, 0x100000000, (1 << 64) - 1, 0x8000000000000000, rng.getrandbits(64)):
        out.append(I(op.LD_IMM64, rng.choice(SCRATCH), 0, 0, value))
    out += [I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0), I(op.EXIT_OP)]
    return out


def jump_program(seed: int = 2) -> list[I]:
    rng = random.Random(seed)
    # r6, r7: unknown 64-bit scalars, so that no branch is decided statically
    out = [I(op.CALL_OP, 0, 0, 0, 5), I(op.ALU64 | op.MOV | op.X, 6, 0),  # ktime_get_ns
           I(op.CALL_OP, 0, 0, 0, 5), I(op.ALU64 | op.MOV | op.X, 7, 0)]
    for cls in (op.JMP, op.JMP32):
        for opc in op.COND_SYMBOLS:
            for srcbit in (op.K, op.X):
                # fresh unknown copies (mul breaks the verifier's register ids, so
                # refining them does not refine r6/r7), zeroed after the branch so
                # that both paths meet in the same state and are pruned
                dst, src = rng.choice((1, 2, 3, 4, 5)), rng.choice((8, 9))
                imm = 0 if srcbit else rng.choice([1, 0x10, -2, -0x80000000, rng.randint(1, 2**31 - 1)])
                out.append(I(op.ALU64 | op.MOV | op.X, dst, rng.choice((6, 7))))
                out.append(I(op.ALU64 | op.MUL | op.K, dst, 0, 0, 3))
                if srcbit:
                    out.append(I(op.ALU64 | op.MOV | op.X, src, rng.choice((6, 7))))
                    out.append(I(op.ALU64 | op.MUL | op.K, src, 0, 0, 5))
                out.append(I(cls | opc | srcbit, dst, src if srcbit else 0, 1, imm))
                out.append(I(op.ALU64 | op.MOV | op.K, dst, 0, 0, 1))
                out.append(I(op.ALU64 | op.MOV | op.K, dst, 0, 0, 0))
                if srcbit:
                    out.append(I(op.ALU64 | op.MOV | op.K, src, 0, 0, 0))
    out.append(I(op.JA_OP, 0, 0, 0, 0))  # goto pc+0: a jump over nothing stays reachable
    out.append(I(op.JMP32 | op.JA, 0, 0, 0, 0))  # gotol pc+0
    # a backward jump, bounded: r1 = 0; loop: r1 += 1; if r1 < 3 goto loop
    out.append(I(op.ALU64 | op.MOV | op.K, 1, 0, 0, 0))
    out.append(I(op.ALU64 | op.ADD | op.K, 1, 0, 0, 1))
    out.append(I(op.JMP | op.JLT | op.K, 1, 0, -2, 3))
    out += [I(op.CALL_OP, 0, 0, 0, 7), I(op.CALL_OP, 0, 0, 0, 5)]  # get_prandom_u32, ktime_get_ns
    out += [I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0), I(op.EXIT_OP)]
    return out


def memory_program(seed: int = 3, *, acquire_release: bool = True) -> list[I]:
    rng = random.Random(seed)
    out = [I(op.ALU64 | op.MOV | op.X, 6, 1)] + _init_regs(rng)
    for slot in range(1, 9):  # initialise 64 bytes of stack
        out.append(I(op.ST | op.MEM | op.DW, 10, 0, -8 * slot, 0))

    def off(size: int) -> int:
        width = op.SIZE_BYTES[size]
        return -rng.randrange(width, 64 + 1, width)

    for size in SIZES:
        out.append(I(op.ST | op.MEM | size, 10, 0, off(size), rng.randint(-100, 100)))
        out.append(I(op.STX | op.MEM | size, 10, rng.choice(SCRATCH), off(size)))
        out.append(I(op.LDX | op.MEM | size, rng.choice(SCRATCH), 10, off(size)))
        if size != op.DW:
            out.append(I(op.LDX | op.MEMSX | size, rng.choice(SCRATCH), 10, off(size)))
    for size in (op.W, op.DW):
        for imm in (op.ATOMIC_ADD, op.ATOMIC_OR, op.ATOMIC_AND, op.ATOMIC_XOR):
            out.append(I(op.STX | op.ATOMIC | size, 10, rng.choice(SCRATCH), off(size), imm))
            out.append(I(op.STX | op.ATOMIC | size, 10, rng.choice(SCRATCH), off(size), imm | op.FETCH))
        out.append(I(op.STX | op.ATOMIC | size, 10, rng.choice(SCRATCH), off(size), op.XCHG))
        out.append(I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0))
        out.append(I(op.STX | op.ATOMIC | size, 10, rng.choice(SCRATCH), off(size), op.CMPXCHG))
    if acquire_release:
        for size in SIZES:
            out.append(I(op.STX | op.ATOMIC | size, rng.choice(SCRATCH), 10, off(size), op.LOAD_ACQ))
            out.append(I(op.STX | op.ATOMIC | size, 10, rng.choice(SCRATCH), off(size), op.STORE_REL))
    # legacy packet loads (r6 = skb); they clobber r0-r5
    for size in (op.B, op.H, op.W):
        out.append(I(op.LD | op.ABS | size, 0, 0, 0, rng.randrange(0, 8)))
        out.append(I(op.ALU64 | op.MOV | op.K, 2, 0, 0, 1))
        out.append(I(op.LD | op.IND | size, 0, 2, 0, rng.randrange(0, 8)))
    out += [I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0), I(op.EXIT_OP)]
    return out


def map_program(map_fd: int) -> list[I]:
    """ld_imm64 of a map fd and of a map value, plus a helper call on the map."""
    return [
        I(op.ST | op.MEM | op.W, 10, 0, -4, 0),
        I(op.LD_IMM64, 1, op.PSEUDO_MAP_FD, 0, map_fd),
        I(op.ALU64 | op.MOV | op.X, 2, 10),
        I(op.ALU64 | op.ADD | op.K, 2, 0, 0, -4),
        I(op.CALL_OP, 0, 0, 0, 1),  # map_lookup_elem
        I(op.LD_IMM64, 3, op.PSEUDO_MAP_VALUE, 0, map_fd | (8 << 32)),
        I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0),
        I(op.EXIT_OP),
    ]


def subprog_program() -> list[I]:
    """A bpf-to-bpf call (call pc+N) and a backward call into an earlier subprogram."""
    return [
        I(op.ALU64 | op.MOV | op.K, 1, 0, 0, 1),
        I(op.CALL_OP, 0, op.PSEUDO_CALL, 0, 2),  # call pc+2 -> subprog A at slot 4
        I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0),
        I(op.EXIT_OP),
        # slot 4: subprog A calls subprog B at slot 7
        I(op.CALL_OP, 0, op.PSEUDO_CALL, 0, 2),
        I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 3),
        I(op.EXIT_OP),
        # slot 7: subprog B
        I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 2),
        I(op.EXIT_OP),
    ]


def may_goto_program() -> list[I]:
    """``may_goto`` (BPF_JMP|BPF_JCOND), the verifier's bounded-loop escape."""
    return [
        I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0),
        I(op.JCOND_OP, 0, 0, 1, 0),  # may_goto pc+1
        I(op.ALU64 | op.ADD | op.K, 0, 0, 0, 1),
        I(op.EXIT_OP),
    ]
