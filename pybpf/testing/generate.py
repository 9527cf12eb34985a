"""Structured program generation on a plain :class:`random.Random`.

The generator is deliberately not hypothesis: the fuzzer must be
reproducible from ``--seed`` alone and fast, so the core draws from a
``random.Random`` and :mod:`pybpf.testing.strategies` merely wraps it.

A program is a prologue (``r6 = ctx``; ``r7``, ``r8``, ``r9`` hold scalars),
a sequence of *blocks* -- each a small idiom the kernel accepts on its own
(checked map lookup, packet bounds check then access, bounded loop, helper
call with well-typed arguments, stack write then read, ...) -- and an
epilogue returning a value the program type allows. Blocks only use r0-r5 as
temporaries, write the callee-saved scalars, and read stack bytes they know
were written on every path, so any sequence of them is a valid program.

``valid=False`` plants exactly one *near miss* (see :data:`MUTATIONS`): the
same idiom with one thing broken, at the top level where the verifier must
reach it.
"""

from __future__ import annotations

import random

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction
from pybpf.maps import MapSpec
from pybpf.program.types import ProgType, prog_type as _prog_type

from . import blocks
from .program import GeneratedProgram

__all__ = ["generate", "random_instruction", "SUPPORTED", "TEST_RUNNABLE", "MUTATIONS",
           "mutations_for", "random_packet"]

# Program types the generator knows the context and the rules of.
SUPPORTED = (ProgType.SOCKET_FILTER, ProgType.XDP, ProgType.SCHED_CLS, ProgType.KPROBE,
             ProgType.TRACEPOINT, ProgType.RAW_TRACEPOINT, ProgType.CGROUP_SKB)
# Types BPF_PROG_TEST_RUN runs with a packet (the interpreter is compared on these).
TEST_RUNNABLE = (ProgType.SOCKET_FILTER, ProgType.XDP, ProgType.SCHED_CLS)

MUTATIONS = blocks.MUTATIONS


def mutations_for(ptype) -> tuple[str, ...]:
    """The near-miss kinds that apply to a program type."""
    ptype = _prog_type(ptype)
    return tuple(m for m, types in blocks.MUTATION_TYPES.items() if types is None or ptype in types)


# BPF_PROG_TEST_RUN of skb programs refuses (EINVAL) an IPv4/IPv6 frame too short for the IP header.
_MIN_FRAME = {b"\x08\x00": 14 + 20, b"\x86\xdd": 14 + 40}


def random_packet(rng: random.Random, size: int | None = None) -> bytes:
    """An Ethernet frame: random addresses, an IPv4 or IPv6 or odd EtherType, random payload."""
    size = rng.randint(14, 96) if size is None else max(size, 14)
    ethertype = rng.choice((b"\x08\x00", b"\x86\xdd", b"\x08\x06", rng.randbytes(2)))
    size = max(size, _MIN_FRAME.get(ethertype, 14))
    return rng.randbytes(12) + ethertype + rng.randbytes(size - 14)


def _maps(rng: random.Random) -> list[MapSpec]:
    out = [MapSpec.hash(4, rng.choice((8, 16, 24, 32)), rng.choice((4, 16, 64)), name="m0"),
           MapSpec.array(rng.choice((8, 16, 32)), rng.choice((1, 4, 16)), name="m1")]
    return out


