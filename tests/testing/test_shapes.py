"""The audit-shaped blocks (pybpf.testing.shapes): generated, well-formed, accepted by the kernel."""

import os
import random
import re

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction
from pybpf.errors import VerifierError
from pybpf.program import Program
from pybpf.program.types import prog_type
from pybpf.testing import generate, shapes
from pybpf.testing.blocks import Gen
from pybpf.testing.generate import _maps
from pybpf.testing.program import GeneratedProgram

NAMES = [fn.__name__ for fn, _ in shapes.SHAPES]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for BPF_PROG_LOAD")


def shaped(rng, ptype, name, count=2):
    """A program of ``count`` blocks of shape ``name`` between the generator's prologue and
    epilogue (so no other block can make it valid or invalid)."""
    ptype = prog_type(ptype)
    maps = _maps(rng)
    g = Gen(rng, ptype, maps)
    g.prologue()
    fn = dict((f.__name__, f) for f, _ in shapes.SHAPES)[name]
    for _ in range(count):
        fn(g)
    g.epilogue()
    used = tuple(m for m in maps if any(i.map is m for i in g.b.insns))
    return GeneratedProgram(tuple(g.b.insns), dict(g.b.labels), ptype, used, None, b"\0" * 64)


def _jumps(prog):
    return [i for i in prog.resolved() if i.opcode & 0x07 in (op.JMP, op.JMP32)
            and i.opcode not in (op.CALL_OP, op.EXIT_OP, op.JA_OP)]


def _alu(insn, code):
    """``insn`` is the ALU or ALU64 operation ``code`` (operation | source bit)."""
    return insn.opcode & 0x07 in (op.ALU, op.ALU64) and insn.opcode & 0xF8 == code


# What each shape leaves in the bytecode, checked on the resolved instructions.
def _has(name, prog):
    insns = prog.resolved()
    jumps = _jumps(prog)
    if name == "linked_scalars":  # rB = rA (mov X) then rA += k, later rA used as an offset
        return any(_alu(a, op.MOV | op.X) and _alu(b, op.ADD | op.K) and b.dst == a.src
                   for a, b in zip(insns, insns[1:]))
    if name == "spill_fill":  # a scalar store to the frame and a load back at a related slot
        stores = {i.off for i in insns if i.opcode & 0x07 in (op.STX, op.ST) and i.dst == 10
                  and i.off > -80}
        return any(i.opcode & 0x07 == op.LDX and i.src == 10 and (i.off in stores or i.off - 4 in stores)
                   for i in insns)
    if name == "ptr_eq":  # a register-register JEQ/JNE: two pointers compared
        return any(j.opcode in (op.JMP | op.JEQ | op.X, op.JMP | op.JNE | op.X) for j in jumps)
    if name == "flag_chain":
        return sum(j.opcode & 0xF0 == op.JSET for j in jumps) >= 2 or \
            sum(j.off == 0 for j in jumps) >= 2  # the spill/compare variant: goto +0
    if name == "sign_boundary":  # jmp32 compares at the s32 sign boundary
        near = [j for j in jumps if j.opcode & 0x07 == op.JMP32
                and abs((j.imm & 0xFFFFFFFF) - 0x80000000) <= 0x100]
        return len(near) >= 1
    if name == "precise_diamond":  # two constants into one register on two paths
        return any(j.opcode == op.JA_OP for j in insns)
    raise AssertionError(name)


def test_shapes_are_mixed_into_generation():
    """A seeded run of the ordinary generator contains every shape, at modest frequency."""
    rng = random.Random(20261127)
    seen = {n: 0 for n in NAMES}
    progs = [generate(rng, t, valid=True) for t in ("socket_filter", "xdp", "tracepoint")
             for _ in range(150)]
    prefixes = {"linked_scalars": ".link", "spill_fill": ".fill", "ptr_eq": ".ptreq",
                "flag_chain": ".flag", "sign_boundary": ".s32", "precise_diamond": ".dia"}
    for prog in progs:
        for name, prefix in prefixes.items():
            if any(label.startswith(prefix) for label in prog.labels):
                seen[name] += 1
    assert all(seen.values()), seen
    # modest: most programs are still made of the original idioms only
    assert sum(any(l.startswith(tuple(prefixes.values())) for l in p.labels) for p in progs) \
        < 0.6 * len(progs)


@pytest.mark.parametrize("name", NAMES)
def test_each_shape_emits_its_construct(name):
    rng = random.Random(name)
    progs = [shaped(rng, "socket_filter", name) for _ in range(20)]
    assert sum(_has(name, p) for p in progs) >= 15, name
    for prog in progs:
        assert prog.resolved()[-1].opcode == op.EXIT_OP
        assert len(prog) < 200


def test_sign_boundary_immediates():
    """The checks sit right at 0x7fffffff/0x80000000 and the rebase crosses it."""
    rng = random.Random(5)
    text = "\n".join(shaped(rng, "xdp", "sign_boundary").text() for _ in range(10))
    assert re.search(r"if w1 (<|<=|>|>=) 0x7fffff", text)
    assert re.search(r"if w1 (>|>=) 0x800000", text)
    assert re.search(r"if w1 s(<|<=|>|>=) ", text)


@pytest.mark.kernel
@needs_root
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ptype", ["socket_filter", "xdp", "sched_cls", "tracepoint", "kprobe",
                                   "cgroup_skb"])
def test_kernel_accepts_each_shape(name, ptype):
    rng = random.Random(f"{name}:{ptype}")
    for _ in range(8):
        prog = shaped(rng, ptype, name, count=rng.randint(1, 3))
        ok, why = _accepted(prog)
        assert ok, f"{name} on {ptype}: kernel rejected ({why}):\n{prog.text()}"


@pytest.mark.kernel
@needs_root
@pytest.mark.parametrize("name", ["linked_scalars", "sign_boundary"])
def test_bounds_are_needed(name):
    """The shapes are tight: with the bound checks after the NULL check turned into
    ``goto +0`` the kernel rejects the program, so an accepted one used the deduced fact."""
    rng = random.Random(f"tight:{name}")
    for _ in range(6):
        prog = shaped(rng, "socket_filter", name, count=1)
        insns = list(prog.insns)
        null_check = max(k for k, i in enumerate(insns) if i.opcode == op.CALL_OP) + 1
        for k in range(null_check + 1, len(insns)):
            if insns[k].target and insns[k].opcode & 0x07 in (op.JMP, op.JMP32) \
                    and insns[k].opcode != op.JA_OP:
                insns[k] = Instruction(op.JA_OP)
        cut = GeneratedProgram(tuple(insns), prog.labels, prog.prog_type, prog.maps)
        assert _accepted(prog)[0]
        ok, why = _accepted(cut)
        assert not ok, f"{name}: accepted without its bounds:\n{cut.text()}"


def _accepted(prog):
    try:
        with Program.load(prog.spec(), verify=False):
            return True, None
    except VerifierError as exc:
        return False, exc.error
