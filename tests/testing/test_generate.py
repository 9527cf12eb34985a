"""Generated programs and instructions are well-formed, without a kernel."""

import random

import pytest
from hypothesis import given, settings

from pybpf.asm import opcodes as op
from pybpf.asm.disasm import validate
from pybpf.asm.instruction import decode, encode
from pybpf.asm.text import parse
from pybpf.testing import generate, symbolize
from pybpf.testing.generate import MUTATIONS, SUPPORTED, mutations_for
from pybpf.testing.strategies import instructions, packets, programs

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@SETTINGS
@given(instructions())
def test_instructions_are_valid_encodings(insn):
    assert validate(insn) is None
    code = encode([insn])
    assert len(code) == 8 * insn.slots
    assert decode(code) == [insn]


@pytest.mark.parametrize("ptype", [t.bpftool_name for t in SUPPORTED])
def test_programs_encode_and_reassemble(ptype):
    @SETTINGS
    @given(programs(prog_type=ptype, valid=None, max_insns=48))
    def check(prog):
        code = prog.encode()
        assert 16 <= len(code) and len(prog) <= 48 + 2  # the epilogue may add a mov
        insns = prog.resolved()
        assert insns[-1].opcode == op.EXIT_OP
        for insn in insns:
            assert validate(insn) is None
        # The text form reads back to the same bytecode (maps by name, fd 0).
        assert parse(prog.text()).encode() == code
        for insn in prog.insns:
            if insn.map is not None:
                assert insn.map in prog.maps
        assert len(prog.packet) >= 14
        assert (prog.mutation is None) or prog.mutation in mutations_for(ptype)
    check()


def test_same_seed_same_program():
    a = generate(random.Random(7), "sched_cls", valid=None)
    b = generate(random.Random(7), "sched_cls", valid=None)
    assert a.encode() == b.encode() and a.mutation == b.mutation and a.packet == b.packet


def test_every_mutation_can_be_requested():
    for ptype in SUPPORTED:
        for name in mutations_for(ptype):
            prog = generate(random.Random(1), ptype, valid=False, mutation=name)
            assert prog.mutation == name
    assert set().union(*(mutations_for(t) for t in SUPPORTED)) == set(MUTATIONS)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lwt_in is not supported"):
        generate(random.Random(0), "lwt_in")
    with pytest.raises(ValueError, match="packet_oob.*does not apply to kprobe"):
        generate(random.Random(0), "kprobe", valid=False, mutation="packet_oob")
    with pytest.raises(ValueError, match="max_insns"):
        programs("xdp", max_insns=4)


def test_symbolize_round_trip():
    prog = generate(random.Random(3), "xdp", max_insns=64)
    raw = prog.resolved()
    insns, labels = symbolize(raw)
    assert encode(insns, labels) == prog.encode()
    assert any(i.target for i in insns) == any(i.target for i in prog.insns)


def test_without_keeps_jumps_on_instruction_boundaries():
    prog = generate(random.Random(5), "xdp", max_insns=64)
    for k in range(len(prog)):
        smaller = prog.without({k})
        assert len(smaller) == len(prog) - 1
        code = smaller.encode()  # every label still resolves
        slots = len(code) // 8
        for name, idx in smaller.labels.items():
            assert 0 <= idx <= len(smaller)
        assert slots >= len(smaller)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(packets())
def test_packets_are_ethernet_frames(pkt):
    assert 14 <= len(pkt) <= 128
    if pkt[12:14] == b"\x86\xdd":
        assert len(pkt) >= 54
