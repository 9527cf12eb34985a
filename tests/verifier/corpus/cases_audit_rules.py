"""Instruction, ctx and load-flag rules the verifier audit found the simulator getting wrong.

One minimal program per finding, with the kernel's verdict: reserved fields
(ld_imm64 dst, LD_ABS, MOV), the opcode table (LDX MEMSX DW), the order of the
kernel's whole-program passes (jump ranges before the opcode table), the
no-BTF subprogram rules, sign-extending ctx loads of packet pointers, the
sk_lookup tail padding, pointer sign-extension for a privileged loader, and
the prog_flags / program-type checks bpf_prog_load() makes before verifying.
"""

from dsl import (ARRAY, PROG_ARRAY, Case, I, call, call_local, exit_, ld_map, ldx, ldxsx, lookup, mov, r0,
                 r1, r2, r3, r6, r10, ret, st)
from pybpf.asm import opcodes as op

SF, TC, XDP, CGROUP_SKB, LWT_IN, SK_SKB, SK_LOOKUP, SYSCALL, NETFILTER, LIRC = 1, 3, 6, 8, 10, 14, 30, 31, 32, 20
BPF_SK_LOOKUP, BPF_NETFILTER = 36, 45  # enum bpf_attach_type
_RESERVED_LD = "BPF_LD_[ABS|IND] uses reserved fields"
_SLEEP = "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable"


def ld_abs(size, dst=0, src=0, off=0, ind=False):
    return I(op.LD | (op.IND if ind else op.ABS) | size, dst, src, off, 0)


def _movsx64(dst, src, bits):
    return I(op.ALU64 | op.MOV | op.X, dst, src, bits)


def _ctx_sx(off):
    return [ldxsx(4, r2, r1, off), *ret()]


def _misaligned_map_load():
    return [*lookup(ARRAY), I(op.JMP | op.JEQ | op.K, r0, 0, 1, 0), ldx(4, r0, r0, 2), *ret()]


