"""Coverage audit of issue 6's rule list: accept and reject variants per rule.

Scalar cases compute an index from an unknown ctx field and use it on a
48-byte map value: the kernel accepts exactly when its bounds prove the index
is in [0, 47], so each pair pins down one transfer function or refinement.
"""

from dsl import (ARRAY, HASH, Case, I, R, add, alu, and_, arsh, call, call_local, exit_, ja, jmp, ld_imm64,
                 ld_map, ldx, ldxsx, lookup, lsh, mov, mov32, mul, neg, r0, r1, r2, r3, r4, r5, r6, r7, r8,
                 r10, ret, rsh, st, stx, sub)
from pybpf.asm import opcodes as op

SF, KP, TC, TP, XDP, PE, CGS, RTP = 1, 2, 3, 5, 6, 7, 8, 17
_OOB = "R0 max value is outside of the allowed memory range"
_NEG = "R0 min value is negative, either use unsigned index or do a if (index >=0) check."
_UNB = "R0 unbounded memory access, make sure to bounds check any such access"
_MIN = "math between map_value pointer and register with unbounded min value is not allowed"


def idx(*ops, size=4):
    """r2 = unknown u32 (or u64) from ctx, shaped by ``ops``; then map_value[r2]."""
    load = ldx(size, r2, r6, 0) if size == 4 else ldx(8, r2, r6, 0)
    return [mov(r6, r1), load, *ops, mov(r8, r2), *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()]


def movsx(dst, src, bits, w32=False):
    return I((op.ALU if w32 else op.ALU64) | op.MOV | op.X, dst, src, bits)


def bswap(dst, bits):
    return I(op.ALU64 | op.END, dst, 0, 0, bits)


def w(name, dst, v):
    return alu(name, dst, v, w32=True)


