"""Conditional jumps on scalars: what ``r1 op r2`` teaches on each branch, and which branch is dead.

regs_refine_cond_op() and is_scalar_branch_taken() from kernel/bpf/verifier.c,
over the bounds kept by :mod:`pybpf.verifier.scalar`.
"""

from __future__ import annotations

from . import tnum as tn
from .opcodes_ext import JEQ, JGE, JGT, JLE, JLT, JNE, JSET, JSET_X, JSGE, JSGT, JSLE, JSLT
from .scalar import U32, U64, const_value, is_const, s32, s64

__all__ = ["refine_cond", "branch_taken", "rev_opcode", "flip_opcode"]

# ---- conditional jumps ---------------------------------------------------------------------

_REV = {JEQ: JNE, JNE: JEQ, JSET: JSET_X, JSET_X: JSET, JGT: JLE, JLE: JGT, JGE: JLT, JLT: JGE,
        JSGT: JSLE, JSLE: JSGT, JSGE: JSLT, JSLT: JSGE}
_FLIP = {JEQ: JEQ, JNE: JNE, JSET: JSET, JGT: JLT, JLT: JGT, JGE: JLE, JLE: JGE,
         JSGT: JSLT, JSLT: JSGT, JSGE: JSLE, JSLE: JSGE}


def rev_opcode(op: int) -> int:
    """The condition of the fall-through branch."""
    return _REV[op]


def flip_opcode(op: int) -> int:
    """The same condition with operands swapped."""
    return _FLIP[op]


def refine_cond(r1, r2, op: int, is32: bool) -> None:
    """regs_refine_cond_op(): learn from ``r1 op r2`` being true (both may change)."""
    if op in (JGE, JGT, JSGE, JSGT):
        op = _FLIP[op]
        r1, r2 = r2, r1
    if op == JEQ:
        if is32:
            r1.u32min = r2.u32min = max(r1.u32min, r2.u32min)
            r1.u32max = r2.u32max = min(r1.u32max, r2.u32max)
            r1.s32min = r2.s32min = max(r1.s32min, r2.s32min)
            r1.s32max = r2.s32max = min(r1.s32max, r2.s32max)
            t = tn.intersect(tn.subreg(r1.var_off), tn.subreg(r2.var_off))
            r1.var_off = tn.with_subreg(r1.var_off, t)
            r2.var_off = tn.with_subreg(r2.var_off, t)
        else:
            r1.umin = r2.umin = max(r1.umin, r2.umin)
            r1.umax = r2.umax = min(r1.umax, r2.umax)
            r1.smin = r2.smin = max(r1.smin, r2.smin)
            r1.smax = r2.smax = min(r1.smax, r2.smax)
            r1.var_off = r2.var_off = tn.intersect(r1.var_off, r2.var_off)
    elif op == JNE:
        if not is_const(r2, is32):
            r1, r2 = r2, r1
        if not is_const(r2, is32):
            return
        val = const_value(r2, is32)
        if is32:
            if r1.u32min == val:
                r1.u32min = (r1.u32min + 1) & U32
            if r1.u32max == val:
                r1.u32max = (r1.u32max - 1) & U32
            if r1.s32min == s32(val):
                r1.s32min = s32(r1.s32min + 1)
            if r1.s32max == s32(val):
                r1.s32max = s32(r1.s32max - 1)
        else:
            if r1.umin == val:
                r1.umin = (r1.umin + 1) & U64
            if r1.umax == val:
                r1.umax = (r1.umax - 1) & U64
            if r1.smin == s64(val):
                r1.smin = s64(r1.smin + 1)
            if r1.smax == s64(val):
                r1.smax = s64(r1.smax - 1)
    elif op in (JSET, JSET_X):
        if not is_const(r2, is32):
            r1, r2 = r2, r1
        if not is_const(r2, is32):
            return
        val = const_value(r2, is32)
        if op == JSET:
            if val == 0 or val & (val - 1):
                return
            t = tn.const(val)
            if is32:
                r1.var_off = tn.with_subreg(r1.var_off, tn.or_(tn.subreg(r1.var_off), t))
            else:
                r1.var_off = tn.or_(r1.var_off, t)
        else:
            if is32:
                t = tn.and_(tn.subreg(r1.var_off), tn.const(~val & U32))
                r1.var_off = tn.with_subreg(r1.var_off, t)
            else:
                r1.var_off = tn.and_(r1.var_off, tn.const(~val & U64))
    elif op == JLE:
        if is32:
            r1.u32max = min(r1.u32max, r2.u32max)
            r2.u32min = max(r1.u32min, r2.u32min)
        else:
            r1.umax = min(r1.umax, r2.umax)
            r2.umin = max(r1.umin, r2.umin)
    elif op == JLT:
        if is32:
            r1.u32max = min(r1.u32max, (r2.u32max - 1) & U32)
            r2.u32min = max((r1.u32min + 1) & U32, r2.u32min)
        else:
            r1.umax = min(r1.umax, (r2.umax - 1) & U64)
            r2.umin = max((r1.umin + 1) & U64, r2.umin)
    elif op == JSLE:
        if is32:
            r1.s32max = min(r1.s32max, r2.s32max)
            r2.s32min = max(r1.s32min, r2.s32min)
        else:
            r1.smax = min(r1.smax, r2.smax)
            r2.smin = max(r1.smin, r2.smin)
    elif op == JSLT:
        if is32:
            r1.s32max = min(r1.s32max, s32(r2.s32max - 1))
            r2.s32min = max(s32(r1.s32min + 1), r2.s32min)
        else:
            r1.smax = min(r1.smax, s64(r2.smax - 1))
            r2.smin = max(s64(r1.smin + 1), r2.smin)


