"""Per-instruction semantics of ALU/ALU64 and byte swaps.

Each case computes r0 from constants; the expected value is the kernel's
documented result (division by zero, INT_MIN / -1, shift masking, ALU32
zero-extension, ...). The same table runs on the real kernel: the program
writes the 64-bit r0 into the packet, so data_out shows all of it.
"""

import pytest

from pybpf import vm
from pybpf.asm import Builder, opcodes as op, r0, r1, r2, r3, w0, w1
from pybpf.asm.instruction import Instruction

from vm_kernel import kernel_run, needs_kernel

M = (1 << 64) - 1
INT64_MIN = 1 << 63


def case(setup, expected):
    return pytest.param(setup, expected, id=f"{expected:#x}")


def body(b, a, bval):
    b.ld_imm64(r0, a & M)
    b.ld_imm64(r1, bval & M)


CASES = [
    # name, fn(b) emitting ops on r0 (r0 = a, r1 = b preloaded), a, b, expected r0
    ("add64 wrap", lambda b: b.add(r0, r1), M, 2, 1),
    ("add32 zero-extends", lambda b: b.add(w0, w1), 0xFFFF_FFFF_0000_0001, 0xFFFF_FFFF, 0),
    ("sub32 wraps", lambda b: b.sub(w0, w1), 1, 2, 0xFFFF_FFFF),
    ("mul64", lambda b: b.mul(r0, r1), 0x1_0000_0001, 0x1_0000_0001, 0x2_0000_0001),
    ("mul32", lambda b: b.mul(w0, w1), 0x1_8000_0000, 3, 0x8000_0000),
    ("div64", lambda b: b.div(r0, r1), M, 2, M >> 1),
    ("div64 by zero is 0", lambda b: b.div(r0, r1), 1234, 0, 0),
    ("div32 by zero is 0", lambda b: b.div(w0, w1), 1234, 0, 0),
    ("div32 ignores upper", lambda b: b.div(w0, w1), 0x5_0000_0010, 0x1_0000_0004, 4),
    ("mod64 by zero keeps dst", lambda b: b.mod(r0, r1), 0x1_2345_6789, 0, 0x1_2345_6789),
    ("mod32 by zero zero-extends dst", lambda b: b.mod(w0, w1), 0x1_2345_6789, 0, 0x2345_6789),
    ("mod64", lambda b: b.mod(r0, r1), 100, 7, 2),
    ("sdiv64", lambda b: b.sdiv(r0, r1), -7, 2, -3 & M),
    ("sdiv64 INT_MIN/-1", lambda b: b.sdiv(r0, r1), INT64_MIN, -1, INT64_MIN),
    ("sdiv64 by zero", lambda b: b.sdiv(r0, r1), -7, 0, 0),
    ("sdiv32 INT_MIN/-1", lambda b: b.sdiv(w0, w1), 0x8000_0000, -1, 0x8000_0000),
    ("sdiv32", lambda b: b.sdiv(w0, w1), -9, 4, (-2) & 0xFFFF_FFFF),
    ("smod64 sign of dividend", lambda b: b.smod(r0, r1), -7, 2, -1 & M),
    ("smod64 INT_MIN%-1", lambda b: b.smod(r0, r1), INT64_MIN, -1, 0),
    ("smod64 by zero keeps", lambda b: b.smod(r0, r1), -7, 0, -7 & M),
    ("smod32 by zero zero-extends", lambda b: b.smod(w0, w1), -7, 0, (-7) & 0xFFFF_FFFF),
    ("smod32", lambda b: b.smod(w0, w1), 7, -3, 1),
    ("lsh64 masks by 63", lambda b: b.lsh(r0, r1), 1, 65, 2),
    ("lsh32 masks by 31", lambda b: b.lsh(w0, w1), 1, 33, 2),
    ("rsh64", lambda b: b.rsh(r0, r1), INT64_MIN, 63, 1),
    ("rsh32 uses low half", lambda b: b.rsh(w0, w1), 0xF_8000_0000, 31, 1),
    ("arsh64", lambda b: b.arsh(r0, r1), INT64_MIN, 63, M),
    ("arsh32", lambda b: b.arsh(w0, w1), 0x8000_0000, 31, 0xFFFF_FFFF),
    ("arsh32 positive", lambda b: b.arsh(w0, w1), 0xF_4000_0000, 30, 1),
    ("neg64", lambda b: b.neg(r0), 1, 0, M),
    ("neg32", lambda b: b.neg(w0), 1, 0, 0xFFFF_FFFF),
    ("and32", lambda b: b.and_(w0, w1), M, 0xF0F0_F0F0_F0F0_F0F0, 0xF0F0_F0F0),
    ("or64", lambda b: b.or_(r0, r1), 0xF0, 0x0F, 0xFF),
    ("xor32", lambda b: b.xor(w0, w1), 0xFFFF_FFFF_FFFF_FFFF, 1, 0xFFFF_FFFE),
    ("mov32 zero-extends", lambda b: b.mov(w0, w1), 0, M, 0xFFFF_FFFF),
    ("movsx64 8", lambda b: b.movsx(r0, r1, 8), 0, 0x80, 0xFFFF_FFFF_FFFF_FF80),
    ("movsx64 16", lambda b: b.movsx(r0, r1, 16), 0, 0x7FFF, 0x7FFF),
    ("movsx64 32", lambda b: b.movsx(r0, r1, 32), 0, 0x8000_0000, 0xFFFF_FFFF_8000_0000),
    ("movsx32 8", lambda b: b.movsx(w0, w1, 8), 0, 0xFF, 0xFFFF_FFFF),
    ("movsx32 16", lambda b: b.movsx(w0, w1, 16), 0, 0x8001, 0xFFFF_8001),
    ("be16", lambda b: b.be(r0, 16), 0x1122_3344_5566_7788, 0, 0x8877),
    ("be32", lambda b: b.be(r0, 32), 0x1122_3344_5566_7788, 0, 0x8877_6655),
    ("be64", lambda b: b.be(r0, 64), 0x1122_3344_5566_7788, 0, 0x8877_6655_4433_2211),
    ("le16 truncates", lambda b: b.le(r0, 16), 0x1122_3344_5566_7788, 0, 0x7788),
    ("le32 truncates", lambda b: b.le(r0, 32), 0x1122_3344_5566_7788, 0, 0x5566_7788),
    ("le64 no-op", lambda b: b.le(r0, 64), 0x1122_3344_5566_7788, 0, 0x1122_3344_5566_7788),
    ("bswap16", lambda b: b.bswap(r0, 16), 0x1122_3344_5566_7788, 0, 0x8877),
    ("bswap32", lambda b: b.bswap(r0, 32), 0x1122_3344_5566_7788, 0, 0x8877_6655),
    ("bswap64", lambda b: b.bswap(r0, 64), 0x1122_3344_5566_7788, 0, 0x8877_6655_4433_2211),
    ("add imm sign-extends", lambda b: b.add(r0, -1), 0, 0, M),
    ("add32 imm", lambda b: b.add(w0, -1), 0x1_0000_0000, 0, 0xFFFF_FFFF),
    ("and imm sign-extends", lambda b: b.and_(r0, -2), M, 0, M - 1),
    ("div imm", lambda b: b.div(r0, 3), 10, 0, 3),
    ("sdiv imm", lambda b: b.sdiv(r0, -3), 10, 0, -3 & M),
    ("mod imm 32", lambda b: b.mod(w0, 3), 0x1_0000_000A, 0, 1),
    ("lsh imm", lambda b: b.lsh(r0, 63), 1, 0, INT64_MIN),
    ("arsh32 imm", lambda b: b.arsh(w0, 4), 0x8000_0000, 0, 0xF800_0000),
]


