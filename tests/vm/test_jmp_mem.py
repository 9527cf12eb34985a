"""Jumps, calls and memory: conditions, bpf-to-bpf frames, loads/stores, atomics, errors."""

import itertools

import pytest

from pybpf import vm
from pybpf.asm import Builder, opcodes as op, r0, r1, r2, r3, r4, r6, r7, r8, r9, r10, w0, w1
from pybpf.asm.instruction import Instruction

from vm_kernel import kernel_run, needs_kernel

M = (1 << 64) - 1
CONDS = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"]
VALUES = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0001, 1 << 63, M]


def reference(cond: str, a: int, b: int, bits: int) -> bool:
    mask = (1 << bits) - 1
    a, b = a & mask, b & mask
    if cond.startswith("s"):
        a -= (a >> (bits - 1)) << bits
        b -= (b >> (bits - 1)) << bits
        cond = cond[1:]
    return {"==": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b,
            "&": bool(a & b)}[cond]


def branch(cond, a, b, wide, imm=False):
    p = Builder()
    p.ld_imm64(r1, a)
    p.ld_imm64(r2, b)
    p.mov(r0, 1)
    rhs = b if imm else (r2 if wide else r2.w)
    p.jump_if(r1 if wide else r1.w, cond, rhs, "taken")
    p.mov(r0, 0)
    p.label("taken")
    p.exit()
    return p


@pytest.mark.parametrize("cond", CONDS)
def test_conditions(cond):
    machine = vm.VM()
    for a, b in itertools.product(VALUES, VALUES):
        for wide in (True, False):
            got = machine.run(branch(cond, a, b, wide)).r0
            assert got == reference(cond, a, b, 64 if wide else 32), (cond, hex(a), hex(b), wide)


def test_immediate_is_sign_extended_in_64_bit_compare():
    assert vm.run(branch("==", M, -1, True, imm=True)).r0 == 1
    assert vm.run(branch("==", 0xFFFF_FFFF, -1, True, imm=True)).r0 == 0
    assert vm.run(branch("==", 0xFFFF_FFFF, -1, False, imm=True)).r0 == 1


@pytest.mark.kernel
@needs_kernel
def test_conditions_match_kernel():
    machine = vm.VM()
    pairs = [(0x8000_0000, 1), (M, 1), (1, M), (0x1_0000_0001, 2), (5, 5)]
    for cond in CONDS:
        for (a, b), wide in itertools.product(pairs, (True, False)):
            p = branch(cond, a, b, wide)
            k = kernel_run(p, "xdp", bytes(14))
            assert machine.run(p, prog_type="xdp", data=bytes(14)).retval == k.retval, (cond, a, b)


def test_ja_and_gotol():
    p = Builder()
    p.mov(r0, 1)
    p.ja("a")
    p.mov(r0, 2)
    p.label("a")
    p.gotol("b")
    p.mov(r0, 3)
    p.label("b")
    p.exit()
    assert vm.run(p).r0 == 1


def test_bpf_to_bpf_call_keeps_callee_saved_registers_and_own_stack():
    p = Builder()
    p.mov(r6, 7)
    p.st(r10, -8, 100, 8)
    p.mov(r1, 5)
    p.call_func("f")
    p.ldx(r1, r10, -8, 8)  # the caller's stack slot survives
    p.add(r0, r1)
    p.add(r0, r6)  # r6 restored
    p.exit()
    p.label("f")
    p.st(r10, -8, 1000, 8)  # the callee's own frame
    p.mov(r6, 99)
    p.mov(r0, r1)
    p.mul(r0, 2)
    p.exit()
    assert vm.run(p).r0 == 10 + 100 + 7


def test_call_depth_is_limited():
    p = Builder()
    p.label("f")
    p.call_func("f")
    p.exit()
    with pytest.raises(vm.VMError, match="call stack of 9 frames is too deep"):
        vm.run(p)


def test_infinite_loop_stops_at_insn_limit():
    p = Builder()
    p.label("l")
    p.ja("l")
    with pytest.raises(vm.VMError, match="instruction limit"):
        vm.VM(insn_limit=10_000).run(p)


