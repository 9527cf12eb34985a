"""Blocks shaped after the verifier audit: the state-tracking facts random idioms never reach.

224,000 programs of :mod:`pybpf.testing.blocks` idioms found no simulator bug
that a hand-written audit then found (tests/verifier/corpus/cases_audit_*.py):
the idioms bound a value and use it in the same register, so the facts the
kernel carries *between* registers and stack slots were never exercised.
Each block here is valid by construction (Linux 6.18 accepts it) and needs
one such fact:

* ``linked_scalars``: ``r2 = r1; r1 += c``, bound one, use the other
  (scalar ids with a constant delta, 64- and 32-bit, also across a call);
* ``spill_fill``: spill a scalar, bound the register, fill, use the fill as a
  map value offset; spills and fills of 32-bit halves and constant stores;
* ``ptr_eq``: two lookups compared for pointer equality, one NULL-checked,
  the other used on the equal branch only;
* ``flag_chain``: ``if rX & bit goto +1; <write>`` chains and spill/compare
  chains whose paths only pruning keeps linear;
* ``sign_boundary``: w-register range checks around 0x7fffffff/0x80000000
  that only the u32/s32 bounds deduction turns into a usable offset;
* ``precise_diamond``: a scalar made 0..N differently on two paths and used
  as an offset after a join and a helper call (precision backtracking).

The functions take the :class:`pybpf.testing.blocks.Gen` whose builder they
append to, and follow its register discipline (r0-r5 temporaries, r7-r9
scalars when the block ends, r6 the context).
"""

from __future__ import annotations

from contextlib import contextmanager

from pybpf.asm.registers import R

__all__ = ["SHAPES", "linked_scalars", "spill_fill", "ptr_eq", "flag_chain", "sign_boundary",
           "precise_diamond"]

FP = R[10]
KEY = -80
GENERAL = 64
SIGN = 0x80000000
# Tests per chain. The kernel prunes a chain to linear work; the simulator (as of this
# writing) does not when a helper call follows the chain, so its work doubles per test:
# past 10 a program costs seconds (past ~17 it hits the 1M-insn limit and is rejected).
MAX_FLAGS = 10


@contextmanager
def _value(g, m=None, const_key: bool = False):
    """A lookup of ``m`` (random map by default); the body runs with r0 a non-NULL value pointer.

    ``const_key``: store an immediate key, so no scalar register is spilled (a spill
    gives a register linked with a constant delta a fresh id, breaking the link)."""
    b, r = g.b, g.rng
    m = m or r.choice(g.maps)
    if const_key:
        b.st(FP, KEY, r.randint(0, m.max_entries), 4)
    else:
        g._key(m)
    b.ld_map_fd(R[1], m)
    b.stack_ptr(R[2], KEY)
    b.call("map_lookup_elem")
    init = set(g.init)
    with b.if_(R[0], "!=", 0):
        yield m
    g.init = init  # writes in the body happen on one path only


def _use(g, base, off_reg) -> None:
    """One byte at ``base + off_reg``, ``off_reg`` proven within the map value (a use that
    makes the kernel check, and backtrack the precision of, the offset's bounds)."""
    b, r = g.b, g.rng
    b.mov(R[3], base)
    b.add(R[3], off_reg)
    if r.random() < 0.7:
        b.ldx(g.sc(), R[3], 0, 1)
    else:
        b.st(R[3], 0, g.imm(), 1)