def generate(rng: random.Random, prog_type="xdp", *, valid: bool | None = True,
             max_insns: int = 64, deterministic: bool = False,
             mutation: str | None = None) -> GeneratedProgram:
    """One program of ``prog_type`` drawn from ``rng``.

    ``valid``: True for a program the kernel should accept, False for one
    near-miss mutation (``mutation`` picks which; default random), None for
    either with equal odds. ``max_insns`` bounds the logical instruction count
    (at least 16). ``deterministic`` avoids helpers whose result differs
    between runs (time, random numbers, CPU, pid), so a test run on the kernel
    and on the interpreter must agree.
    """
    ptype = _prog_type(prog_type)
    if ptype not in SUPPORTED:
        names = ", ".join(t.bpftool_name for t in SUPPORTED)
        raise ValueError(f"program type {ptype.bpftool_name} is not supported by the generator "
                         f"(supported: {names})")
    if max_insns < 16:
        raise ValueError(f"max_insns must be at least 16, not {max_insns}")
    if valid is None:
        valid = rng.random() < 0.5
    if not valid and mutation is None:
        mutation = rng.choice(mutations_for(ptype))
    elif valid:
        mutation = None
    elif mutation not in mutations_for(ptype):
        raise ValueError(f"mutation {mutation!r} does not apply to {ptype.bpftool_name} "
                         f"(one of: {', '.join(mutations_for(ptype))})")
    maps = _maps(rng)
    g = blocks.Gen(rng, ptype, maps, deterministic=deterministic)
    g.early_exits = mutation is None
    g.prologue()
    budget = max_insns - 4  # epilogue
    n_blocks = rng.randint(1, max(1, max_insns // 8))
    mut_at = rng.randint(0, n_blocks) if mutation else -1
    for i in range(n_blocks + 1):
        if i == mut_at:
            g.mutation(mutation)
        if i < n_blocks:
            g.try_block(budget - (blocks.MUTATION_COST if i < mut_at else 0))
    g.epilogue(broken=(mutation == "bad_return"))
    b = g.b
    used = [m for m in maps if any(insn.map is m for insn in b.insns)]
    return GeneratedProgram(tuple(b.insns), dict(b.labels), ptype, tuple(used), mutation,
                            random_packet(rng))


# ---------------------------------------------------------------------------------------------
# single instructions

_ALU_CODES = (op.ADD, op.SUB, op.MUL, op.DIV, op.OR, op.AND, op.LSH, op.RSH, op.NEG, op.MOD,
              op.XOR, op.MOV, op.ARSH)
_JMP_CODES = tuple(op.COND_SYMBOLS)
_SIZES = (op.B, op.H, op.W, op.DW)
_ATOMICS = (op.ATOMIC_ADD, op.ATOMIC_OR, op.ATOMIC_AND, op.ATOMIC_XOR,
            op.ATOMIC_ADD | op.FETCH, op.ATOMIC_OR | op.FETCH, op.ATOMIC_AND | op.FETCH,
            op.ATOMIC_XOR | op.FETCH, op.XCHG, op.CMPXCHG)
_INTERESTING = (0, 1, -1, 2, 7, 8, 31, 32, 63, 64, 0x7FFFFFFF, -0x80000000, 0xFF, 0xFFFF)


def _imm(rng: random.Random) -> int:
    return rng.choice(_INTERESTING) if rng.random() < 0.4 else rng.randint(-(1 << 31), (1 << 31) - 1)


def random_instruction(rng: random.Random) -> Instruction:
    """Any single instruction with a valid encoding, from every class.

    The result passes :func:`pybpf.asm.disasm.validate`; jumps carry raw
    offsets (whether they land inside a program is the program's business).
    """
    from pybpf.asm.disasm import validate
    for _ in range(100):
        insn = _raw_instruction(rng)
        if validate(insn) is None:
            return insn
    return Instruction(op.EXIT_OP)  # pragma: no cover - validate rejects 100 draws in a row


def _raw_instruction(rng: random.Random) -> Instruction:
    cls = rng.randrange(8)
    dst, src = rng.randint(0, 9), rng.randint(0, 10)
    off = rng.choice((0, 0, rng.randint(-512, 511)))
    if cls in (op.ALU, op.ALU64):
        kind = rng.random()
        if kind < 0.1:
            if cls == op.ALU:
                return Instruction(op.ALU | op.END | rng.choice((op.TO_LE, op.TO_BE)), dst, 0, 0,
                                   rng.choice((16, 32, 64)))
            return Instruction(op.ALU64 | op.END, dst, 0, 0, rng.choice((16, 32, 64)))
        if kind < 0.2:  # movsx / sdiv / smod (ISA v4)
            code = rng.choice((op.MOV, op.DIV, op.MOD))
            bits = rng.choice((8, 16, 32) if cls == op.ALU64 else (8, 16)) if code == op.MOV else 1
            return Instruction(cls | code | op.X, dst, src, bits, 0)
        code = rng.choice(_ALU_CODES)
        if code == op.NEG:
            return Instruction(cls | op.NEG, dst)
        if rng.random() < 0.5:
            return Instruction(cls | code | op.X, dst, src)
        imm = _imm(rng)
        if code in (op.LSH, op.RSH, op.ARSH):
            imm = rng.randrange(32 if cls == op.ALU else 64)
        return Instruction(cls | code | op.K, dst, 0, 0, imm)
    if cls in (op.JMP, op.JMP32):
        kind = rng.random()
        if cls == op.JMP and kind < 0.1:
            return Instruction(op.EXIT_OP)
        if cls == op.JMP and kind < 0.2:
            return Instruction(op.CALL_OP, 0, 0, 0, rng.choice((1, 2, 3, 5, 7, 8, 14, 16, 26, 113)))
        if kind < 0.3:
            if cls == op.JMP32:
                return Instruction(op.JMP32 | op.JA, 0, 0, 0, rng.randint(-64, 64))  # gotol
            return Instruction(op.JA_OP, 0, 0, rng.randint(-64, 64))
        code = rng.choice(_JMP_CODES)
        if rng.random() < 0.5:
            return Instruction(cls | code | op.X, dst, src, rng.randint(-64, 64))
        return Instruction(cls | code | op.K, dst, 0, rng.randint(-64, 64), _imm(rng))
    if cls == op.LD:
        if rng.random() < 0.5:
            return Instruction(op.LD_IMM64, dst, 0, 0, rng.getrandbits(64))
        mode = rng.choice((op.ABS, op.IND))
        size = rng.choice((op.B, op.H, op.W))
        return Instruction(op.LD | mode | size, 0, src if mode == op.IND else 0, 0,
                           rng.randint(0, 1500))
    if cls == op.LDX:
        if rng.random() < 0.2:
            return Instruction(op.LDX | op.MEMSX | rng.choice((op.B, op.H, op.W)), dst, src, off)
        return Instruction(op.LDX | op.MEM | rng.choice(_SIZES), dst, src, off)
    if cls == op.ST:
        return Instruction(op.ST | op.MEM | rng.choice(_SIZES), dst if dst else 10, 0, off, _imm(rng))
    if rng.random() < 0.3:
        return Instruction(op.STX | op.ATOMIC | rng.choice((op.W, op.DW)), dst, src, off,
                           rng.choice(_ATOMICS))
    return Instruction(op.STX | op.MEM | rng.choice(_SIZES), dst, src, off)

