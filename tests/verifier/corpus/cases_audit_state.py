"""Audit of state tracking: precision, linked scalars, spill ids, pointer equality.

Each accepted case would be rejected (or blow up the processed-insn count) if
the simulator lost a fact the kernel keeps; each rejected case would be
accepted if the simulator kept a fact the kernel drops. Cases tagged
``processed`` are also compared on the kernel's processed-insn count
(tests/verifier/test_audit_state.py).
"""

from dsl import (ARRAY, HASH, Case, add, alu, call, ja, jmp, ldx, lookup, mov, mov32, r0, r1, r2, r3,
                 r4, r6, r7, r8, r9, r10, ret, stx, sub)
from pybpf.asm import opcodes as op

SF = 1
LD_IMM64 = op.LD_IMM64


def _use(reg):
    """map_value[reg] on the 48-byte array value: accepted iff reg is proven in [0, 47]."""
    return [*lookup(ARRAY), jmp("jeq", r0, 0, 2), add(r0, reg), ldx(1, r0, r0, 0), *ret()]


def _unless(cond, reg, imm, body, w32=False):
    """``if reg <cond> imm goto <body's final r0 = 0; exit>`` then ``body``."""
    slots = sum(2 if i.opcode == LD_IMM64 else 1 for i in body)
    return [jmp(cond, reg, imm, slots - 2, w32=w32), *body]


def _jset_chain(n):
    out = [ldx(4, r9, r1, 0)]
    for i in range(n):
        out += [jmp("jset", r9, 1 << i, 1), mov(r8, 1)]
    return out + ret()


def _jset_chain_then_call(n):
    """Paths differ only in r4, which the argument-less helper does not read: the kernel's
    liveness (a helper reads its parameters only) lets them prune at the call."""
    out = [mov(r6, r1), ldx(4, r1, r6, 60)]
    for i in range(n):
        out += [jmp("jset", r1, 1 << i, 1), mov(r4, i)]
    return out + [call(125), *ret()]  # bpf_ktime_get_boot_ns()


def _wmov_ends_the_link():
    """``w1 = w7`` from a register beyond u32 that carries a constant delta (+7): the copy is
    unlinked, and must not keep the delta, or a later link would be off by it (found by the
    fuzzer's linked-scalar shapes)."""
    return [mov(r6, r1), ldx(4, r7, r6, 0), mov(r8, r7), add(r7, 7), *lookup(ARRAY),
            jmp("jeq", r0, 0, 7), mov32(r1, r7), mov(r2, r1), add(r1, 5), jmp("jgt", r2, 26, 3),
            mov(r3, r0), add(r3, r1), ldx(1, r7, r3, 0), *ret()]


def _spill_compare(n):
    out = [mov(r6, r1)]
    for i in range(n):
        out += [ldx(4, r2, r6, 0), jmp("jgt", r2, 100, 0), stx(8, r10, -8 * (i + 1), r2)]
    for i in range(n):
        out += [ldx(8, r2, r10, -8 * (i + 1)), jmp("jgt", r2, 50, 0)]
    return out + ret()


def _decided_branch_needs_precision():
    """r8 is 0 or 1 on two paths (r7 is imprecise); ``if r8 == 1`` is decided on each, so r8
    must be precise at the join or the r8 == 1 path (out of bounds) would be pruned."""
    return [
        ldx(4, r7, r1, 0), *lookup(ARRAY), jmp("jeq", r0, 0, 18),
        mov(r6, 0), mov(r9, 0),
        jmp("jset", r7, 1, 10), mov(r8, 0), *[mov(r9, 0)] * 8, ja(1), mov(r8, 1),
        add(r6, 1), add(r9, 2), jmp("jgt", r6, 7, 0), jmp("jeq", r8, 1, 2),
        *ret(),
        ldx(1, r0, r0, 48), *ret(),
    ]


def _ptr_offset_needs_precision():
    """r8 is 1 or 60 on two paths; ``r0 += r8`` makes it precise, so the join must not prune
    the r8 = 60 path (out of bounds)."""
    return [
        ldx(4, r7, r1, 0), mov(r6, 0), mov(r9, 0),
        jmp("jset", r7, 1, 10), mov(r8, 1), *[mov(r9, 0)] * 8, ja(1), mov(r8, 60),
        add(r6, 1), add(r9, 2), jmp("jgt", r6, 7, 0), *lookup(ARRAY), jmp("jeq", r0, 0, 2),
        add(r0, r8), ldx(1, r0, r0, 0), *ret(),
    ]


def _scalar_add_diamonds(k):
    """``r9 += r8`` after each diamond: scalar arithmetic alone makes nothing precise."""
    body = []
    for i in range(k):
        body += [ldx(4, r7, r6, 0), jmp("jgt", r7, i, 2), mov(r8, 1), ja(1), mov(r8, 2), add(r9, r8)]
    return [mov(r6, r1), mov(r9, 0), *body, *lookup(ARRAY), jmp("jeq", r0, 0, 1), stx(8, r0, 0, r9), *ret()]


