"""Scalar bounds: tnum plus signed/unsigned 64- and 32-bit ranges, as the kernel keeps them.

Functions here mutate any object with the fields ``var_off`` (a :class:`Tnum`),
``smin``, ``smax``, ``umin``, ``umax``, ``s32min``, ``s32max``, ``u32min``,
``u32max`` (signed fields hold Python signed ints, unsigned ones non-negative
ints). They mirror the kernel's reg_bounds_sync(), adjust_scalar_min_max_vals(),
regs_refine_cond_op() and is_branch_taken() so that the simulator keeps and
loses exactly the facts the kernel keeps and loses.
"""

from __future__ import annotations

from . import tnum as tn
from .opcodes_ext import ADD, AND, ARSH, LSH, MUL, NEG, OR, RSH, SUB, XOR

U64 = tn.U64
U32 = tn.U32
S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1

__all__ = ["s64", "s32", "mark_known", "mark_unknown", "mark_known32", "bounds_sync",
           "is_const", "const_value", "alu", "zext_32_to_64", "coerce_sx", "coerce_subreg_sx",
           "refine_cond", "branch_taken", "rev_opcode", "flip_opcode", "bounds_valid",
           "coerce_to_size"]


def s64(v: int) -> int:
    v &= U64
    return v - (1 << 64) if v >> 63 else v


def s32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v >> 31 else v