def program(fn, a, bval, *, to_packet: bool = False):
    b = Builder()
    if to_packet:
        b.mov(r3, r1)  # ctx
    body(b, a, bval)
    fn(b)
    if to_packet:  # *(u64 *)data = r0, behind a bounds check
        b.ldx(r2, r3, 0, 4)
        b.ldx(r3, r3, 4, 4)
        b.mov(r1, r2)
        b.add(r1, 8)
        b.jgt(r1, r3, "out")
        b.stx(r2, 0, r0, 8)
        b.label("out")
    b.exit()
    return b


@pytest.mark.parametrize("name,fn,a,bval,expected", CASES, ids=[c[0] for c in CASES])
def test_alu_semantics(name, fn, a, bval, expected):
    res = vm.run(program(fn, a, bval))
    assert res.r0 == expected
    assert res.retval == expected & 0xFFFF_FFFF


@pytest.mark.kernel
@needs_kernel
def test_alu_table_matches_kernel():
    """The expected values above are the kernel's: run every case through BPF_PROG_TEST_RUN."""
    packet = bytes(range(64))
    machine = vm.VM()
    for name, fn, a, bval, expected in CASES:
        insns = program(fn, a, bval, to_packet=True)
        k = kernel_run(insns, "xdp", packet)
        v = machine.run(insns, prog_type="xdp", data=packet)
        assert int.from_bytes(k.data_out[:8], "little") == expected, name
        assert (v.retval, v.data_out) == (k.retval, k.data_out), name


def test_alu32_result_is_zero_extended_even_when_upper_bits_set():
    b = Builder()
    b.ld_imm64(r0, 0xDEAD_BEEF_0000_0000)
    b.add(w0, 5)
    b.exit()
    assert vm.run(b).r0 == 5


def test_reserved_fields_are_rejected():
    insn = Instruction(op.ALU64 | op.ADD | op.K, 0, 3, 0, 1)  # src must be 0 for K
    with pytest.raises(vm.VMError, match="reserved fields"):
        vm.run([insn, Instruction(op.EXIT_OP)])


def test_writing_r10_is_rejected():
    with pytest.raises(vm.VMError, match="frame pointer is read only"):
        vm.run([Instruction(op.ALU64 | op.MOV | op.K, 10, 0, 0, 1), Instruction(op.EXIT_OP)])


def test_unknown_opcode_names_the_instruction():
    with pytest.raises(vm.VMError, match=r"^insn 1: invalid BPF_ALU opcode e0$"):
        vm.run([Instruction(op.ALU64 | op.MOV | op.K, 0, 0, 0, 1), Instruction(0xE7), Instruction(op.EXIT_OP)])