def _ptr_eq(cond, checked_first=True):
    """r6 = an unchecked lookup, r0 = a second one (NULL-checked unless ``checked_first`` is
    False); on the branch where r6 == r0, r6 is not NULL either."""
    if cond == "jne":
        tail = [jmp("jne", r6, r0, 1), ldx(8, r0, r6, 0), *ret()]
    else:
        tail = [jmp("jeq", r6, r0, 2), *ret(), ldx(8, r0, r6, 0), *ret()]
    check = [jmp("jeq", r0, 0, len(tail) - 2)] if checked_first else []
    return [*lookup(HASH), mov(r6, r0), *lookup(HASH), *check, *tail]


_OOB = "R0 max value is outside of the allowed memory range"
_UNB = "R0 unbounded memory access"

CASES = [
    # precision: only decided branches make their operands precise
    Case("state_jset_chain_19", SF, _jset_chain(19), tags=("processed",)),
    Case("state_spill_compare_14", SF, _spill_compare(14), tags=("processed",)),
    Case("state_jset_chain_then_call_18", SF, _jset_chain_then_call(18), tags=("processed",)),
    Case("state_wmov_ends_the_link", SF, _wmov_ends_the_link()),
    Case("state_decided_branch_precise", SF, _decided_branch_needs_precision(),
         expect="R0 min value is outside of the allowed memory range"),
    Case("state_ptr_offset_precise", SF, _ptr_offset_needs_precision(),
         expect="R0 min value is outside of the allowed memory range"),
    Case("state_scalar_add_diamonds", SF, _scalar_add_diamonds(16), tags=("processed",)),
    # linked scalars with a constant delta (BPF_ADD_CONST64/32)
    Case("state_add_const", SF, [ldx(4, r6, r1, 0), mov(r2, r6), add(r6, 8),
                                 *_unless("jgt", r2, 32, _use(r6))]),
    Case("state_add_const_oob", SF, [ldx(4, r6, r1, 0), mov(r2, r6), add(r6, 16),
                                     *_unless("jgt", r2, 32, _use(r6))], expect=_OOB),
    Case("state_sub_const_neg", SF, [ldx(4, r6, r1, 0), mov(r2, r6), sub(r6, 8),
                                     *_unless("jgt", r2, 40, _use(r6))], expect="R0 min value is negative"),
    Case("state_sub_const", SF, [ldx(4, r6, r1, 0), mov(r2, r6), sub(r6, 8),
                                 *_unless("jlt", r2, 8, _unless("jgt", r2, 50, _use(r6)))]),
    Case("state_add_const_w32", SF, [ldx(4, r2, r1, 0), mov32(r6, r2), alu("add", r6, 8, w32=True),
                                     *_unless("jgt", r2, 32, _use(r6), w32=True)]),
    Case("state_add_const_twice", SF, [ldx(4, r6, r1, 0), mov(r2, r6), add(r6, 4), add(r6, 4),
                                       *_unless("jgt", r2, 32, _use(r6))], expect=_UNB),
    Case("state_add_const_copy", SF, [ldx(4, r6, r1, 0), mov(r2, r6), add(r6, 4), mov(r7, r6),
                                      *_unless("jgt", r2, 32, _use(r7))], expect=_UNB),
    # a spill gives the scalar an id, so the fill learns the register's bound
    Case("state_spill_id_64", SF, [ldx(4, r6, r1, 0), stx(8, r10, -16, r6),
                                   *_unless("jgt", r6, 40, [ldx(8, r7, r10, -16), *_use(r7)])]),
    Case("state_spill_id_32", SF, [ldx(4, r6, r1, 0), stx(4, r10, -16, r6),
                                   *_unless("jgt", r6, 40, [ldx(4, r7, r10, -16), *_use(r7)])]),
    Case("state_spill_id_64_oob", SF, [ldx(4, r6, r1, 0), stx(8, r10, -16, r6),
                                       *_unless("jgt", r6, 48, [ldx(8, r7, r10, -16), *_use(r7)])],
         expect=_OOB),
    # a u32 range across the s32 sign boundary meets an s32 bound (__reg32_deduce_bounds())
    Case("state_u32_cross_sign", SF, [ldx(4, r6, r1, 0), *_unless("jlt", r6, 0x7FFFFFF0, _unless(
        "jgt", r6, -0x7FFFFFF0, _unless("jsgt", r6, 0, [alu("add", r6, -0x80000000, w32=True), *_use(r6)],
                                        w32=True), w32=True), w32=True)]),
    Case("state_u32_cross_no_sign", SF, [ldx(4, r6, r1, 0), *_unless("jlt", r6, 0x7FFFFFF0, _unless(
        "jgt", r6, -0x7FFFFFF0, [alu("add", r6, -0x80000000, w32=True), *_use(r6)], w32=True), w32=True)],
         expect=_UNB),
    # pointer equality with a NULL-checked pointer
    Case("state_ptr_eq_jne", SF, _ptr_eq("jne")),
    Case("state_ptr_eq_jeq", SF, _ptr_eq("jeq")),
    Case("state_ptr_eq_unchecked", SF, _ptr_eq("jne", checked_first=False),
         expect="R6 invalid mem access 'map_value_or_null'"),
]
