"""Tristate numbers: what the verifier knows about each bit of a 64-bit value.

A tnum is ``(value, mask)``: a bit set in ``mask`` is unknown, otherwise the bit
equals the one in ``value``. The transfer functions follow the kernel's
kernel/bpf/tnum.c, so that the simulator loses precision exactly where the
kernel does -- the point of the simulator is to agree with it, not to be smarter.
"""

from __future__ import annotations

from typing import NamedTuple

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1

__all__ = ["Tnum", "UNKNOWN", "const", "trange", "lshift", "rshift", "arshift", "add", "sub",
           "neg", "mul", "and_", "or_", "xor", "intersect", "cast", "is_const", "is_unknown",
           "is_aligned", "contains", "subreg", "clear_subreg", "with_subreg", "const_subreg",
           "subreg_is_const", "overlap", "to_str"]


class Tnum(NamedTuple):
    value: int
    mask: int


UNKNOWN = Tnum(0, U64)


def const(v: int) -> Tnum:
    return Tnum(v & U64, 0)


def trange(lo: int, hi: int) -> Tnum:
    """The smallest tnum covering the unsigned range [lo, hi]."""
    lo &= U64
    hi &= U64
    bits = (lo ^ hi).bit_length()
    if bits > 63:
        return UNKNOWN
    delta = (1 << bits) - 1
    return Tnum(lo & ~delta & U64, delta)


def lshift(a: Tnum, s: int) -> Tnum:
    return Tnum((a.value << s) & U64, (a.mask << s) & U64)


def rshift(a: Tnum, s: int) -> Tnum:
    return Tnum(a.value >> s, a.mask >> s)


def _sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def arshift(a: Tnum, s: int, bits: int = 64) -> Tnum:
    """Arithmetic shift within a 32- or 64-bit operand (result zero-extended for 32)."""
    m = (1 << bits) - 1
    return Tnum((_sext(a.value, bits) >> s) & m, (_sext(a.mask, bits) >> s) & m)


def add(a: Tnum, b: Tnum) -> Tnum:
    sm = (a.mask + b.mask) & U64
    sv = (a.value + b.value) & U64
    sigma = (sm + sv) & U64
    mu = (sigma ^ sv) | a.mask | b.mask
    return Tnum(sv & ~mu & U64, mu)


def sub(a: Tnum, b: Tnum) -> Tnum:
    dv = (a.value - b.value) & U64
    alpha = (dv + a.mask) & U64
    beta = (dv - b.mask) & U64
    mu = (alpha ^ beta) | a.mask | b.mask
    return Tnum(dv & ~mu & U64, mu)


def neg(a: Tnum) -> Tnum:
    return sub(Tnum(0, 0), a)


def and_(a: Tnum, b: Tnum) -> Tnum:
    v = a.value & b.value
    return Tnum(v, (a.value | a.mask) & (b.value | b.mask) & ~v & U64)


def or_(a: Tnum, b: Tnum) -> Tnum:
    v = a.value | b.value
    return Tnum(v, (a.mask | b.mask) & ~v & U64)


def xor(a: Tnum, b: Tnum) -> Tnum:
    mu = a.mask | b.mask
    return Tnum((a.value ^ b.value) & ~mu & U64, mu)


def mul(a: Tnum, b: Tnum) -> Tnum:
    """Shift-and-add multiplication, accumulating uncertainty per partial product."""
    acc_v = (a.value * b.value) & U64
    acc_m = Tnum(0, 0)
    while a.value or a.mask:
        if a.value & 1:
            acc_m = add(acc_m, Tnum(0, b.mask))
        elif a.mask & 1:
            acc_m = add(acc_m, Tnum(0, b.value | b.mask))
        a = rshift(a, 1)
        b = lshift(b, 1)
    return add(Tnum(acc_v, 0), acc_m)


def intersect(a: Tnum, b: Tnum) -> Tnum:
    v = a.value | b.value
    mu = a.mask & b.mask
    return Tnum(v & ~mu & U64, mu)


def overlap(a: Tnum, b: Tnum) -> bool:
    """False when some bit is known in both and differs: no value is in both."""
    mu = ~a.mask & ~b.mask & U64
    return not ((a.value ^ b.value) & mu)


def cast(a: Tnum, size: int) -> Tnum:
    m = (1 << (size * 8)) - 1
    return Tnum(a.value & m, a.mask & m)


def is_const(a: Tnum) -> bool:
    return not a.mask


def is_unknown(a: Tnum) -> bool:
    return a.mask == U64


def is_aligned(a: Tnum, size: int) -> bool:
    if not size:
        return True
    return not ((a.value | a.mask) & (size - 1))


def contains(a: Tnum, b: Tnum) -> bool:
    """tnum_in: every value of ``b`` is a value of ``a``."""
    if b.mask & ~a.mask:
        return False
    return a.value == (b.value & ~a.mask)


def subreg(a: Tnum) -> Tnum:
    return Tnum(a.value & U32, a.mask & U32)


def clear_subreg(a: Tnum) -> Tnum:
    return Tnum(a.value & ~U32 & U64, a.mask & ~U32 & U64)


def with_subreg(reg: Tnum, sub32: Tnum) -> Tnum:
    return or_(clear_subreg(reg), subreg(sub32))


def const_subreg(a: Tnum, value: int) -> Tnum:
    return with_subreg(a, const(value & U32))


def subreg_is_const(a: Tnum) -> bool:
    return not (a.mask & U32)


def to_str(a: Tnum) -> str:
    """The kernel's ``(%#llx; %#llx)`` form."""
    return f"({_hex(a.value)}; {_hex(a.mask)})"


def _hex(v: int) -> str:
    return f"{v:#x}"