def branch_taken(r1, r2, op: int, is32: bool) -> int:
    """is_scalar_branch_taken(): 1 always, 0 never, -1 unknown."""
    if is32:
        t1, t2 = tn.subreg(r1.var_off), tn.subreg(r2.var_off)
        umin1, umax1, umin2, umax2 = r1.u32min, r1.u32max, r2.u32min, r2.u32max
        smin1, smax1, smin2, smax2 = r1.s32min, r1.s32max, r2.s32min, r2.s32max
    else:
        t1, t2 = r1.var_off, r2.var_off
        umin1, umax1, umin2, umax2 = r1.umin, r1.umax, r2.umin, r2.umax
        smin1, smax1, smin2, smax2 = r1.smin, r1.smax, r2.smin, r2.smax
    if op in (JEQ, JNE):
        eq = op == JEQ
        if not t1.mask and not t2.mask:
            return int((t1.value == t2.value) == eq)
        if umin1 > umax2 or umax1 < umin2 or smin1 > smax2 or smax1 < smin2:
            return int(not eq)
        if not tn.overlap(t1, t2):
            return int(not eq)
        if not is32:
            if (r1.u32min > r2.u32max or r1.u32max < r2.u32min
                    or r1.s32min > r2.s32max or r1.s32max < r2.s32min):
                return int(not eq)
        return -1
    if op == JSET:
        if not is_const(r2, is32):
            r1, r2, t1, t2 = r2, r1, t2, t1
        if not is_const(r2, is32):
            return -1
        if (~t1.mask & t1.value) & t2.value:
            return 1
        if not ((t1.mask | t1.value) & t2.value):
            return 0
        return -1
    if op == JGT:
        return 1 if umin1 > umax2 else 0 if umax1 <= umin2 else -1
    if op == JSGT:
        return 1 if smin1 > smax2 else 0 if smax1 <= smin2 else -1
    if op == JLT:
        return 1 if umax1 < umin2 else 0 if umin1 >= umax2 else -1
    if op == JSLT:
        return 1 if smax1 < smin2 else 0 if smin1 >= smax2 else -1
    if op == JGE:
        return 1 if umin1 >= umax2 else 0 if umax1 < umin2 else -1
    if op == JSGE:
        return 1 if smin1 >= smax2 else 0 if smax1 < smin2 else -1
    if op == JLE:
        return 1 if umax1 <= umin2 else 0 if umin1 > umax2 else -1
    if op == JSLE:
        return 1 if smax1 <= smin2 else 0 if smin1 > smax2 else -1
    return -1