def _sx(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


# ---- marking -------------------------------------------------------------------------------

def mark_known(r, v: int) -> None:
    v &= U64
    r.var_off = tn.Tnum(v, 0)
    r.smin = r.smax = s64(v)
    r.umin = r.umax = v
    r.s32min = r.s32max = s32(v)
    r.u32min = r.u32max = v & U32


def mark_known32(r, v: int) -> None:
    v &= U32
    r.var_off = tn.const_subreg(r.var_off, v)
    r.s32min = r.s32max = s32(v)
    r.u32min = r.u32max = v


def mark64_unbounded(r) -> None:
    r.smin, r.smax, r.umin, r.umax = S64_MIN, S64_MAX, 0, U64


def mark32_unbounded(r) -> None:
    r.s32min, r.s32max, r.u32min, r.u32max = S32_MIN, S32_MAX, 0, U32


def mark_unknown(r) -> None:
    r.var_off = tn.UNKNOWN
    mark64_unbounded(r)
    mark32_unbounded(r)


def is_const(r, is32: bool = False) -> bool:
    return tn.subreg_is_const(r.var_off) if is32 else tn.is_const(r.var_off)


def const_value(r, is32: bool = False) -> int:
    return r.var_off.value & U32 if is32 else r.var_off.value


# ---- bounds sync ---------------------------------------------------------------------------

def update_bounds32(r) -> None:
    v32 = tn.subreg(r.var_off)
    r.s32min = max(r.s32min, s32(v32.value | (v32.mask & 0x80000000)))
    r.s32max = min(r.s32max, s32(v32.value | (v32.mask & 0x7FFFFFFF)))
    r.u32min = max(r.u32min, v32.value)
    r.u32max = min(r.u32max, v32.value | v32.mask)


def update_bounds64(r) -> None:
    v = r.var_off
    r.smin = max(r.smin, s64(v.value | (v.mask & (1 << 63))))
    r.smax = min(r.smax, s64(v.value | (v.mask & S64_MAX)))
    r.umin = max(r.umin, v.value)
    r.umax = min(r.umax, v.value | v.mask)


def update_bounds(r) -> None:
    update_bounds32(r)
    update_bounds64(r)


def _deduce32(r) -> None:
    if (r.umin >> 32) == (r.umax >> 32):
        r.u32min = max(r.u32min, r.umin & U32)
        r.u32max = min(r.u32max, r.umax & U32)
        if s32(r.umin) <= s32(r.umax):
            r.s32min = max(r.s32min, s32(r.umin))
            r.s32max = min(r.s32max, s32(r.umax))
    if (r.smin >> 32) == (r.smax >> 32):
        if (r.smin & U32) <= (r.smax & U32):
            r.u32min = max(r.u32min, r.smin & U32)
            r.u32max = min(r.u32max, r.smax & U32)
        if s32(r.smin) <= s32(r.smax):
            r.s32min = max(r.s32min, s32(r.smin))
            r.s32max = min(r.s32max, s32(r.smax))
    if ((r.umin >> 32) + 1) & U32 == (r.umax >> 32) & U32 and s32(r.umin) < 0 <= s32(r.umax):
        r.s32min = max(r.s32min, s32(r.umin))
        r.s32max = min(r.s32max, s32(r.umax))
    if (((r.smin & U64) >> 32) + 1) & U32 == ((r.smax & U64) >> 32) & U32 and s32(r.smin) < 0 <= s32(r.smax):
        r.s32min = max(r.s32min, s32(r.smin))
        r.s32max = min(r.s32max, s32(r.smax))
    if s32(r.u32min) <= s32(r.u32max):
        r.s32min = max(r.s32min, s32(r.u32min))
        r.s32max = min(r.s32max, s32(r.u32max))
    if (r.s32min & U32) <= (r.s32max & U32):
        r.u32min = max(r.u32min, r.s32min & U32)
        r.u32max = min(r.u32max, r.s32max & U32)
    elif r.u32max < (r.s32min & U32):
        # the s32 range wraps around the u32 one: only its non-negative part meets it
        r.s32min = s32(r.u32min)
        r.u32max = min(r.u32max, r.s32max & U32)
    elif (r.s32max & U32) < r.u32min:
        # ... or only its negative part does
        r.s32max = s32(r.u32max)
        r.u32min = max(r.u32min, r.s32min & U32)


def _deduce64(r) -> None:
    if s64(r.umin) <= s64(r.umax):
        r.smin = max(r.smin, s64(r.umin))
        r.smax = min(r.smax, s64(r.umax))
    if (r.smin & U64) <= (r.smax & U64):
        r.umin = max(r.umin, r.smin & U64)
        r.umax = min(r.umax, r.smax & U64)
    else:
        if r.umax < (r.smin & U64):
            r.smin = s64(r.umin)
            r.umax = min(r.umax, r.smax & U64)
        elif (r.smax & U64) < r.umin:
            r.smax = s64(r.umax)
            r.umin = max(r.umin, r.smin & U64)


def _deduce_mixed(r) -> None:
    hi = ~U32 & U64
    r.umin = max(r.umin, (r.umin & hi) | r.u32min)
    r.umax = min(r.umax, (r.umax & hi) | r.u32max)
    r.smin = max(r.smin, s64((r.smin & hi) | r.u32min))
    r.smax = min(r.smax, s64((r.smax & hi) | r.u32max))
    if r.s32min >= 0 and r.smin >= S32_MIN and r.smax <= S32_MAX:
        r.smin = r.s32min
        r.smax = r.s32max
        r.umin = r.s32min
        r.umax = r.s32max
        r.var_off = tn.intersect(r.var_off, tn.trange(r.smin, r.smax))


def deduce_bounds(r) -> None:
    _deduce32(r)
    _deduce64(r)
    _deduce_mixed(r)


def bound_offset(r) -> None:
    v64 = tn.intersect(r.var_off, tn.trange(r.umin, r.umax))
    v32 = tn.intersect(tn.subreg(v64), tn.trange(r.u32min, r.u32max))
    r.var_off = tn.or_(tn.clear_subreg(v64), v32)


def bounds_sync(r) -> None:
    v = r.var_off
    if not v.mask:  # a constant whose bounds already say so: nothing to learn (the common case)
        c = v.value
        if (r.umin == c == r.umax and r.smin == r.smax == s64(c) and r.u32min == r.u32max == c & U32
                and r.s32min == r.s32max == s32(c)):
            return
    update_bounds(r)
    deduce_bounds(r)
    deduce_bounds(r)
    bound_offset(r)
    update_bounds(r)


def bounds_valid(r) -> bool:
    """False for a contradictory state (what a dead branch refines into)."""
    if r.umin > r.umax or r.smin > r.smax or r.u32min > r.u32max or r.s32min > r.s32max:
        return False
    v = r.var_off
    if v.value & v.mask:
        return False
    if tn.is_const(v):
        c = v.value
        if not (r.umin == c == r.umax and r.smin == s64(c) == r.smax):
            return False
    return True


def zext_32_to_64(r) -> None:
    r.var_off = tn.subreg(r.var_off)
    r.umin = r.u32min
    r.umax = r.u32max
    r.smax = r.s32max if (r.s32min >= 0 and r.s32max >= 0) else U32
    r.smin = r.s32min if r.s32min >= 0 else 0


# ---- ALU transfer functions ----------------------------------------------------------------

def _add(dmin, dmax, smin_, smax_, lo, hi):
    a, b = dmin + smin_, dmax + smax_
    if a < lo or a > hi or b < lo or b > hi:
        return None
    return a, b


def _uadd(dmin, dmax, smin_, smax_, m):
    a, b = dmin + smin_, dmax + smax_
    ov_min, ov_max = a > m, b > m
    if not ov_min and ov_max:
        return 0, m
    return a & m, b & m


def _usub(dmin, dmax, smin_, smax_, m):
    a, b = dmin - smax_, dmax - smin_
    un_min, un_max = a < 0, b < 0
    if un_min and not un_max:
        return 0, m
    return a & m, b & m


def _mul_signed(a0, a1, b0, b1, lo, hi):
    prods = [a0 * b0, a0 * b1, a1 * b0, a1 * b1]
    if any(p < lo or p > hi for p in prods):
        return lo, hi
    return min(prods), max(prods)


def _bit32(d, s, op):
    v32 = tn.subreg(d.var_off)
    if op == AND:
        if tn.subreg_is_const(s.var_off) and tn.subreg_is_const(d.var_off):
            mark_known32(d, v32.value)
            return
        d.u32min = v32.value
        d.u32max = min(d.u32max, s.u32max)
    elif op == OR:
        if tn.subreg_is_const(s.var_off) and tn.subreg_is_const(d.var_off):
            mark_known32(d, v32.value)
            return
        d.u32min = max(d.u32min, s.u32min)
        d.u32max = v32.value | v32.mask
    else:
        if tn.subreg_is_const(s.var_off) and tn.subreg_is_const(d.var_off):
            mark_known32(d, v32.value)
            return
        d.u32min = v32.value
        d.u32max = v32.value | v32.mask
    if s32(d.u32min) <= s32(d.u32max):
        d.s32min, d.s32max = s32(d.u32min), s32(d.u32max)
    else:
        d.s32min, d.s32max = S32_MIN, S32_MAX


def _bit64(d, s, op):
    v = d.var_off
    if tn.is_const(s.var_off) and tn.is_const(v):
        mark_known(d, v.value)
        return
    if op == AND:
        d.umin = v.value
        d.umax = min(d.umax, s.umax)
    elif op == OR:
        d.umin = max(d.umin, s.umin)
        d.umax = v.value | v.mask
    else:
        d.umin = v.value
        d.umax = v.value | v.mask
    if s64(d.umin) <= s64(d.umax):
        d.smin, d.smax = s64(d.umin), s64(d.umax)
    else:
        d.smin, d.smax = S64_MIN, S64_MAX
    update_bounds(d)


def _lsh32_bounds(d, umin_val, umax_val):
    d.s32min, d.s32max = S32_MIN, S32_MAX
    if umax_val > 31 or d.u32max > (1 << (31 - umax_val)):
        d.u32min, d.u32max = 0, U32
    else:
        d.u32min = (d.u32min << umin_val) & U32
        d.u32max = (d.u32max << umax_val) & U32


def _lsh64_bounds(d, umin_val, umax_val):
    # ``<< 32`` (then ``s>> 32``) is how compilers sign-extend a subregister: keep s32 bounds
    if umin_val == 32 and umax_val == 32:
        d.smax = d.s32max << 32
        d.smin = d.s32min << 32
    else:
        d.smax, d.smin = S64_MAX, S64_MIN
    if d.umax > (1 << (63 - umax_val)):
        d.umin, d.umax = 0, U64
    else:
        d.umin = (d.umin << umin_val) & U64
        d.umax = (d.umax << umax_val) & U64


def safe_to_compute(op: int, src, alu32: bool) -> bool:
    """is_safe_to_compute_dst_reg_range(): which ops keep any range at all."""
    if op in (ADD, SUB, NEG, AND, XOR, OR, MUL):
        return True
    if op in (LSH, RSH, ARSH):
        bits = 32 if alu32 else 64
        if alu32:
            c = (tn.subreg_is_const(src.var_off) and src.s32min == src.s32max
                 and src.u32min == src.u32max)
        else:
            c = tn.is_const(src.var_off) and src.smin == src.smax and src.umin == src.umax
        return c and src.umax < bits
    return False


def alu(d, s, op: int, alu32: bool) -> None:
    """adjust_scalar_min_max_vals(): ``d op= s`` on two scalars (``s`` is not modified)."""
    if not safe_to_compute(op, s, alu32):
        mark_unknown(d)
        return
    if not d.var_off.mask and not s.var_off.mask and op != NEG:
        mark_known(d, _const_op(op, d.var_off.value, s.var_off.value, alu32))
        return  # constants fold exactly, as the kernel's bounds and tnums do
    if op == ADD:
        r = _add(d.s32min, d.s32max, s.s32min, s.s32max, S32_MIN, S32_MAX)
        d.s32min, d.s32max = r if r else (S32_MIN, S32_MAX)
        d.u32min, d.u32max = _uadd(d.u32min, d.u32max, s.u32min, s.u32max, U32)
        r = _add(d.smin, d.smax, s.smin, s.smax, S64_MIN, S64_MAX)
        d.smin, d.smax = r if r else (S64_MIN, S64_MAX)
        d.umin, d.umax = _uadd(d.umin, d.umax, s.umin, s.umax, U64)
        d.var_off = tn.add(d.var_off, s.var_off)
    elif op in (SUB, NEG):
        if op == NEG:
            src = d.__class__.__new__(d.__class__)
            for f in ("var_off", "smin", "smax", "umin", "umax", "s32min", "s32max", "u32min", "u32max"):
                setattr(src, f, getattr(d, f))
            mark_known(d, 0)
            s = src
        r = _add(d.s32min, d.s32max, -s.s32max, -s.s32min, S32_MIN, S32_MAX)
        d.s32min, d.s32max = r if r else (S32_MIN, S32_MAX)
        d.u32min, d.u32max = _usub(d.u32min, d.u32max, s.u32min, s.u32max, U32)
        r = _add(d.smin, d.smax, -s.smax, -s.smin, S64_MIN, S64_MAX)
        d.smin, d.smax = r if r else (S64_MIN, S64_MAX)
        d.umin, d.umax = _usub(d.umin, d.umax, s.umin, s.umax, U64)
        d.var_off = tn.sub(d.var_off, s.var_off)
    elif op == MUL:
        d.var_off = tn.mul(d.var_off, s.var_off)
        a, b = d.u32min * s.u32min, d.u32max * s.u32max
        d.u32min, d.u32max = (a, b) if b <= U32 else (0, U32)
        d.s32min, d.s32max = _mul_signed(d.s32min, d.s32max, s.s32min, s.s32max, S32_MIN, S32_MAX)
        a, b = d.umin * s.umin, d.umax * s.umax
        d.umin, d.umax = (a, b) if b <= U64 else (0, U64)
        d.smin, d.smax = _mul_signed(d.smin, d.smax, s.smin, s.smax, S64_MIN, S64_MAX)
    elif op in (AND, OR, XOR):
        f = tn.and_ if op == AND else tn.or_ if op == OR else tn.xor
        d.var_off = f(d.var_off, s.var_off)
        _bit32(d, s, op)
        _bit64(d, s, op)
    elif op == LSH:
        if alu32:
            sub = tn.subreg(d.var_off)
            _lsh32_bounds(d, s.u32min, s.u32max)
            d.var_off = tn.subreg(tn.lshift(sub, s.u32min))
            mark64_unbounded(d)
            update_bounds32(d)
        else:
            _lsh64_bounds(d, s.umin, s.umax)
            _lsh32_bounds(d, s.umin, s.umax)
            d.var_off = tn.lshift(d.var_off, s.umin)
            update_bounds(d)
    elif op == RSH:
        if alu32:
            sub = tn.subreg(d.var_off)
            d.s32min, d.s32max = S32_MIN, S32_MAX
            d.var_off = tn.rshift(sub, s.u32min)
            d.u32min >>= s.u32max
            d.u32max >>= s.u32min
            mark64_unbounded(d)
            update_bounds32(d)
        else:
            d.smin, d.smax = S64_MIN, S64_MAX
            d.var_off = tn.rshift(d.var_off, s.umin)
            d.umin >>= s.umax
            d.umax >>= s.umin
            mark32_unbounded(d)
            update_bounds(d)
    elif op == ARSH:
        if alu32:
            k = s.u32min
            d.s32min >>= k
            d.s32max >>= k
            d.var_off = tn.arshift(tn.subreg(d.var_off), k, 32)
            d.u32min, d.u32max = 0, U32
            mark64_unbounded(d)
            update_bounds32(d)
        else:
            k = s.umin
            d.smin >>= k
            d.smax >>= k
            d.var_off = tn.arshift(d.var_off, k, 64)
            d.umin, d.umax = 0, U64
            mark32_unbounded(d)
            update_bounds(d)
    if alu32:
        zext_32_to_64(d)
    bounds_sync(d)


def _const_op(op: int, a: int, b: int, alu32: bool) -> int:
    bits = 32 if alu32 else 64
    m = (1 << bits) - 1
    a &= m
    b &= m
    if op == ADD:
        return (a + b) & m
    if op == SUB:
        return (a - b) & m
    if op == MUL:
        return (a * b) & m
    if op == AND:
        return a & b
    if op == OR:
        return a | b
    if op == XOR:
        return a ^ b
    if op == LSH:
        return (a << b) & m
    if op == RSH:
        return a >> b
    return (_sx(a, bits) >> b) & m  # ARSH


def coerce_to_size(r, size: int) -> None:
    """coerce_reg_to_size(): zero-extending truncation to ``size`` bytes (narrow loads)."""
    if size >= 8:
        return
    r.var_off = tn.cast(r.var_off, size)
    mask = (1 << (size * 8)) - 1
    if (r.umin & ~mask) == (r.umax & ~mask):
        r.umin &= mask
        r.umax &= mask
    else:
        r.umin, r.umax = 0, mask
    r.smin, r.smax = r.umin, r.umax
    if size >= 4:
        pass
    if (r.u32min & ~mask) == (r.u32max & ~mask) and size < 4:
        r.u32min &= mask
        r.u32max &= mask
    elif size < 4:
        r.u32min, r.u32max = 0, mask
    r.s32min, r.s32max = s32(r.u32min), s32(r.u32max)
    if r.s32min > r.s32max:
        r.s32min, r.s32max = S32_MIN, S32_MAX
    if size == 4:
        r.u32min, r.u32max = r.umin, r.umax
        r.s32min, r.s32max = (s32(r.umin), s32(r.umax)) if s32(r.umin) <= s32(r.umax) else (S32_MIN, S32_MAX)
    bounds_sync(r)


def _sx_default(r, size: int) -> None:
    bits = size * 8
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    r.smin = r.s32min = lo
    r.smax = r.s32max = hi
    r.umin = r.u32min = 0
    r.umax = U64
    r.u32max = U32
    r.var_off = tn.UNKNOWN


def coerce_sx(r, size: int) -> None:
    """coerce_reg_to_size_sx(): sign-extend the low ``size`` bytes into 64 bits."""
    bits = size * 8
    if tn.is_const(r.var_off):
        mark_known(r, _sx(r.var_off.value, bits))
        return
    top_max = (r.smax & U64) >> bits
    top_min = (r.smin & U64) >> bits
    if top_max != top_min:
        _sx_default(r, size)
        return
    a, b = _sx(r.smax, bits), _sx(r.smin, bits)
    hi, lo = max(a, b), min(a, b)
    if (hi >= 0) == (lo >= 0):
        r.smin = r.s32min = lo
        r.smax = r.s32max = hi
        r.umin = r.u32min = lo & U64
        r.umax = r.u32max = hi & U64
        r.u32min &= U32
        r.u32max &= U32
        r.var_off = tn.trange(lo, hi)
        return
    _sx_default(r, size)


def coerce_subreg_sx(r, size: int) -> None:
    """coerce_subreg_to_size_sx(): sign-extend within the low 32 bits (movsx32)."""
    bits = size * 8
    if tn.is_const(r.var_off):
        v = _sx(r.var_off.value, bits) & U32
        mark_known(r, v)
        return
    top_max = (r.s32max & U32) >> bits
    top_min = (r.s32min & U32) >> bits
    if top_max == top_min:
        a, b = _sx(r.s32max, bits), _sx(r.s32min, bits)
        hi, lo = max(a, b), min(a, b)
        if (hi >= 0) == (lo >= 0):
            r.s32min, r.s32max = lo, hi
            r.u32min, r.u32max = lo & U32, hi & U32
            r.var_off = tn.subreg(tn.trange(lo & U32, hi & U32))
            return
    r.s32min, r.s32max = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    r.u32min, r.u32max = 0, U32
    r.var_off = tn.subreg(tn.UNKNOWN)


# Conditional-jump refinement lives in its own module; re-exported for one import site.
from .scalar_jmp import branch_taken, flip_opcode, refine_cond, rev_opcode  # noqa: E402,F401