def test_stack_sizes_and_sign_extending_loads():
    p = Builder()
    p.ld_imm64(r1, 0x8182_8384_8586_8788)
    p.stx(r10, -8, r1, 8)
    p.ldx(r2, r10, -8, 1)
    p.ldx(r3, r10, -8, 2)
    p.ldxsx(r4, r10, -8, 1)
    p.ldxsx(r6, r10, -8, 2)
    p.ldxsx(r7, r10, -8, 4)
    p.st(r10, -16, -1, 4)
    p.ldx(r8, r10, -16, 4)
    p.stx(r10, -20, r1, 2)
    p.ldx(r9, r10, -20, 2)
    p.mov(r0, 0)
    p.exit()
    machine = vm.VM()
    regs = {}

    def grab(r):
        regs.update(enumerate(r))
        return 0
    machine._helpers[0] = grab
    p.insns.insert(-2, Instruction(op.CALL_OP, 0, 0, 0, 0))
    machine.run(p)
    assert regs[2] == 0x88 and regs[3] == 0x8788
    assert regs[4] == 0xFFFF_FFFF_FFFF_FF88
    assert regs[6] == 0xFFFF_FFFF_FFFF_8788
    assert regs[7] == 0xFFFF_FFFF_8586_8788
    assert regs[8] == 0xFFFF_FFFF and regs[9] == 0x8788


def atomics_program(size):
    """Every atomic op on a stack slot; fetched values summed into r0 (then the slot added)."""
    p = Builder()
    p.st(r10, -8, 0, 8)
    p.ld_imm64(r1, 0x1_0000_00F0 if size == 8 else 0xF0)
    p.stx(r10, -8, r1, size)
    p.mov(r0, 0)
    for name, operand in [("atomic_add", 0x0F), ("atomic_or", 0x100), ("atomic_and", 0x1FF),
                          ("atomic_xor", 0x3), ("xchg", 0x55)]:
        p.mov(r2, operand)
        if name == "xchg":
            p.xchg(r10, -8, r2, size)
        else:
            getattr(p, name)(r10, -8, r2, size, fetch=True)
        p.add(r0, r2)
        p.mul(r0, 3)
    p.mov(r0, 0x55)  # cmpxchg succeeds: expected == current
    p.mov(r2, 0x77)
    p.cmpxchg(r10, -8, r2, size)
    p.mov(r6, r0)
    p.mov(r0, 1)  # fails
    p.cmpxchg(r10, -8, r2, size)
    p.add(r0, r6)
    p.mov(r3, 4)
    p.atomic_add(r10, -8, r3, size)  # no fetch: r3 unchanged
    p.add(r0, r3)
    p.ldx(r1, r10, -8, 8)
    p.lsh(r1, 16)
    p.add(r0, r1)
    p.exit()
    return p


@pytest.mark.parametrize("size", [4, 8])
def test_atomics(size):
    r0_ = vm.run(atomics_program(size)).r0
    assert r0_ >> 16 == 0x77 + 4  # xchg 0x55, cmpxchg 0x55 -> 0x77, then add 4
    assert r0_ & 0xFFFF == (0x77 + 0x55 + 4) & 0xFFFF


@pytest.mark.kernel
@needs_kernel
@pytest.mark.parametrize("size", [4, 8])
def test_atomics_match_kernel(size):
    p = atomics_program(size)
    k = kernel_run(p, "xdp", bytes(14))
    assert vm.run(p, prog_type="xdp", data=bytes(14)).retval == k.retval


# -- memory errors --------------------------------------------------------------------------
def test_stack_out_of_bounds_names_insn_source_and_offset():
    p = Builder()
    p.mov(r0, 0)
    p.ld_imm64(r1, 1)
    p.stx(r10, -520, r1, 8)
    p.exit()
    with pytest.raises(vm.VMError) as exc:
        vm.run(p)
    err = exc.value
    assert err.slot == 3 and err.index == 2  # ld_imm64 takes two slots
    assert err.source.endswith(f"test_jmp_mem.py:{p.insns[2].source.rsplit(':', 1)[1]}")
    assert "invalid access to stack: write off=-520 size=8" in str(err)
    assert str(err).startswith("insn 3, at ")
    assert err.address is not None


def test_null_dereference():
    p = Builder()
    p.mov(r1, 0)
    p.ldx(r0, r1, 0, 4)
    p.exit()
    with pytest.raises(vm.VMError, match=r"insn 1, .*invalid mem access 'NULL pointer'"):
        vm.run(p)


