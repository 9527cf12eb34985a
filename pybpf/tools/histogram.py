"""Log2 histograms printed in BCC's ``print_log2_hist`` layout.

Users compare pybpf's output with BCC's line by line, so the layout (column
widths, the 40-star bar, the ``+`` for values over the maximum, the wider
layout past bucket 32) follows BCC exactly.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Sequence

STARS_MAX = 40


def stars(val: int, val_max: int, width: int) -> str:
    """The bar: ``width * val / val_max`` stars, at most ``width``."""
    count = 0
    while count <= width * val / val_max - 1 and count <= width - 1:
        count += 1
    text = "*" * count
    if val > val_max:
        text = text[:-1] + "+"
    return text


def log2_bucket(value: int) -> int:
    """The bucket BCC's ``bpf_log2l(value)`` puts ``value`` in: ``floor(log2(v)) + 1``.

    BCC's helper (src/cc/export/helpers.h) is ``bpf_log2(v) + 1`` on a 64-bit
    ``unsigned long``, and its ``bpf_log2(0)`` is 0, so 0 lands in bucket 1
    with 1 (the ``0 -> 1`` row), never in bucket 0. That is the bit length for
    every value but 0. ``value`` is taken modulo 2**64, as the C argument is.
    """
    return (value & 0xFFFFFFFFFFFFFFFF).bit_length() or 1


def format_log2_hist(vals: Sequence[int], val_type: str = "usecs",
                     strip_leading_zero: bool = False) -> str:
    """The histogram of bucket counts ``vals`` (index = log2 bucket) as BCC prints it."""
    idx_max = -1
    val_max = 0
    for i, v in enumerate(vals):
        if v > 0:
            idx_max = i
        if v > val_max:
            val_max = v
    if idx_max <= 32:
        header = "     %-19s : count     distribution"
        body = "%10d -> %-10d : %-8d |%-*s|"
        width = STARS_MAX
    else:
        header = "               %-29s : count     distribution"
        body = "%20d -> %-20d : %-8d |%-*s|"
        width = STARS_MAX // 2
    lines = []
    if idx_max > 0:
        lines.append(header % val_type)
    for i in range(1, idx_max + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        val = vals[i]
        if strip_leading_zero and not val:
            continue
        strip_leading_zero = False
        lines.append(body % (low, high, val, width, stars(val, val_max, width)))
    return "\n".join(lines)