def _u32_source(g, dst, m, narrow: bool = False) -> int:
    """Load a scalar with known upper bits into ``dst`` (r0 is the value of ``m``); return
    its largest possible value."""
    b, r = g.b, g.rng
    sizes = (1, 2) if narrow else (1, 2, 4, 4)
    size = r.choice([s for s in sizes if s <= m.value_size])
    if not narrow and r.random() < 0.3:
        b.mov(dst.w, g.sc().w)  # zero-extends: [0, U32_MAX]
        return 0xFFFFFFFF
    b.ldx(dst, R[0], size * r.randrange(m.value_size // size), size)
    return (1 << (8 * size)) - 1


def linked_scalars(g) -> None:
    b, r = g.b, g.rng
    if r.random() < 0.35:  # linked through callee-saved registers, across the lookup call
        a, c = r.sample((R[7], R[8], R[9]), 2)
        b.mov(a.w, a.w)  # [0, U32_MAX]: a + k cannot wrap
        b.mov(c, a)
        k = r.randint(1, 7)
        b.add(a, k)
        with _value(g, const_key=True) as m:
            end = b.new_label("link")
            top = r.randint(0, m.value_size - 1 - k)
            if r.random() < 0.5:
                b.jump_if(c, ">", top, end)
            else:
                b.jump_if(c, ">=", top + 1, end)
            _use(g, R[0], a)
            b.label(end)
        return
    with _value(g) as m:
        wide = r.random() < 0.6
        _u32_source(g, R[1], m, narrow=not wide)
        o, c = (R[1], R[2]) if wide else (R[1].w, R[2].w)
        b.mov(c, o)  # c = copy; o gets the delta
        vs = m.value_size
        k = r.randint(1, min(8, vs - 1))
        end = b.new_label("link")
        if r.random() < 0.7:
            b.add(o, k)  # o = c + k
            if r.random() < 0.5:  # bound the copy, use the offset one
                b.jump_if(c, ">", vs - 1 - k, end)
                used = R[1]
            else:  # bound the offset one (>= k already known), use the copy
                b.jump_if(o, ">", vs - 1, end)  # narrow sources: o = c + k did not wrap
                used = R[2]
        else:
            b.sub(o, k)  # o = c - k: needs c >= k as well
            b.jump_if(c, "<", k, end)
            b.jump_if(c, ">", vs - 1 + k, end)
            used = R[1]
        _use(g, R[0], used)
        b.label(end)


def spill_fill(g) -> None:
    b, r = g.b, g.rng
    with _value(g) as m:
        vs = m.value_size
        slot = -8 * r.randint(1, GENERAL // 8)
        end = b.new_label("fill")
        k = r.random()
        if k < 0.3:  # spill 64 (or 32) bits, bound the register, fill: the fill is bounded too
            umax = _u32_source(g, R[1], m)
            size = 8 if umax > 0xFFFFFFFF or r.random() < 0.6 else 4
            b.stx(FP, slot, R[1], size)
            if r.random() < 0.3:
                b.mov(R[2], r.randint(0, 9))  # unrelated work between spill and bound
            b.jump_if(R[1] if r.random() < 0.7 else R[1].w, ">", vs - 1, end)
            b.ldx(R[2], FP, slot, size)
        elif k < 0.5:  # bounded before the spill; fill the low half (it fits in 32 bits)
            _u32_source(g, R[1], m)
            b.and_(R[1], _mask(vs))
            b.stx(FP, slot, R[1], 8)
            b.ldx(R[2], FP, slot, r.choice((4, 8)))
        elif k < 0.7:  # the high half of a spilled register is just bytes: mask it
            b.ldx(R[1], R[0], 0, r.choice([s for s in (4, 8) if s <= vs]))
            b.stx(FP, slot, R[1], 8)
            b.ldx(R[2], FP, slot + 4, 4)
            b.and_(R[2], _mask(vs))
        elif k < 0.85:  # two 32-bit halves (spill + store), one 64-bit fill
            b.ldx(R[1], R[0], 0, 4)
            b.stx(FP, slot, R[1], 4)
            if r.random() < 0.5:
                b.st(FP, slot + 4, r.choice((0, 1, -1, 0x7FFFFFFF)), 4)
            else:
                b.stx(FP, slot + 4, g.sc(), 4)
            b.ldx(R[2], FP, slot, 8)
            b.and_(R[2], _mask(vs))
        else:  # constant stores: a 32-bit const spill, and zeroed halves, fill as offsets
            c = r.randrange(vs)
            b.st(FP, slot, c, 4)
            if r.random() < 0.5:
                b.ldx(R[2], FP, slot, 4)
            else:
                b.st(FP, slot + 4, 0, 4)
                b.ldx(R[2], FP, slot, 8)
                b.and_(R[2], _mask(vs))
        _use(g, R[0], R[2])
        b.label(end)


def _ctx_fields(g) -> list:
    from .blocks import CTX_READS  # blocks imports this module
    return CTX_READS[g.t]


def _mask(vs: int) -> int:
    mask = 1
    while mask << 1 <= vs:
        mask <<= 1
    return mask - 1


def ptr_eq(g) -> None:
    b, r = g.b, g.rng
    m1, m2 = r.choice(g.maps), r.choice(g.maps)
    p = r.choice((R[7], R[8], R[9]))
    end = b.new_label("ptreq")
    g._key(m1)
    b.ld_map_fd(R[1], m1)
    b.stack_ptr(R[2], KEY)
    b.call("map_lookup_elem")
    b.mov(p, R[0])  # maybe NULL, kept across the second call
    checked_first = r.random() < 0.4
    if checked_first:
        b.jump_if(p, "==", 0, end)
    b.st(FP, KEY, r.randint(0, m2.max_entries), 4)  # p may be a pointer: not g._key()
    b.ld_map_fd(R[1], m2)
    b.stack_ptr(R[2], KEY)
    b.call("map_lookup_elem")
    if not checked_first:
        b.jump_if(R[0], "==", 0, end)
    # the unchecked one is not NULL where it equals the checked one
    unchecked, mu = (R[0], m2) if checked_first else (p, m1)
    a, c = (p, R[0]) if r.random() < 0.5 else (R[0], p)
    if r.random() < 0.5:
        b.jump_if(a, "!=", c, end)
    else:
        eq = b.new_label("eq")
        b.jump_if(a, "==", c, eq)
        b.ja(end)
        b.label(eq)
    size = r.choice([s for s in (1, 2, 4, 8) if s <= mu.value_size])
    dst = R[r.randint(1, 5)] if r.random() < 0.5 else g.sc()
    if dst.num == p.num:
        dst = R[4]
    off = size * r.randrange(mu.value_size // size)
    if r.random() < 0.7:
        b.ldx(dst, unchecked, off, size)
    else:
        b.st(unchecked, off, g.imm(), size)
    b.label(end)
    b.mov(p, g.imm())  # the register is a scalar again for the blocks that follow


def flag_chain(g) -> None:
    b, r = g.b, g.rng
    if r.random() < 0.3:
        return _spill_compare(g)
    x = R[r.randint(1, 2)]
    # A fresh context load: a copy of r7-r9 would be linked to them, and bits an earlier
    # chain learned through the link make branches decided (then 2^n states, kernel too).
    off, size = r.choice(_ctx_fields(g))
    b.ldx(x, R[6], off, size)
    wide = r.random() < 0.7
    n = r.randint(2, 6) if r.random() < 0.95 else r.randint(7, MAX_FLAGS)
    kind = r.random()
    target = r.choice((R[3], R[4], R[5], g.sc()))
    # Distinct bits: a repeated one is a decided branch, which makes x precise, and a
    # precise x differs on every path: 2^n states in the kernel as well.
    for i, bit in enumerate(r.sample(range(32), n)):
        skip = b.new_label("flag")
        b.jump_if(x if wide else x.w, "&", 1 << bit, skip)
        if kind < 0.5:
            b.mov(target, 1)  # the same value on every path: states stay equal
        elif kind < 0.75:
            b.mov(target, i)
        elif kind < 0.9 and target.num >= 7:
            b.add(target, 1)  # a running count: n + 1 values at the end
        elif kind < 0.9:
            b.mov(target, i & 3)
        else:
            b.st(FP, -8 * r.randint(1, GENERAL // 8), i, 8)
        b.label(skip)


def _spill_compare(g) -> None:
    """n loads compared and spilled, then n fills compared: the audit's pruning stressor."""
    b, r = g.b, g.rng
    n = r.randint(2, 5) if r.random() < 0.95 else r.randint(6, GENERAL // 8)
    fields = [f for f in _ctx_fields(g) if f[1] <= 4] or _ctx_fields(g)
    for i in range(n):
        off, size = r.choice(fields)
        b.ldx(R[2], R[6], off, size)
        b.jump_if(R[2], r.choice((">", "<", "s>", "==")), r.choice((0, 50, 100, 0x7FFFFFFF)), 0)
        b.stx(FP, -8 * (i + 1), R[2], 8)
        g._mark(-8 * (i + 1), 8)
    for i in range(n):
        b.ldx(R[2], FP, -8 * (i + 1), 8)
        b.jump_if(R[2], r.choice((">", "<", "s<", "!=")), r.choice((0, 50, 100)), 0)


def sign_boundary(g) -> None:
    b, r = g.b, g.rng
    with _value(g) as m:
        vs = m.value_size
        src = r.random()
        if src < 0.4:
            b.ldx(R[1], R[0], 4 * r.randrange(vs // 4), 4)
        elif src < 0.7:
            b.ldx(R[1], R[0], 8 * r.randrange(vs // 8), 8)  # upper bits unknown; w1 is all we use
        else:
            b.mov(R[1], g.sc())
            # A copy is linked to its source, and the kernel refuses a linked scalar whose
            # constant delta (the rebase below) is beyond +-2^29 as a pointer offset.
            b.and_(R[1], -1)  # any ALU op but add/sub of a constant unlinks
        end = b.new_label("s32")
        w = R[1].w
        if r.random() < 0.6:  # keep [0x80000000, 0x80000000 + k] out of [SIGN - a, SIGN + k]
            k, a = r.randrange(vs), r.randint(0, 64)
            checks = [("<", SIGN - a) if r.random() < 0.5 else ("<=", SIGN - a - 1),
                      (">", SIGN + k) if r.random() < 0.5 else (">=", SIGN + k + 1),
                      ("s>", -1) if r.random() < 0.5 else ("s>=", 0)]
            rebase = SIGN
        else:  # keep [0x7fffffff - a, 0x7fffffff] out of [SIGN - 1 - a, SIGN + k]
            a, k = r.randrange(vs), r.randint(0, 64)
            lo = 0x7FFFFFFF - a
            checks = [("<", lo) if r.random() < 0.5 else ("<=", lo - 1),
                      (">", SIGN + k) if r.random() < 0.5 else (">=", SIGN + k + 1),
                      ("s<", 0) if r.random() < 0.5 else ("s<=", -1)]
            rebase = lo
        r.shuffle(checks)
        for cond, imm in checks:
            b.jump_if(w, cond, imm, end)
        if r.random() < 0.3:
            b.mov(R[2].w, rebase)
            b.sub(w, R[2].w)
        elif rebase == SIGN and r.random() < 0.5:
            b.add(w, SIGN)
        else:
            b.sub(w, rebase)
        _use(g, R[0], R[1])
        b.label(end)


def precise_diamond(g) -> None:
    b, r = g.b, g.rng
    x, v = r.sample((R[7], R[8], R[9]), 2)
    done, other = b.new_label("dia"), b.new_label("alt")
    b.jump_if(x, r.choice(("&", ">", "s<", "==")), r.choice((1, 2, 0, 100)), other)
    first = r.randrange(8)
    b.mov(v, first)
    for _ in range(r.randint(0, 6)):  # padding, so the two paths reach the join apart
        b.mov(R[r.randint(1, 5)], r.randint(0, 9))
    b.ja(done)
    b.label(other)
    b.mov(v, r.randrange(8))
    b.label(done)
    if r.random() < 0.5:
        b.add(x, 1)
    with _value(g, r.choice([m for m in g.maps if m.value_size >= 8])) as m:
        _use(g, R[0], v)


# (block, weight) pairs Gen.block mixes into the idioms; their sum is small against the
# idioms' (about 36), so most programs keep the old mix.
SHAPES = ((linked_scalars, 1.2), (spill_fill, 1.2), (ptr_eq, 0.8), (flag_chain, 0.6),
          (sign_boundary, 0.8), (precise_diamond, 0.6))