def test_scalar_used_as_pointer():
    p = Builder()
    p.ld_imm64(r1, 0x1234_5678_9ABC)
    p.st(r1, 0, 1, 4)
    p.exit()
    with pytest.raises(vm.VMError, match=r"invalid mem access 'scalar'.*0x123456789abc"):
        vm.run(p)


def test_packet_bounds_and_ctx_fields():
    p = Builder()
    p.ldx(r2, r1, 0, 4)  # data
    p.ldx(r3, r1, 4, 4)  # data_end
    p.mov(r0, r3)
    p.sub(r0, r2)  # data_end - data
    p.ldx(r4, r2, 59, 1)  # last byte of a 60-byte packet: fine
    p.add(r0, r4)
    p.ldx(r4, r2, 60, 1)  # one past: fault
    p.exit()
    data = bytes(59) + b"\x05"
    with pytest.raises(vm.VMError, match=r"insn 6.*invalid access to packet: read off=60 size=1"):
        vm.run(p, prog_type="xdp", data=data)
    p.insns.pop(-2)
    assert vm.run(p, prog_type="xdp", data=data).r0 == 65


def test_ctx_rules():
    p = Builder()
    p.ldx(r0, r1, 0, 8)  # data is a 4-byte field
    p.exit()
    with pytest.raises(vm.VMError, match="invalid bpf_context access off=0 size=8"):
        vm.run(p, prog_type="xdp", data=bytes(14))
    p = Builder()
    p.st(r1, 12, 1, 4)  # xdp_md is read-only
    p.exit()
    with pytest.raises(vm.VMError, match="invalid bpf_context access off=12 size=4"):
        vm.run(p, prog_type="xdp", data=bytes(14))


def test_skb_ctx_mark_and_cb_are_writable_and_returned():
    p = Builder()
    p.st(r1, 8, 0x1234, 4)  # mark
    p.st(r1, 52, 7, 4)  # cb[1]
    p.ldx(r0, r1, 0, 4)  # len
    p.exit()
    res = vm.run(p, prog_type="sched_cls", data=bytes(40), ctx=bytes(192))
    assert res.retval == 40
    assert res.ctx_out[8:12] == (0x1234).to_bytes(4, "little")
    assert res.ctx_out[52:56] == (7).to_bytes(4, "little")


@pytest.mark.kernel
@needs_kernel
def test_skb_ctx_matches_kernel():
    def prog(ptype):
        p = Builder()
        p.mov(r6, r1)
        if ptype == "sched_cls":  # socket filters may only write cb[]
            p.st(r6, 8, 0x1234, 4)
        p.st(r6, 56, 9, 4)
        p.ldx(r0, r6, 0, 4)  # len
        p.ldx(r2, r6, 16, 4)  # protocol
        p.lsh(r2, 8)
        p.add(r0, r2)
        p.ldx(r2, r6, 4, 4)  # pkt_type
        p.lsh(r2, 28)
        p.add(r0, r2)
        p.ldx(r2, r6, 40, 4)  # ifindex
        p.lsh(r2, 30)
        p.add(r0, r2)
        p.exit()
        return p
    for dest in (bytes(6), b"\xff" * 6, b"\x01" + bytes(5), b"\x02" + bytes(5)):
        for ptype in ("socket_filter", "sched_cls"):
            for proto in (b"\x08\x00", b"\x86\xdd", b"\x00\x20"):
                data = dest + bytes(6) + proto + bytes(range(40))
                k = kernel_run(prog(ptype), ptype, data, bytes(192))
                v = vm.run(prog(ptype), prog_type=ptype, data=data, ctx=bytes(192))
                assert (v.retval, v.data_out, v.ctx_out) == (k.retval, k.data_out, k.ctx_out), \
                    (dest, ptype, proto)


def test_ld_abs_and_ld_ind_read_big_endian_and_exit_on_overrun():
    p = Builder()
    p.mov(r6, r1)
    p.ld_abs(2, 12)  # socket filters see the network header at offset 0
    p.mov(r7, r0)
    p.mov(r2, 1)
    p.ld_ind(4, r2, 0)
    p.add(r0, r7)
    p.exit()
    data = bytes(14) + b"\x00\x01\x02\x03\x04" + bytes(9)
    assert vm.run(p, prog_type="socket_filter", data=data).r0 == 0x0102_0304
    p.insns.insert(2, p.insns[1].replace(imm=100))  # beyond the packet: program returns 0
    res = vm.run(p, prog_type="socket_filter", data=data)
    assert res.r0 == 0 and res.insns == 3
