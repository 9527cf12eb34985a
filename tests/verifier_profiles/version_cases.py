"""Programs whose verdict differs between 6.1, 6.12 and 6.18: one or two per modelled difference.

Each case says which kernels accept it (``accepted_by``), from the release
history the profile encodes; the recorded guest verdicts
(``recorded.json``) are the authority, and the fast test checks both against
``verify(..., kernel=...)``. Built with the verifier corpus' DSL so that the
recorder (tests/kernels/profile_record.py) handles them like corpus cases.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "verifier", "corpus")
if _CORPUS not in sys.path:
    sys.path.insert(0, _CORPUS)

from dsl import (ARRAY, Case, I, add, alu, call, exit_, jmp, ldx, ldxsx, lookup, mov, mov32, neg,  # noqa: E402
                 r0, r1, r2, r8, r10, st)

from pybpf.asm import opcodes as op  # noqa: E402

__all__ = ["CASES", "ACCEPTED_BY"]

SOCKET, KPROBE, SCHED_CLS, XDP = 1, 2, 3, 6
ALL = ("6.1", "6.12", "6.18")


@dataclass(frozen=True)
class V:
    case: Case
    accepted_by: tuple


def _c(name, pt, insns, accepted_by, expect=None):
    return V(Case(f"ver_{name}", pt, insns, expect, tags=("version",)), tuple(accepted_by))


def _movsx(dst, src, bits, w32=False):
    return I((op.ALU if w32 else op.ALU64) | op.MOV | op.X, dst, src, bits)


def _end(dst, bits, *, alu64=False, be=False):
    code = (op.ALU64 if alu64 else op.ALU) | op.END | (op.X if be else op.K)
    return I(code, dst, 0, 0, bits)


_UNINIT_R0 = [ldx(8, r0, r0, 0), exit_()]  # reached only if the branch is not proven dead
_V = [
    # ISA v4 (6.6)
    _c("sdiv64", SOCKET, [mov(r0, 10), alu("div", r0, -3, off=1), exit_()], ("6.12", "6.18")),
    _c("smod32", SOCKET, [mov32(r0, 10), alu("mod", r0, 3, w32=True, off=1), exit_()], ("6.12", "6.18")),
    _c("sdiv_dead", SOCKET, [mov(r0, 0), jmp("jeq", r0, 0, 1), alu("div", r0, 3, off=1), exit_()], ALL),
    _c("movsx8", SOCKET, [mov(r1, 200), _movsx(r0, r1, 8), exit_()], ("6.12", "6.18")),
    _c("movsx16_32", SOCKET, [mov(r1, 7), _movsx(r0, r1, 16, w32=True), exit_()], ("6.12", "6.18")),
    _c("ldsx8", SOCKET, [st(8, r10, -8, -3), ldxsx(1, r0, r10, -8), exit_()], ("6.12", "6.18")),
    _c("bswap64", SOCKET, [mov(r0, 10), _end(r0, 64, alu64=True), exit_()], ("6.12", "6.18")),
    _c("bswap16_dead", SOCKET, [mov(r0, 0), jmp("jeq", r0, 0, 1), _end(r0, 16, alu64=True), exit_()],
       ("6.12", "6.18")),  # "unknown opcode" is found before the walk, dead or not
    # BPF_END range tracking (6.18.y)
    _c("be16_const", SOCKET, [mov(r8, 0x100), _end(r8, 16, be=True), jmp("jeq", r8, 1, 2),
                              mov(r0, 0), exit_(), mov(r0, 0), exit_()], ALL),
    _c("be16_branch", SOCKET, [mov(r8, 0x100), _end(r8, 16, be=True), jmp("jeq", r8, 1, 2),
                               *_UNINIT_R0, mov(r0, 0), exit_()], ("6.18",)),
    _c("le16_trunc", SOCKET, [mov(r8, 0x10001), _end(r8, 16), jmp("jeq", r8, 1, 2),
                              *_UNINIT_R0, mov(r0, 0), exit_()], ("6.18",)),
    # BPF_NEG range tracking (6.17)
    _c("neg_branch", SOCKET, [mov(r8, 5), neg(r8), jmp("jeq", r8, -5, 2), *_UNINIT_R0, mov(r0, 0), exit_()],
       ("6.18",)),
    _c("neg_fp_offset", SOCKET, [ldx(4, r2, r1, 0), alu("and", r2, 8), neg(r2), mov(r1, r10), add(r1, r2),
                                 st(1, r1, -8, 0), mov(r0, 0), exit_()], ("6.18",)),
    # BPF_ST into ctx (6.3)
    _c("st_ctx_cb", SOCKET, [st(4, r1, 48, 1), mov(r0, 0), exit_()], ("6.12", "6.18")),
    _c("stx_ctx_cb", SOCKET, [mov(r2, 1), I(op.STX | op.MEM | op.W, r1, r2, 48), mov(r0, 0), exit_()], ALL),
    # array lookup with a constant in-range key: not null (6.14)
    _c("array_const_key_nonnull", SOCKET, [*lookup(ARRAY, key_val=1), ldx(8, r0, r0, 0), mov(r0, 0), exit_()],
       ("6.18",)),
    _c("array_const_key_oob", SOCKET, [*lookup(ARRAY, key_val=4), ldx(8, r0, r0, 0), mov(r0, 0), exit_()], ()),
    _c("array_const_key_checked", SOCKET, [*lookup(ARRAY, key_val=1), jmp("jeq", r0, 0, 1),
                                           ldx(8, r1, r0, 0), mov(r0, 0), exit_()], ALL),
    # helpers per program type and kernel
    _c("sk_pid_tgid", SOCKET, [call(14), mov(r0, 0), exit_()], ("6.12", "6.18")),
    _c("sk_uid_gid", SOCKET, [call(15), mov(r0, 0), exit_()], ("6.18",)),
    _c("xdp_comm", XDP, [mov(r1, r10), add(r1, -16), mov(r2, 16), call(16), mov(r0, 0), exit_()], ("6.18",)),
    _c("tc_ktime_coarse", SCHED_CLS, [call(160), mov(r0, 0), exit_()], ALL),
    _c("kprobe_cgrp_storage_delete", KPROBE, [call(211), mov(r0, 0), exit_()], ()),  # 6.1: invalid func
    _c("kprobe_unknown_helper", KPROBE, [call(230), mov(r0, 0), exit_()], ()),
    # newer than ISA v4
    _c("load_acquire", SOCKET, [st(8, r10, -8, 0), I(op.STX | op.ATOMIC | op.DW, r0, r10, -8, op.LOAD_ACQ),
                                exit_()], ("6.18",)),
    _c("may_goto", SOCKET, [mov(r0, 0), I(op.JCOND_OP, 0, 0, 1, 0), mov(r0, 1), exit_()], ("6.12", "6.18")),
]

CASES = [v.case for v in _V]
ACCEPTED_BY = {v.case.name: v.accepted_by for v in _V}
