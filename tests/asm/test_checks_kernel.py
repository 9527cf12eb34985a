"""The assembler's and the DSL's checks against the running kernel: what they now refuse, the
kernel refuses too (with the same words where it has them), and what they emit runs as meant.

Loaded through asm_kernel's bare bpf(2) calls, not pybpf.program, so that only the asm
layer is under test.
"""

import os

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.builder import Builder
from pybpf.asm.errors import AssemblerError
from pybpf.asm.instruction import Instruction as I, encode
from pybpf.asm.registers import r0, r1, r2, r6, r7, r10, w0, w1
from pybpf.asm.text import assemble, assemble_bytes

import asm_kernel

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not asm_kernel.can_bpf(), reason="needs root and bpf(2)"),
]


def kernel_rejects(code: bytes) -> str:
    """The last words of the verifier log for bytecode the kernel must refuse."""
    fd, err, log = asm_kernel.prog_load(code)
    if fd >= 0:
        os.close(fd)
        pytest.fail("the kernel accepted the program")
    return log


@pytest.fixture
def array_map():
    fd = asm_kernel.create_array_map(value_size=64, max_entries=1)
    assert fd >= 0

    class ArrayMap:  # what the DSL reads from a Map: its fd and value size
        value_size = 64

    m = ArrayMap()
    m.fd = fd
    yield m
    os.close(fd)


def test_a_label_named_pc5_is_jumped_to():
    code = assemble_bytes("r0 = 0\nif r0 == 0 goto pc5\nr0 = 1\nexit\npc5:\nr0 = 2\nexit\n")
    assert asm_kernel.load_and_run(code) == 2


@pytest.mark.parametrize("text,kernel_says", [
    ("goto +100\nexit", "jump out of range from insn 0 to 101"),
    ("r0 = 0\ngoto pc+1\nexit", "jump out of range from insn 1 to 3"),
    ("r0 = 0\nr1 = 0x1\nif r0 > 0 goto pc-5\nexit", "jump out of range from insn 3 to -1"),
])
def test_jumps_the_assembler_refuses_the_kernel_refuses(text, kernel_says):
    with pytest.raises(AssemblerError, match="jump out of range"):
        assemble_bytes(text)
    assert kernel_says in kernel_rejects(encode(assemble(text)))


def test_a_jump_into_an_ld_imm64_is_refused_by_both():
    text = "r0 = 0\ngoto +1\nr1 = 0x1\nexit"
    with pytest.raises(AssemblerError, match="into the middle of ld_imm64"):
        assemble_bytes(text)
    kernel_rejects(encode(assemble(text)))


def test_map_value_offsets_at_the_value_size_edge(array_map):
    b = Builder()
    b.ld_map_value(r1, array_map, off=63)  # the last byte: accepted and readable
    b.ldx(r0, r1, 0, 1)
    b.exit()
    assert asm_kernel.load_and_run(b.encode()) == 0
    with pytest.raises(AssemblerError, match="invalid access to map value pointer, value_size=64 off=64"):
        Builder().ld_map_value(r1, array_map, off=64)
    raw = encode([I(op.LD_IMM64, 1, op.PSEUDO_MAP_VALUE, 0, array_map.fd | 64 << 32), I(0x71, 0, 1), I(op.EXIT_OP)])
    assert "invalid access to map value pointer, value_size=64 off=64" in kernel_rejects(raw)


def test_the_old_encoding_of_a_huge_offset_was_silently_accepted(array_map):
    """Why the range check: off=1<<33 used to encode as offset 0, which the kernel loads."""
    with pytest.raises(AssemblerError, match="map value offset 8589934592 out of range"):
        Builder().ld_map_value(r1, array_map, off=1 << 33)
    wrapped = encode([I(op.LD_IMM64, 1, op.PSEUDO_MAP_VALUE, 0, (array_map.fd | (1 << 33) << 32) & ((1 << 64) - 1)),
                      I(0xB7, 0), I(op.EXIT_OP)])
    assert asm_kernel.load_and_run(wrapped) == 0


def test_a_raw_fd_map_reference_loads(array_map):
    b = Builder()
    b.st(r10, -4, 0, 4)                      # key 0
    b.map_lookup(array_map.fd, key_at=-4)    # an int: the fd as is, nothing to relocate
    b.mov(r1, r0)
    b.mov(r0, 7)
    with b.if_(r1, "==", 0):
        b.mov(r0, 1)
    b.exit()
    assert b.insns[1].map is None and b.insns[1].imm == array_map.fd
    assert asm_kernel.load_and_run(b.encode()) == 7


# (start, stop, step): Python's range and the kernel's loop must agree, negative bounds included
RANGES = [(-5, 5, 1), (5, -5, -1), (-3, -10, -2), (0, 10, 3), (3, 3, 1), (2, -2, 1), (-2, 2, -1),
          (-0x80000000, -0x7FFFFFFC, 1)]


@pytest.mark.parametrize("start,stop,step", RANGES)
def test_for_range_runs_like_python_range(start, stop, step):
    b = Builder()
    b.mov(r6, 0)                         # iterations
    b.mov(r0, 0)                         # sum of the counter
    with b.for_range(r7, start, stop, step):
        b.add(r6, 1)
        b.add(r0, r7)
    b.mul(r6, 1000)
    b.add(r0, r6)
    b.exit()
    expect = sum(range(start, stop, step)) + 1000 * len(range(start, stop, step))
    assert asm_kernel.load_and_run(b.encode()) == expect & 0xFFFFFFFF


def test_for_range_with_a_register_bound_and_a_32_bit_counter():
    b = Builder()
    b.mov(r2, -3)
    b.mov(r0, 0)
    with b.for_range(r7, -6, r2):        # r7 = -6, -5, -4
        b.add(r0, 1)
    b.mov(w1, 0)
    with b.for_range(w1, 2, -2, -1):     # w1 = 2, 1, 0, -1: jmp32 s<=
        b.add(w0, 10)
    b.exit()
    assert asm_kernel.load_and_run(b.encode()) == 3 + 40


@pytest.mark.parametrize("insns,kernel_says", [
    ([I(0xBF, 6, 1), I(op.LD | op.ABS | op.DW, 0, 0, 0, 4), I(op.EXIT_OP)], "unknown opcode 38"),
    ([I(0xBF, 1, 10), I(0x07, 1, 0, 0, -8), I(0x7A, 10, 0, -8, 0), I(0xB7, 2, 0, 0, 1),
      I(op.STX | op.ATOMIC | op.B, 1, 2, 0, op.ATOMIC_ADD), I(0xB7, 0), I(op.EXIT_OP)], "invalid atomic operand size"),
    ([I(0xB4, 2), I(op.ALU | op.MOV | op.X, 1, 2, 32), I(0xB7, 0), I(op.EXIT_OP)], "BPF_MOV uses reserved fields"),
])
def test_encodings_the_assembler_refuses_the_kernel_refuses(insns, kernel_says):
    assert kernel_says in kernel_rejects(encode(insns))


def test_the_dsl_and_text_refuse_those_encodings():
    with pytest.raises(AssemblerError, match="legacy packet loads"):
        Builder().ld_abs(8, 4)
    with pytest.raises(AssemblerError, match="invalid size 'u8' for atomic"):
        assemble_bytes("lock *(u8 *)(r1 +0) += r2")
    with pytest.raises(AssemblerError, match=r"\(s32\) sign extension needs r registers"):
        assemble_bytes("w1 = (s32)w2")
