"""A minimal instruction DSL for the verifier corpus: one function per instruction form.

Kept independent of the project's builder so the corpus stays plain data
(lists of ``Instruction``) that the tests and the benchmark both read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction as I

SZ = {1: op.B, 2: op.H, 4: op.W, 8: op.DW}


@dataclass(frozen=True)
class MapDef:
    """What the simulator needs of a map, and what BPF_MAP_CREATE needs to make one."""
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    inner: "MapDef | None" = None
    name: str = ""


ARRAY = MapDef(2, 4, 48, 4, name="array")
ARRAY1 = MapDef(2, 4, 48, 1, name="array1")
HASH = MapDef(1, 8, 16, 16, name="hash")
RINGBUF = MapDef(27, 0, 0, 4096, name="ringbuf")
PERCPU_ARRAY = MapDef(6, 4, 32, 2, name="pcpu")
PROG_ARRAY = MapDef(3, 4, 4, 4, name="progs")
PERF_ARRAY = MapDef(4, 4, 4, 0, name="perf")
STACK_MAP = MapDef(23, 0, 8, 4, name="queue_stack")


@dataclass
class Case:
    name: str
    prog_type: int
    insns: list
    expect: str | None = None  # None: accepted; otherwise a substring of the kernel's reason
    attach: int = 0
    flags: int = 0
    tags: tuple = field(default_factory=tuple)
    priv: bool = True  # False: loaded with CAP_BPF (+CAP_NET_ADMIN) but without CAP_PERFMON


def mov(dst, src_or_imm):
    if isinstance(src_or_imm, R):
        return I(op.ALU64 | op.MOV | op.X, dst, src_or_imm)
    return I(op.ALU64 | op.MOV | op.K, dst, 0, 0, src_or_imm)


def mov32(dst, src_or_imm):
    if isinstance(src_or_imm, R):
        return I(op.ALU | op.MOV | op.X, dst, src_or_imm)
    return I(op.ALU | op.MOV | op.K, dst, 0, 0, src_or_imm)


class R(int):
    """A register operand, to tell ``add(r1, r2)`` from ``add(r1, 2)``."""


r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = (R(i) for i in range(11))


def alu(name, dst, src_or_imm, *, w32=False, off=0):
    cls = op.ALU if w32 else op.ALU64
    code = op.ALU_OPS[name]
    if isinstance(src_or_imm, R):
        return I(cls | code | op.X, dst, src_or_imm, off)
    return I(cls | code | op.K, dst, 0, off, src_or_imm)


def add(d, s): return alu("add", d, s)
def sub(d, s): return alu("sub", d, s)
def and_(d, s): return alu("and", d, s)
def or_(d, s): return alu("or", d, s)
def lsh(d, s): return alu("lsh", d, s)
def rsh(d, s): return alu("rsh", d, s)
def arsh(d, s): return alu("arsh", d, s)
def mul(d, s): return alu("mul", d, s)
def neg(d): return I(op.ALU64 | op.NEG, d)


def ldx(size, dst, src, off=0):
    return I(op.LDX | op.MEM | SZ[size], dst, src, off)


def ldxsx(size, dst, src, off=0):
    return I(op.LDX | op.MEMSX | SZ[size], dst, src, off)


def stx(size, dst, off, src):
    return I(op.STX | op.MEM | SZ[size], dst, src, off)


def st(size, dst, off, imm):
    return I(op.ST | op.MEM | SZ[size], dst, 0, off, imm)


def atomic(size, dst, off, src, imm=op.ATOMIC_ADD):
    return I(op.STX | op.ATOMIC | SZ[size], dst, src, off, imm)


def jmp(cond, dst, src_or_imm, off, *, w32=False):
    cls = op.JMP32 if w32 else op.JMP
    code = op.JMP_OPS[cond]
    if isinstance(src_or_imm, R):
        return I(cls | code | op.X, dst, src_or_imm, off)
    return I(cls | code | op.K, dst, 0, off, src_or_imm)


def ja(off):
    return I(op.JMP | op.JA, 0, 0, off)


def call(helper):
    return I(op.CALL_OP, 0, 0, 0, helper)


def call_local(rel):
    return I(op.CALL_OP, 0, op.PSEUDO_CALL, 0, rel)


def exit_():
    return I(op.EXIT_OP)


def ld_imm64(dst, imm):
    return I(op.LD_IMM64, dst, 0, 0, imm & ((1 << 64) - 1))


def ld_map(dst, mapdef):
    return I(op.LD_IMM64, dst, op.PSEUDO_MAP_FD, 0, 0, map=mapdef)


def ld_map_value(dst, mapdef, off=0):
    return I(op.LD_IMM64, dst, op.PSEUDO_MAP_VALUE, 0, off << 32, map=mapdef)


def ret(v=0):
    return [mov(r0, v), exit_()]


def lookup(mapdef, key_off=-8, key_val=0):
    """r0 = bpf_map_lookup_elem(map, &key) with a key written on the stack."""
    ks = mapdef.key_size
    out = []
    if ks in (1, 2, 4, 8):
        out.append(st(ks, r10, key_off, key_val))
    else:
        for o in range(0, ks, 8):
            out.append(st(8 if ks - o >= 8 else 4, r10, key_off + o, 0))
    out += [mov(r2, r10), add(r2, key_off), ld_map(r1, mapdef), call(1)]
    return out
