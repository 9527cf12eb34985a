"""Bounded loops loaded without CAP_PERFMON: the kernel also walks mispredicted branches.

Each row is loaded as root and from the capability-reduced worker
(tests/verifier/unpriv.py); ``P``/``U`` are the 6.18 kernel's verdicts. Every
loop here is accepted as root. Unprivileged, a branch whose outcome the
verifier knows is also followed the other way as a speculative path with the
compared registers unknown: a constant-counter loop's mispredicted exit
re-enters the loop with the counter unknown, narrows back down to the states it
already holds, and is refused as ``infinite loop detected``. A stack store the
kernel must fence for Spectre v4 (one that overwrites a spill or uninitialised
bytes) ends every speculative path that reaches it, so such a store inside the
loop makes the same loop acceptable. Rows tagged ``slow`` run to the 1M
instruction limit and are only loaded with ``--slow``.
"""

from dsl import ARRAY, Case, R, add, and_, call, exit_, ja, jmp, ldx, lookup, mov, r0, r1, r2, r6, r8, r10, st, stx, sub

SF = 1
_LOOP = "infinite loop detected"
_BIG = "BPF program is too large"
_A = lookup(ARRAY)  # r0 = 48-byte array value, or NULL
_PATHS = "R1 tried to add from different maps, paths or scalars"

# name, insns, unprivileged verdict, tags
T = [
    ("const_counter", [mov(r0, 0), add(r0, 1), jmp("jlt", r0, 10, -2), exit_()], _LOOP + " at insn 1", ()),
    ("const_counter_jmp32", [mov(r0, 0), add(r0, 1), jmp("jgt", r0, 9, 1, w32=True), ja(-3), exit_()],
     _LOOP + " at insn 1", ()),
    ("const_counter_helper", [mov(r6, 0), call(7), add(r6, 1), jmp("jlt", r6, 5, -3), mov(r0, 0), exit_()],
     _LOOP + " at insn 3", ()),
    ("const_counter_map_store", [*_A, jmp("jeq", r0, 0, 5), mov(r6, 0), add(r6, 1), stx(8, r0, 0, r6),
                                 jmp("jlt", r6, 10, -3), mov(r0, 0), exit_()], _LOOP + " at insn 8", ()),
    # a Spectre v4 fenced stack store inside the loop ends the speculative re-entry
    ("store_u64_uninit", [mov(r0, 0), add(r0, 1), stx(8, r10, -8, r0), jmp("jlt", r0, 10, -3), exit_()], None, ()),
    ("store_imm_uninit", [mov(r0, 0), add(r0, 1), st(8, r10, -8, 7), jmp("jlt", r0, 10, -3), exit_()], None, ()),
    ("store_u32_uninit", [mov(r0, 0), add(r0, 1), stx(4, r10, -8, r0), jmp("jlt", r0, 10, -3), exit_()], None, ()),
    ("store_u32_over_u32_spill", [ldx(4, r2, r1, 0), stx(4, r10, -8, r2), stx(4, r10, -4, r2), mov(r0, 0),
                                  add(r0, 1), stx(4, r10, -8, r2), jmp("jlt", r0, 10, -3), exit_()], None, ()),
    ("store_zero_over_imm_spill", [st(4, r10, -8, 0), mov(r0, 0), add(r0, 1), st(4, r10, -8, 0),
                                   jmp("jlt", r0, 10, -3), exit_()], None, ()),
    ("store_zero_over_zero", [st(4, r10, -4, 0), mov(r0, 0), add(r0, 1), st(4, r10, -4, 0),
                              jmp("jlt", r0, 10, -3), exit_()], _LOOP + " at insn 2", ()),  # data over data: no fence
    ("store_u32_over_imm_spill", [ldx(4, r2, r1, 0), stx(4, r10, -4, r2), st(4, r10, -8, 0), mov(r0, 0),
                                  add(r0, 1), stx(4, r10, -8, r2), jmp("jlt", r0, 10, -3), exit_()], None, ()),
    ("unknown_bound_store", [ldx(4, r6, r1, 0), and_(r6, 7), mov(r0, 0), add(r0, 1), stx(8, r10, -8, r0),
                             sub(r6, 1), jmp("jsgt", r6, 0, -4), exit_()], None, ()),
    ("store_then_leak", [mov(r0, 0), add(r0, 1), stx(8, r10, -8, r0), jmp("jlt", r0, 10, -3), mov(r0, r10),
                         exit_()], "R0 leaks addr as return value", ()),
    # a variable map index: the second iteration masks with another window
    ("map_var_index", [mov(r6, r1), *_A, jmp("jeq", r0, 0, 9), ldx(4, r8, r6, 0), and_(r8, 7), mov(r1, r0),
                       add(r1, R(8)), st(1, r1, 0, 1), sub(r8, 1), jmp("jsgt", r8, 0, -5), mov(r0, 0), exit_(),
                       mov(r0, 0), exit_()], _PATHS, ()),
    # the speculative re-entry never repeats a state: it runs to the instruction limit
    ("countdown_jne", [mov(r0, 10), sub(r0, 1), jmp("jne", r0, 0, -2), exit_()], _BIG, ("slow",)),
    ("unknown_bound", [ldx(4, r6, r1, 0), and_(r6, 7), mov(r0, 0), add(r0, 1), sub(r6, 1),
                       jmp("jsgt", r6, 0, -3), exit_()], _BIG, ("slow",)),
]

CASES = []
for _name, _insns, _u, _tags in T:
    CASES.append(Case(f"loop_priv_{_name}", SF, _insns, None, tags=_tags))
    CASES.append(Case(f"loop_unpriv_{_name}", SF, _insns, _u, tags=_tags, priv=False))
