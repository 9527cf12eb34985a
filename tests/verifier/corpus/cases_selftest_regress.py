"""Regression cases for the disagreements the kernel's own verifier selftests exposed.

Found by bench/verifier_selftests.py (which reads the kernel's tables at
benchmark time); each case here is a minimal program of our own showing the
rule, not a copy of a selftest.
"""

from dsl import (ARRAY, Case, I, MapDef, R, add, call, call_local, exit_, jmp, ld_map, ldx, lookup,
                 mov, r0, r1, r2, r3, r4, r6, r7, r8, r9, r10, ret, st, sub)
from pybpf.asm import opcodes as op

SF, KP, CLS, XDP, SK_SKB = 1, 2, 3, 6, 14
SK_LOOKUP, SK_LOOKUP_ATTACH = 30, 36

ARRAY_RO = MapDef(2, 4, 16, 1, flags=1 << 7, name="array_rdonly_prog")
ARRAY_WO = MapDef(2, 4, 16, 1, flags=1 << 8, name="array_wronly_prog")
OUTER = MapDef(12, 4, 4, 1, inner=MapDef(2, 4, 8, 1, name="inner8"), name="array_of_maps")
SOCKMAP = MapDef(15, 4, 4, 1, name="sockmap")


def _null_checked(mapdef):
    return [*lookup(mapdef), jmp("jne", r0, 0, 2), *ret()]


CASES = [
    # BPF_F_WRONLY_PROG: the program may store into the value but not load from it
    Case("wronly_map_store_ok", SF, [*_null_checked(ARRAY_WO), st(8, r0, 0, 1), *ret()]),
    Case("wronly_map_load", SF, [*_null_checked(ARRAY_WO), ldx(4, r0, r0, 4), exit_()],
         "read from map forbidden, value_size=16 off=4 size=4"),
    # BPF_F_RDONLY_PROG also refuses a helper writing into the value
    Case("rdonly_map_helper_write", SF, [mov(r6, r1), *_null_checked(ARRAY_RO), mov(r3, r0), mov(r1, r6),
                                         mov(r2, 0), mov(r4, 8), call(26), *ret()],
         "write into map forbidden, value_size=16 off=0 size=8"),
    # a lookup in an array of maps yields the inner map's pointer (or NULL), usable as a map argument
    Case("map_in_map_lookup_inner", SF, [*_null_checked(OUTER), st(4, r10, -4, 0), mov(r2, r10), add(r2, -4),
                                         mov(r1, r0), call(1), jmp("jeq", r0, 0, 1), ldx(8, r0, r0, 0),
                                         *ret()]),
    Case("map_in_map_ptr_arith", SF, [*_null_checked(OUTER), add(r0, 8), *ret()],
         "R0 pointer arithmetic on map_ptr prohibited"),
    # a sockmap lookup returns a referenced socket that must be released
    Case("sockmap_lookup_leak", SK_SKB, [*_null_checked(SOCKMAP), *ret()], "reference leak"),
    Case("sockmap_lookup_release", SK_SKB, [*_null_checked(SOCKMAP), mov(r1, r0), call(86), *ret()]),
    # resolve_pseudo_ldimm64(): the public opcode table and the second slot of a map load
    Case("ld_abs_dw_unknown_opcode", CLS, [mov(r6, r1), I(op.LD | op.DW | op.ABS, 0, 0, 0, 0), exit_()],
         "unknown opcode 38"),
    Case("alu_op_f0_unknown_opcode", SF, [mov(r0, 0), I(op.ALU64 | 0xF0 | op.K, 0, 0, 0, 1), exit_()],
         "unknown opcode f7"),
    Case("map_fd_high_imm", SF, [mov(r0, 0), I(op.LD_IMM64, 1, op.PSEUDO_MAP_FD, 0, 5 << 32, map=ARRAY),
                                 exit_()], "unrecognized bpf_ld_imm64 insn"),
    Case("ld_imm64_off_reserved", SF, [I(op.LD_IMM64, 0, 0, 3, 0), exit_()],
         "BPF_LD_IMM64 uses reserved fields"),
    # check_max_stack_depth() walks calls statically: recursion, even behind a never-taken branch
    Case("self_recursion", SF, [call_local(1), exit_(), mov(r0, 0), jmp("jne", r0, 0, 1), exit_(),
                                call_local(-4), exit_()],
         "the call stack of 8 frames is too deep !"),
    # a packet-changing helper in a callee invalidates the caller's packet pointers
    Case("callee_adjust_head_invalidates", XDP,
         [mov(r9, r1), ldx(4, r6, r1, 0), ldx(4, r7, r1, 4), mov(r8, r6), add(r8, 8),
          jmp("jgt", r8, R(7), 4), mov(r1, r9), call_local(4), ldx(1, r0, r6, 0), exit_(), *ret(),
          mov(r2, 0), call(44), *ret()],
         "R6 invalid mem access 'scalar'"),
    Case("callee_no_pkt_change_keeps", XDP,
         [mov(r9, r1), ldx(4, r6, r1, 0), ldx(4, r7, r1, 4), mov(r8, r6), add(r8, 8),
          jmp("jgt", r8, R(7), 4), mov(r1, r9), call_local(4), ldx(1, r0, r6, 0), exit_(), *ret(),
          call(5), *ret()]),
    # a variable-offset store of zero over a spilled constant zero keeps the known zero (sk_lookup
    # must return 0 or 1, so the byte read back has to be known)
    Case("st_var_off_zero_keeps_spilled_zero", SK_LOOKUP,
         [st(8, r10, -8, 0), call(7), jmp("jle", r0, 7, 2), *ret(), sub(r0, 8), add(r0, r10),
          st(1, r0, 0, 0), ldx(1, r0, r10, -4), exit_()], attach=SK_LOOKUP_ATTACH),
    Case("st_var_off_nonzero_forgets_zero", SK_LOOKUP,
         [st(8, r10, -8, 0), call(7), jmp("jle", r0, 7, 2), *ret(), sub(r0, 8), add(r0, r10),
          st(1, r0, 0, 1), ldx(1, r0, r10, -4), exit_()],
         "should have been in [0, 1]", attach=SK_LOOKUP_ATTACH),
]
