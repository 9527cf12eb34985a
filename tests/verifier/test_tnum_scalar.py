"""Soundness of the tnum and scalar-bounds transfer functions, checked on concrete values.

Every concrete value drawn from the inputs' sets must land in the output's
set: this is what makes the simulator's verdicts safe (a tracked range never
excludes a value the program can produce).
"""

from hypothesis import given, settings, strategies as st

from pybpf.verifier import scalar as sc
from pybpf.verifier import tnum as tn
from pybpf.verifier.state import Reg
from pybpf.verifier.opcodes_ext import (ADD, AND, ARSH, JEQ, JGE, JGT, JLE, JLT, JNE, JSET, JSGE,
                                        JSGT, JSLE, JSLT, LSH, MUL, OR, RSH, SUB, XOR)

U64 = (1 << 64) - 1


@st.composite
def tnum_and_member(draw):
    mask = draw(st.integers(0, U64))
    value = draw(st.integers(0, U64)) & ~mask
    pick = draw(st.integers(0, U64)) & mask
    return tn.Tnum(value, mask), value | pick


_OPS = {tn.add: lambda a, b: (a + b) & U64, tn.sub: lambda a, b: (a - b) & U64,
        tn.mul: lambda a, b: (a * b) & U64, tn.and_: lambda a, b: a & b,
        tn.or_: lambda a, b: a | b, tn.xor: lambda a, b: a ^ b}


@settings(max_examples=150, deadline=None)
@given(tnum_and_member(), tnum_and_member(), st.sampled_from(list(_OPS)))
def test_tnum_ops_are_sound(a, b, f):
    (ta, va), (tb, vb) = a, b
    assert tn.contains(f(ta, tb), tn.const(_OPS[f](va, vb)))


def test_tnum_examples():
    assert tn.trange(0, 255) == tn.Tnum(0, 0xFF)
    assert tn.trange(4, 7) == tn.Tnum(4, 3)
    assert tn.add(tn.const(1), tn.Tnum(0, 1)) == tn.Tnum(0, 3)
    assert tn.to_str(tn.Tnum(0, 0xff)) == "(0x0; 0xff)"
    assert not tn.overlap(tn.const(1), tn.const(2))


@st.composite
def scalar_and_member(draw):
    """A register with bounds from a random range (and/or tnum), plus a value inside."""
    v = draw(st.integers(0, U64))
    kind = draw(st.sampled_from(["const", "urange", "srange", "tnum", "unknown"]))
    r = Reg.scalar_unknown()
    if kind == "const":
        sc.mark_known(r, v)
        return r, v
    if kind == "urange":
        width = draw(st.integers(0, 64))
        lo = v & ~((1 << width) - 1) if width < 64 else 0
        hi = lo + (1 << width) - 1 if width < 64 else U64
        r.umin, r.umax = lo, min(hi, U64)
    elif kind == "srange":
        sv = sc.s64(v)
        d = draw(st.integers(0, 1000))
        r.smin, r.smax = max(sv - d, sc.S64_MIN), min(sv + d, sc.S64_MAX)
    elif kind == "tnum":
        mask = draw(st.integers(0, U64))
        r.var_off = tn.Tnum(v & ~mask, mask)
    sc.bounds_sync(r)
    return r, v


def _member(r, v):
    v &= U64
    return (r.umin <= v <= r.umax and r.smin <= sc.s64(v) <= r.smax
            and r.u32min <= (v & 0xFFFFFFFF) <= r.u32max
            and r.s32min <= sc.s32(v) <= r.s32max and tn.contains(r.var_off, tn.const(v)))


def _concrete(op, a, b, w32):
    m = 0xFFFFFFFF if w32 else U64
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
    bits = 32 if w32 else 64
    s = b % bits
    if op == LSH:
        return (a << s) & m
    if op == RSH:
        return a >> s
    sa = a - (1 << bits) if a >> (bits - 1) else a
    return (sa >> s) & m


@settings(max_examples=150, deadline=None)
@given(scalar_and_member(), scalar_and_member(),
       st.sampled_from([ADD, SUB, MUL, AND, OR, XOR, LSH, RSH, ARSH]), st.booleans())
def test_scalar_alu_is_sound(a, b, op, w32):
    (ra, va), (rb, vb) = a, b
    assert _member(ra, va) and _member(rb, vb)
    d = ra.copy()
    sc.alu(d, rb, op, w32)
    if op in (LSH, RSH, ARSH) and not sc.safe_to_compute(op, rb, w32):
        assert d.var_off == tn.UNKNOWN
        return
    assert _member(d, _concrete(op, va, vb, w32))


_COND = {JEQ: lambda a, b: a == b, JNE: lambda a, b: a != b, JGT: lambda a, b: a > b,
         JGE: lambda a, b: a >= b, JLT: lambda a, b: a < b, JLE: lambda a, b: a <= b,
         JSET: lambda a, b: bool(a & b)}
_SCOND = {JSGT: lambda a, b: a > b, JSGE: lambda a, b: a >= b, JSLT: lambda a, b: a < b,
          JSLE: lambda a, b: a <= b}


@settings(max_examples=150, deadline=None)
@given(scalar_and_member(), scalar_and_member(), st.sampled_from(list(_COND) + list(_SCOND)),
       st.booleans())
def test_branch_refinement_is_sound(a, b, op, w32):
    (ra, va), (rb, vb) = a, b
    m = 0xFFFFFFFF if w32 else U64
    x, y = va & m, vb & m
    if op in _SCOND:
        f = sc.s32 if w32 else sc.s64
        taken = _SCOND[op](f(x), f(y))
    else:
        taken = _COND[op](x, y)
    pred = sc.branch_taken(ra, rb, op, w32)
    assert pred in (-1, int(taken))
    r1, r2 = ra.copy(), rb.copy()
    sc.refine_cond(r1, r2, op if taken else sc.rev_opcode(op), w32)
    sc.bounds_sync(r1)
    sc.bounds_sync(r2)
    assert _member(r1, va) and _member(r2, vb)


def test_alu32_zero_extends():
    r = Reg.scalar_const(-1)
    sc.alu(r, Reg.scalar_const(1), ADD, True)
    assert (r.umin, r.umax) == (0, 0)
    r = Reg.scalar_unknown()
    sc.alu(r, Reg.scalar_const(0), ADD, True)
    assert r.umax == 0xFFFFFFFF and r.smin == 0


def test_branch_refines_both_sides():
    r = Reg.scalar_unknown()
    t, f = r.copy(), r.copy()
    sc.refine_cond(t, Reg.scalar_const(10), JGT, False)
    sc.refine_cond(f, Reg.scalar_const(10), sc.rev_opcode(JGT), False)
    sc.bounds_sync(t)
    sc.bounds_sync(f)
    assert t.umin == 11 and f.umax == 10
