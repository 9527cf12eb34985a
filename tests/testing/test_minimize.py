"""Delta debugging finds the minimal set of instructions that keeps a property."""

import os
import random

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction
from pybpf.testing import ddmin, generate, minimize_program


def test_ddmin_finds_the_two_needed_items():
    items = list(range(50))
    calls = []

    def test(sub):
        calls.append(1)
        return 13 in sub and 37 in sub

    assert ddmin(items, test) == [13, 37]
    assert len(calls) < 200


def test_ddmin_keeps_order_and_respects_budget():
    items = list("abcdefghij")
    assert ddmin(items, lambda s: "j" in s and "a" in s) == ["a", "j"]
    # With a budget of one call nothing can be removed.
    assert ddmin(items, lambda s: "j" in s, max_tests=0) == items


def test_minimize_program_to_two_instructions():
    prog = generate(random.Random(9), "xdp", max_insns=64)
    a, b = prog.insns[3], prog.insns[-2]

    def has_both(p):
        keys = [i.key() for i in p.insns]
        return a.key() in keys and b.key() in keys

    small = minimize_program(prog, has_both)
    assert [i.key() for i in small.insns] == [a.key(), b.key()]
    small.encode()  # still well-formed


def test_minimize_keeps_jumps_well_formed():
    # Keep: the first conditional jump and the exit; everything between goes.
    prog = generate(random.Random(4), "sched_cls", max_insns=64)
    jumps = [i for i in prog.insns if i.target is not None]
    assert jumps, "the generated program has a jump"
    j = jumps[0]

    def keep(p):
        p.encode()
        return any(i.target == j.target for i in p.insns) and p.insns[-1].opcode == op.EXIT_OP

    small = minimize_program(prog, keep)
    assert len(small) == 2
    assert small.labels[j.target] <= len(small)
    assert small.insns[-1] == Instruction(op.EXIT_OP)


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for BPF_PROG_LOAD")
def test_minimize_a_kernel_rejection_to_its_cause():
    from pybpf.errors import VerifierError
    from pybpf.program import Program

    prog = generate(random.Random(1), "xdp", valid=False, mutation="missing_null_check",
                    max_insns=64)

    def rejected_for_null(p):
        try:
            with Program.load(p.spec(), verify=False):
                return False
        except VerifierError as exc:
            return "map_value_or_null" in exc.error

    assert rejected_for_null(prog)
    small = minimize_program(prog, rejected_for_null)
    # store key, map fd, key pointer (2), call, the unchecked load: the cause alone.
    assert len(small) <= 7 < len(prog)
    assert rejected_for_null(small)
    assert any(i.opcode == op.CALL_OP and i.imm == 1 for i in small.insns)