CASES = [
    # 1. ld_imm64 into R11-R15: check_reg_arg(), not a crash
    Case("rules_ldimm64_r11", SF, [mov(r0, 0), I(op.LD_IMM64, 11, 0, 0, 0), exit_()], "R11 is invalid"),
    Case("rules_ldimm64_r15", SF, [mov(r0, 0), I(op.LD_IMM64, 15, 0, 0, 7), exit_()], "R15 is invalid"),
    # The kernel checks src, dst and imm of an exit, not off.
    Case("rules_exit_off_ignored", SF, [mov(r0, 0), I(op.EXIT_OP, 0, 0, 1, 0)]),
    # 2. the opcode table has no LDX MEMSX DW
    Case("rules_ldxsx_dw", SF, [st(8, r10, -8, 0), I(0x99, 0, 10, -8, 0), exit_()], "unknown opcode 99"),
    Case("rules_ldxsx_w_ok", SF, [st(8, r10, -8, 0), ldxsx(4, r0, r10, -8), *ret()]),
    # 3. MOV X reserved fields vs addr_space_cast (off=1)
    Case("rules_mov_imm1", SF, [mov(r1, 0), I(op.ALU64 | op.MOV | op.X, 0, 1, 0, 1), exit_()],
         "BPF_MOV uses reserved fields"),
    Case("rules_addr_space_cast", SF, [mov(r1, 0), I(op.ALU64 | op.MOV | op.X, 0, 1, 1, 1), exit_()],
         "addr_space_cast insn can only be used in a program that has an associated arena"),
    Case("rules_addr_space_cast_bad_as", SF, [mov(r1, 0), I(op.ALU64 | op.MOV | op.X, 0, 1, 1, 2), exit_()],
         "addr_space_cast insn can only convert between address space 1 and 0"),
    Case("rules_mov32_off1", SF, [mov(r1, 0), I(op.ALU | op.MOV | op.X, 0, 1, 1, 1), exit_()],
         "BPF_MOV uses reserved fields"),
    # 4. LD_ABS/LD_IND reserved fields
    Case("rules_ldabs_dst", SF, [mov(r6, r1), ld_abs(op.W, dst=1), *ret()], _RESERVED_LD),
    Case("rules_ldabs_off", SF, [mov(r6, r1), ld_abs(op.W, off=1), *ret()], _RESERVED_LD),
    Case("rules_ldabs_src", SF, [mov(r6, r1), ld_abs(op.W, src=1), *ret()], _RESERVED_LD),
    Case("rules_ldind_src_ok", SF, [mov(r6, r1), mov(r2, 0), ld_abs(op.B, src=2, ind=True), *ret()]),
    Case("rules_ldind_off", SF, [mov(r6, r1), mov(r2, 0), ld_abs(op.B, src=2, off=4, ind=True), *ret()],
         _RESERVED_LD),
    # 5. no BTF: neither LD_ABS nor tail calls in subprograms
    Case("rules_ldabs_subprog", SF, [call_local(2), mov(r0, 0), exit_(), mov(r6, r1), ld_abs(op.B), exit_()],
         "LD_ABS is not allowed in subprogs without BTF"),
    Case("rules_tailcall_subprog", SF, [call_local(2), mov(r0, 0), exit_(), ld_map(r2, PROG_ARRAY), mov(r3, 0),
                                        call(12), mov(r0, 0), exit_()],
         "tail_call is not allowed in subprogs without BTF"),
    Case("rules_ldabs_main_ok", SF, [mov(r6, r1), ld_abs(op.B), call_local(1), exit_(), mov(r0, 0), exit_()]),
    # 6. sign-extending ctx loads of the packet pointers
    Case("rules_ldsx_xdp_data", XDP, _ctx_sx(0), "invalid bpf_context access off=0 size=4"),
    Case("rules_ldsx_xdp_data_end", XDP, _ctx_sx(4), "invalid bpf_context access off=4 size=4"),
    Case("rules_ldsx_xdp_data_meta", XDP, _ctx_sx(8), "invalid bpf_context access off=8 size=4"),
    Case("rules_ldsx_xdp_ifindex_ok", XDP, _ctx_sx(12)),
    Case("rules_ldsx_tc_data", TC, _ctx_sx(76), "invalid bpf_context access off=76 size=4"),
    Case("rules_ldsx_tc_data_end", TC, _ctx_sx(80), "invalid bpf_context access off=80 size=4"),
    Case("rules_ldsx_tc_data_meta", TC, _ctx_sx(140), "invalid bpf_context access off=140 size=4"),
    Case("rules_ldsx_tc_len_ok", TC, _ctx_sx(0)),
    Case("rules_ldsx_cgskb_data", CGROUP_SKB, _ctx_sx(76), "invalid bpf_context access off=76 size=4"),
    Case("rules_ldsx_lwt_data_end", LWT_IN, _ctx_sx(80), "invalid bpf_context access off=80 size=4"),
    Case("rules_ldsx_sk_skb_data", SK_SKB, _ctx_sx(76), "invalid bpf_context access off=76 size=4"),
    # 8. struct bpf_sk_lookup ends at 68; 68-71 is padding
    Case("rules_sk_lookup_pad_w", SK_LOOKUP, [ldx(4, r0, r1, 68), *ret(1)],
         "invalid bpf_context access off=68 size=4", attach=BPF_SK_LOOKUP),
    Case("rules_sk_lookup_pad_b", SK_LOOKUP, [ldx(1, r0, r1, 71), *ret(1)],
         "invalid bpf_context access off=71 size=1", attach=BPF_SK_LOOKUP),
    Case("rules_sk_lookup_ifindex_ok", SK_LOOKUP, [ldx(4, r0, r1, 64), *ret(1)], attach=BPF_SK_LOOKUP),
    # 9. sign-extending a pointer: an unknown scalar for a loader that may see pointers
    Case("rules_movsx32_ptr", SF, [_movsx64(r0, r1, 32), *ret()]),
    Case("rules_movsx8_fp", SF, [_movsx64(r0, r10, 8), *ret()]),
    Case("rules_movsx_ptr_unpriv", SF, [_movsx64(r0, r1, 32), *ret()], "R1 sign-extension part of pointer",
         priv=False),
    Case("rules_movsx_ptr_is_scalar", SF, [_movsx64(r2, r1, 16), ldx(4, r0, r2, 0), *ret()],
         "R2 invalid mem access 'scalar'"),
    # 10. prog_flags and program types, checked before the walk
    Case("rules_flags_strict_and_any", SF, _misaligned_map_load(), flags=3),
    Case("rules_flags_strict", SF, _misaligned_map_load(), "misaligned value access off 0+0+2 size 4", flags=1),
    Case("rules_flags_sleepable_sf", SF, ret(), _SLEEP, flags=16),
    Case("rules_syscall_not_sleepable", SYSCALL, ret(), "Syscall programs can only be sleepable"),
    Case("rules_syscall_sleepable_ok", SYSCALL, ret(), flags=16),
    Case("rules_flags_unknown_bit", SF, ret(), "Invalid argument", flags=256),
    Case("rules_netfilter_no_attach", NETFILTER, ret(), "Invalid argument"),
    Case("rules_lirc_mode2", LIRC, ret(), "Invalid argument"),
    # 11. messages: pass order and formatting
    Case("rules_jmp_range_before_opcode", SF, [mov(r0, 0), I(0x0d, 0, 0, -8, 0), exit_()],
         "jump out of range from insn 1 to -6"),
    Case("rules_ldabs_r6_uninit", SF, [ld_abs(op.W), exit_()], "R6 !read_ok"),
    Case("rules_atomic_imm_neg", SF, [st(8, r10, -8, 0), mov(r1, 1),
                                      I(op.STX | op.ATOMIC | op.DW, 10, 1, -8, -1), *ret()],
         "BPF_ATOMIC uses invalid atomic opcode ffffffff"),
    # one insn over BPF_COMPLEXITY_LIMIT_INSNS: E2BIG from bpf_prog_load(), before any verifying
    Case("rules_too_many_insns", SF, [mov(r0, 0)] * 1_000_000 + [exit_()], "Argument list too long"),
]