CASES = [
    # scalars: one transfer function per pair (accept, reject)
    Case("alu_and_ok", SF, idx(and_(r2, 47))),
    Case("alu_and_oob", SF, idx(and_(r2, 63)), _OOB),
    Case("alu_mod_unbounded_min", SF, idx(alu("mod", r2, 48)), _MIN),
    Case("alu_mod_masked_ok", SF, idx(alu("mod", r2, 48), and_(r2, 47))),
    Case("alu_div_unbounded_min", SF, idx(alu("div", r2, 1 << 27)), _MIN),
    Case("alu_div_masked_oob", SF, idx(alu("div", r2, 3), and_(r2, 63)), _OOB),
    Case("alu_rsh_ok", SF, idx(rsh(r2, 27))),
    Case("alu_rsh_oob", SF, idx(rsh(r2, 26)), _OOB),
    Case("alu_mul_ok", SF, idx(and_(r2, 7), mul(r2, 5))),
    Case("alu_mul_oob", SF, idx(and_(r2, 7), mul(r2, 7)), _OOB),
    Case("alu_lsh_ok", SF, idx(and_(r2, 7), lsh(r2, 2))),
    Case("alu_lsh_oob", SF, idx(and_(r2, 7), lsh(r2, 3)), _OOB),
    Case("alu_or_ok", SF, idx(and_(r2, 15), alu("or", r2, 32))),
    Case("alu_or_oob", SF, idx(and_(r2, 31), alu("or", r2, 32)), _OOB),
    Case("alu_xor_ok", SF, idx(and_(r2, 15), alu("xor", r2, 16))),
    Case("alu_xor_oob", SF, idx(and_(r2, 31), alu("xor", r2, 32)), _OOB),
    Case("alu_add_ok", SF, idx(and_(r2, 15), add(r2, 32))),
    Case("alu_add_oob", SF, idx(and_(r2, 15), add(r2, 33)), _OOB),
    Case("alu_sub_ok", SF, idx(and_(r2, 15), alu("or", r2, 16), sub(r2, 16))),
    Case("alu_sub_neg", SF, idx(and_(r2, 15), sub(r2, 1)), _NEG),
    Case("alu_neg_neg", SF, idx(and_(r2, 15), neg(r2)), _NEG),
    Case("alu_arsh_ok", SF, idx(lsh(r2, 32), arsh(r2, 59)), _NEG),
    Case("alu_arsh_pos_ok", SF, idx(and_(r2, 0xff), arsh(r2, 3))),
    Case("alu_arsh_pos_oob", SF, idx(and_(r2, 0xff), arsh(r2, 2)), _OOB),
    Case("alu32_add_wraps", SF, idx(w("add", r2, 1)), _UNB),
    Case("alu32_and_zext", SF, idx(ld_imm64(r3, -1), alu("and", r2, R(3)), w("and", r2, 31))),
    Case("alu32_mov_zext_ok", SF, idx(and_(r2, 31), mov32(r2, R(2)))),
    Case("alu32_sub_neg_zext", SF, idx(and_(r2, 15), w("sub", r2, 1)), _UNB),
    Case("alu32_lsh_oob", SF, idx(and_(r2, 15), w("lsh", r2, 2)), _OOB),
    Case("alu32_rsh_ok", SF, idx(w("rsh", r2, 27))),
    Case("alu64_u64_rsh_oob", KP, idx(rsh(r2, 58), size=8), _OOB),
    Case("alu64_u64_rsh_ok", KP, idx(rsh(r2, 59), size=8)),
    Case("movsx8_neg", SF, idx(movsx(r2, r2, 8)), _NEG),
    Case("movsx8_masked_ok", SF, idx(and_(r2, 0x2f), movsx(r2, r2, 8))),
    Case("movsx32_zext_oob", SF, idx(and_(r2, 0xff), movsx(r2, r2, 8, w32=True)), _UNB),
    Case("ldxsx_neg", SF, [mov(r6, r1), ldxsx(1, r2, r10, -8), *idx()[2:]], _NEG),
    Case("bswap64_oob", SF, idx(and_(r2, 31), bswap(r2, 64)), _UNB),
    Case("bswap16_small", SF, idx(and_(r2, 0x2f00), bswap(r2, 16))),
    # JMP/JMP32 refinement on both branches
    Case("jgt_fallthrough_ok", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jgt", r2, 47, 9), mov(r8, r2),
                                    *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()]),
    Case("jgt_taken_side_oob", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jle", r2, 47, 9), mov(r8, r2),
                                    *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()],
         "R0 min value is outside of the allowed memory range"),
    Case("jlt_taken_ok", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jlt", r2, 48, 2), *ret(), mov(r8, r2),
                              *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()]),
    Case("jlt_taken_off_by_one", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jlt", r2, 49, 2), *ret(), mov(r8, r2),
                                      *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()], _OOB),
    Case("jsgt_needs_lower", SF, [mov(r6, r1), ldx(8, r2, r10, -8), jmp("jsgt", r2, 47, 9), mov(r8, r2),
                                  *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()], _MIN),
    Case("jsge_both_bounds", SF, [mov(r6, r1), ldx(8, r2, r10, -8), jmp("jsgt", r2, 47, 10), jmp("jslt", r2, 0, 9),
                                  mov(r8, r2), *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()]),
    Case("jmp32_bounds_u32_only", SF, [mov(r6, r1), ldx(8, r2, r10, -8), jmp("jgt", r2, 47, 9, w32=True),
                                       mov(r8, r2), *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()], _MIN),
    Case("jmp32_bounds_zext", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jgt", r2, 47, 9, w32=True), mov(r8, r2),
                                   *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()]),
    Case("jeq_const_ok", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jne", r2, 40, 9), mov(r8, r2),
                              *lookup(ARRAY), add(r0, r8), ldx(8, r7, r0, 0), *ret()]),
    Case("jeq_const_oob", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jne", r2, 41, 9), mov(r8, r2),
                               *lookup(ARRAY), add(r0, r8), ldx(8, r7, r0, 0), *ret()],
         "R0 min value is outside of the allowed memory range"),
    Case("jset_clears_nothing", SF, [mov(r6, r1), ldx(4, r2, r6, 0), jmp("jset", r2, -64, 9), mov(r8, r2),
                                     *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()], _OOB),
    Case("jreg_refines_both", SF, [mov(r6, r1), ldx(4, r2, r6, 0), mov(r3, 40), jmp("jgt", r2, R(3), 9), mov(r8, r2),
                                   *lookup(ARRAY), add(r0, r8), ldx(8, r7, r0, 0), *ret()]),
    # stack: variable-offset reads, frames, depth
    Case("stack_var_read_init", SF, [st(8, r10, -16, 0), st(8, r10, -8, 0), ldx(4, r2, r1, 0), and_(r2, 8),
                                     neg(r2), mov(r3, r10), add(r3, r2), ldx(1, r0, r3, -1), exit_()]),
    Case("stack_var_read_oob", SF, [ldx(4, r2, r1, 0), and_(r2, 0x3ff), neg(r2), mov(r3, r10), add(r3, r2),
                                    ldx(1, r0, r3, -1), exit_()], "invalid variable-offset read from stack R3"),
    Case("stack_var_unbounded", SF, [ldx(4, r2, r1, 0), neg(r2), mov(r3, r10), add(r3, r2), ldx(1, r0, r3, -1),
                                     exit_()], "value -4294967295 makes fp pointer be out of bounds"),
    Case("stack_caller_ptr_ok", SF, [st(8, r10, -8, 0), mov(r1, r10), add(r1, -8), call_local(2), mov(r0, 0),
                                     exit_(), ldx(8, r0, r1, 0), exit_()]),
    Case("stack_caller_ptr_oob", SF, [st(8, r10, -8, 0), mov(r1, r10), add(r1, -8), call_local(2), mov(r0, 0),
                                      exit_(), ldx(8, r0, r1, 8), exit_()], "invalid read from stack R1 off=0 size=8"),
    Case("stack_depth_three_frames", SF, [st(8, r10, -200, 0), call_local(2), mov(r0, 0), exit_(),
                                          st(8, r10, -200, 0), call_local(2), mov(r0, 0), exit_(),
                                          st(8, r10, -200, 0), mov(r0, 0), exit_()],
         "combined stack size of 3 calls is 624. Too large"),
    Case("stack_depth_three_ok", SF, [st(8, r10, -160, 0), call_local(2), mov(r0, 0), exit_(),
                                      st(8, r10, -160, 0), call_local(2), mov(r0, 0), exit_(),
                                      st(8, r10, -160, 0), mov(r0, 0), exit_()]),
    # map values from hash lookups, null checks propagate to copies and spills
    Case("hash_copy_used_unchecked", SF, [*lookup(HASH), mov(r6, r0), jmp("jeq", r6, 0, 2), ldx(8, r0, r0, 0),
                                          exit_(), *ret()]),
    Case("hash_two_lookups_distinct", SF, [*lookup(HASH), mov(r6, r0), *lookup(HASH), jmp("jeq", r0, 0, 2),
                                           ldx(8, r0, r6, 0), exit_(), *ret()],
         "R6 invalid mem access 'map_value_or_null'"),
    Case("hash_value_var_off", SF, [mov(r6, r1), *lookup(HASH), jmp("jeq", r0, 0, 5), ldx(4, r2, r6, 0),
                                    and_(r2, 8), add(r0, r2), ldx(8, r0, r0, 0), exit_(), *ret()]),
    Case("hash_value_var_off_oob", SF, [mov(r6, r1), *lookup(HASH), jmp("jeq", r0, 0, 5), ldx(4, r2, r6, 0),
                                        and_(r2, 9), add(r0, r2), ldx(8, r0, r0, 0), exit_(), *ret()],
         "R0 max value is outside of the allowed memory range"),
    # packet ranges propagate to copies made before the check
    Case("pkt_copy_gets_range", XDP, [ldx(4, r2, r1, 0), ldx(4, r3, r1, 4), mov(r5, r2), mov(r4, r2), add(r4, 8),
                                      jmp("jgt", r4, r3, 1), ldx(8, r0, r5, 0), *ret(2)]),
    Case("pkt_other_copy_offset", XDP, [ldx(4, r2, r1, 0), ldx(4, r3, r1, 4), mov(r5, r2), add(r5, 4),
                                        mov(r4, r2), add(r4, 8), jmp("jgt", r4, r3, 1), ldx(8, r0, r5, 0),
                                        *ret(2)], "R5 offset is outside of the packet"),
    Case("pkt_range_lost_after_add", XDP, [ldx(4, r2, r1, 0), ldx(4, r3, r1, 4), mov(r4, r2), add(r4, 8),
                                           jmp("jgt", r4, r3, 2), add(r2, 8), ldx(1, r0, r2, 0), *ret(2)],
         "R2 offset is outside of the packet"),
    Case("tc_pkt_copy_range", TC, [ldx(4, r2, r1, 76), ldx(4, r3, r1, 80), mov(r5, r2), mov(r4, r2), add(r4, 14),
                                   jmp("jgt", r4, r3, 1), ldx(2, r0, r5, 12), *ret()]),
    # context: narrow loads and read-only fields per type
    Case("sf_ctx_protocol_narrow", SF, [ldx(2, r0, r1, 16), exit_()]),
    Case("sf_ctx_protocol_byte", SF, [ldx(1, r0, r1, 17), exit_()]),
    Case("sf_ctx_cb_narrow", SF, [ldx(1, r0, r1, 0x31), exit_()]),
    Case("sf_ctx_tc_index_write", SF, [st(4, r1, 0x2c, 0), *ret()], "invalid bpf_context access off=44 size=4"),
    Case("sf_ctx_data_end", SF, [ldx(4, r0, r1, 80), exit_()], "invalid bpf_context access off=80 size=4"),
    Case("tc_ctx_priority_write", TC, [st(4, r1, 0x20, 0), *ret()]),
    Case("tc_ctx_protocol_write", TC, [st(4, r1, 0x10, 0), *ret()], "invalid bpf_context access off=16 size=4"),
    Case("tc_ctx_data_narrow", TC, [ldx(2, r0, r1, 76), exit_()], "invalid bpf_context access off=76 size=2"),
    Case("cgskb_ctx_mark_write", CGS, [st(4, r1, 8, 0), *ret(1)]),
    Case("cgskb_ctx_tc_index_write", CGS, [st(4, r1, 0x2c, 0), *ret(1)], "invalid bpf_context access off=44 size=4"),
    Case("cgskb_ctx_data_read", CGS, [ldx(4, r0, r1, 76), *ret(1)]),
    Case("xdp_ctx_data_narrow", XDP, [ldx(2, r0, r1, 0), *ret(2)], "invalid bpf_context access off=0 size=2"),
    Case("xdp_ctx_ifindex_narrow", XDP, [ldx(1, r0, r1, 12), *ret(2)], "invalid bpf_context access off=12 size=1"),
    Case("xdp_ctx_oob", XDP, [ldx(4, r0, r1, 24), *ret(2)], "invalid bpf_context access off=24 size=4"),
    Case("kprobe_ctx_last", KP, [ldx(8, r0, r1, 160), exit_()]),
    Case("kprobe_ctx_misaligned", KP, [ldx(8, r0, r1, 4), exit_()], "invalid bpf_context access off=4 size=8"),
    Case("pe_ctx_sample_period_narrow", PE, [ldx(4, r0, r1, 168), exit_()]),
    Case("pe_ctx_write", PE, [st(8, r1, 0, 0), *ret()], "invalid bpf_context access off=0 size=8"),
    Case("rtp_ctx_narrow", RTP, [ldx(4, r0, r1, 0), exit_()]),
    Case("rtp_ctx_write", RTP, [st(8, r1, 0, 0), *ret()], "invalid bpf_context access off=0 size=8"),
    Case("tp_ctx_write", TP, [st(8, r1, 8, 0), *ret()], "invalid bpf_context access off=8 size=8"),
    Case("tp_ctx_narrow", TP, [ldx(1, r0, r1, 9), exit_()]),
    # helpers per program type and argument kinds
    Case("xdp_get_current_pid", XDP, [call(14), *ret(2)]),
    Case("kp_skb_load_bytes", KP, [call(26), *ret()], "program of this type cannot use helper bpf_skb_load_bytes#26"),
    Case("tc_redirect_ok", TC, [mov(r1, 1), mov(r2, 0), call(23), exit_()]),
    Case("helper_uninit_arg", SF, [ld_map(r1, HASH), call(1), *ret()], "R2 !read_ok"),
    Case("helper_size_zero", KP, [mov(r1, r10), add(r1, -8), mov(r2, 0), call(16), *ret()],
         "R2 invalid zero-sized read: u64=[0,0]"),
    Case("helper_size_neg", KP, [mov(r1, r10), add(r1, -8), ldx(8, r2, r6, 0) if False else mov(r2, -1), call(16),
                                 *ret()], "R2 min value is negative, either use unsigned or 'var &= const'"),
    Case("helper_update_value_from_map", SF, [*lookup(ARRAY), mov(r3, r0), st(4, r10, -8, 0), mov(r2, r10),
                                              add(r2, -8), mov(r4, 0), ld_map(r1, ARRAY), call(2), *ret()]),
    # control flow and loops
    Case("loop_pruned_many_iters", SF, [mov(r0, 0), ldx(4, r2, r1, 0), add(r0, 1), jmp("jlt", r0, 1000, -2),
                                        exit_()]),
    Case("loop_var_exit", SF, [ldx(4, r2, r1, 0), and_(r2, 63), mov(r0, 0), add(r0, 1), jmp("jlt", r0, R(2), -2),
                               exit_()]),
    Case("loop_never_exits_unknown", SF, [ldx(4, r2, r1, 0), jmp("jeq", r2, 0, -1), *ret()],
         "infinite loop detected at insn 1"),
    Case("ja_backwards_dead_exit", SF, [mov(r0, 0), ja(-1), exit_()], "unreachable insn 2"),
    Case("ja_backwards_infinite", SF, [mov(r0, 0), ja(0), ja(-2)], "infinite loop detected"),
    Case("call_into_middle", SF, [call_local(1), exit_(), mov(r0, 0), exit_()]),
    Case("exit_in_subprog_ptr_ret_ok", SF, [call_local(3), ldx(4, r0, r0, 0), exit_(), exit_(), mov(r0, r1), exit_()],
         "unreachable insn 3"),
]
