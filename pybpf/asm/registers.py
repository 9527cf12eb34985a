"""Registers as objects: ``r0``..``r10`` (64-bit) and ``w0``..``w10`` (their 32-bit views).

The view chosen picks the instruction class: an operation on ``w1`` is an ALU
(32-bit) or JMP32 instruction, on ``r1`` an ALU64 or JMP one.
"""

from __future__ import annotations


class Reg:
    __slots__ = ("num", "wide")

    def __init__(self, num: int, wide: bool = True):
        if not 0 <= num <= 10:
            raise ValueError(f"invalid register r{num}: eBPF has r0..r10")
        self.num = num
        self.wide = wide

    @property
    def w(self) -> "Reg":
        """The 32-bit view of this register."""
        return W[self.num]

    @property
    def r(self) -> "Reg":
        """The 64-bit view of this register."""
        return R[self.num]

    def __repr__(self) -> str:
        return f"{'r' if self.wide else 'w'}{self.num}"

    def __reduce__(self):
        return (_reg, (self.num, self.wide))


def _reg(num: int, wide: bool) -> Reg:
    return (R if wide else W)[num]


R = tuple(Reg(i, True) for i in range(11))
W = tuple(Reg(i, False) for i in range(11))
r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = R
w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10 = W
FP = r10

__all__ = ["Reg", "R", "W", "FP"] + [f"r{i}" for i in range(11)] + [f"w{i}" for i in range(11)]
