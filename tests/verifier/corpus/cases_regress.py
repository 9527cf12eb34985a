"""Regression cases: each is a disagreement the differential runs once found.

Kept small and named for the kernel behaviour they pin down.
"""

from dsl import (ARRAY, Case, I, R, add, alu, and_, arsh, call_local, exit_, ja, jmp, ldx, lookup,
                 mov, r0, r1, r2, r6, r7, r8, r9, r10, ret, st, stx)
from pybpf.asm import opcodes as op

SF, KP = 1, 2


def _end(cls, src, bits):
    return I(cls | op.END | src, 8, 0, 0, bits)


def _diamonds(k, use_as_offset):
    body = []
    for i in range(k):
        body += [ldx(4, r7, r6, 0), jmp("jgt", r7, i, 2), mov(r8, 1), ja(1), mov(r8, 2), add(r9, R(8))]
    tail = [and_(r9, 7), add(r0, r9), ldx(1, r7, r0, 0)] if use_as_offset else [stx(8, r0, 0, r9)]
    return [mov(r6, r1), mov(r9, 0), *body, *lookup(ARRAY), *tail, mov(r0, 0), exit_()]


CASES = [
    # 6.18 splits {-1, 0} (the s>>=63 idiom) before and/or with a constant: each value on its own path
    Case("arsh63_or_fork", KP, [ldx(8, r8, r1, 0), arsh(r8, 63), alu("or", r8, -69), mov(r0, 0),
                                jmp("jeq", r8, -69, 1), exit_(), ldx(8, r0, r0, 0), exit_()],
         "R0 invalid mem access 'scalar'"),
    Case("arsh63_and_fork_reg", KP, [ldx(8, r8, r1, 0), arsh(r8, 63), mov(r9, 27), alu("and", r8, R(9)),
                                     alu("or", r8, -39), *lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0), *ret()],
         "R0 min value is outside of the allowed memory range"),
    Case("arsh63_and_index_ok", KP, [ldx(8, r8, r1, 0), arsh(r8, 63), and_(r8, 40), mov(r6, r8), *lookup(ARRAY),
                                     add(r0, r6), ldx(8, r7, r0, 0), *ret()]),
    # BPF_END: to_le truncates (x86-64), to_be/bswap swap the tnum's bytes
    Case("le16_keeps_bounds", KP, [ldx(8, r8, r1, 0), and_(r8, 31), _end(op.ALU, op.TO_LE, 16), mov(r6, r8),
                                   *lookup(ARRAY), add(r0, r6), ldx(8, r7, r0, 0), *ret()]),
    Case("be16_swaps", KP, [ldx(8, r8, r1, 0), and_(r8, 31), _end(op.ALU, op.TO_BE, 16), mov(r6, r8),
                            *lookup(ARRAY), add(r0, r6), ldx(8, r7, r0, 0), *ret()],
         "R0 max value is outside of the allowed memory range"),
    Case("bswap64_const", KP, [mov(r8, 1), _end(op.ALU64, 0, 64), jmp("jeq", r8, 0, 2), *ret(), ldx(8, r0, r0, 0), exit_()]),
    # a subprogram may exit without setting R0 if the caller does not read it
    Case("subprog_void", SF, [call_local(2), mov(r0, 0), exit_(), exit_()]),
    # imprecise scalars do not block pruning: 2^22 paths collapse
    Case("imprecise_diamonds", SF, _diamonds(22, False)),
    Case("precise_diamonds", SF, _diamonds(10, True)),
    # ``<<= 32`` keeps negative 32-bit bounds as 64-bit signed bounds
    Case("lsh32_negative_s32", KP, [ldx(8, r8, r1, 0), and_(r8, 15), alu("sub", r8, 6, w32=True),
                                    alu("lsh", r8, 32), alu("arsh", r8, 32), mov(r6, r8), *lookup(ARRAY),
                                    add(r0, r6), ldx(1, r7, r0, 0), *ret()],
         "R0 min value is negative, either use unsigned index or do a if (index >=0) check."),
    # tracepoint ctx: the kernel's unsigned comparison lets negative offsets through
    Case("tp_ctx_negative_off", 5, [ldx(4, r0, r1, -16), exit_()]),
    Case("tp_ctx_common_fields", 5, [ldx(4, r0, r1, 4), exit_()], "invalid bpf_context access off=4 size=4"),
    # array lookups with a constant in-range key are never NULL
    Case("array_key_spilled_const", SF, [mov(r2, 1), stx(4, r10, -8, r2), mov(r2, r10), add(r2, -8),
                                         *lookup(ARRAY)[-2:], ldx(8, r0, r0, 0), exit_()]),
    Case("array_key_last", SF, [*lookup(ARRAY, key_val=3), ldx(8, r0, r0, 0), exit_()]),
    Case("array_key_misc", SF, [st(1, r10, -8, 0), st(1, r10, -7, 0), st(1, r10, -6, 0), st(1, r10, -5, 0),
                                mov(r2, r10), add(r2, -8), *lookup(ARRAY)[-2:], ldx(8, r0, r0, 0), exit_()],
         "invalid mem access 'map_value_or_null'"),
]
