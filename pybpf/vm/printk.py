"""The kernel's ``bpf_trace_printk`` format subset (kernel/bpf/helpers.c, bpf_bprintf_prepare).

Only what the kernel accepts is accepted here, so a format that works in the
VM also loads in the kernel: ``%d %i %u %x %X`` with optional ``l``/``ll``,
``%p`` (and ``%px``, ``%pK``), ``%s``, ``%c`` and ``%%``; at most 3 arguments.
"""

from __future__ import annotations

import errno
from typing import Callable

MAX_ARGS = 3


def format_printk(fmt: bytes, args: list[int], read_str: Callable[[int], bytes | None]) -> str | int:
    """The formatted text, or a negative errno when the kernel would refuse the format."""
    out: list[str] = []
    i = 0
    used = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if c != 0x25:  # '%'
            if c >= 0x80 or (c < 0x20 and chr(c) not in "\t\n\r\x0b\x0c"):
                return -errno.EINVAL  # the kernel accepts only printable ASCII and spaces
            out.append(chr(c))
            i += 1
            continue
        i += 1
        if i < n and fmt[i] == 0x25:
            out.append("%")
            i += 1
            continue
        if used >= MAX_ARGS:
            return -errno.EINVAL
        arg = args[used]
        used += 1
        if i >= n:
            return -errno.EINVAL
        c = chr(fmt[i])
        if c == "p":
            i += 1
            if i < n and chr(fmt[i]) in "xK":
                i += 1
            out.append(f"{arg:016x}")
            continue
        if c == "s":
            i += 1
            text = read_str(arg)
            out.append("(efault)" if text is None else text.decode("latin-1"))
            continue
        if c == "c":
            i += 1
            out.append(chr(arg & 0xFF))
            continue
        width = 32
        if c == "l":
            width = 64
            i += 1
            if i < n and fmt[i] == 0x6C:  # 'll'
                i += 1
        if i >= n:
            return -errno.EINVAL
        c = chr(fmt[i])
        i += 1
        v = arg & ((1 << width) - 1)
        if c in "di":
            out.append(str(v - ((v >> (width - 1)) << width)))
        elif c == "u":
            out.append(str(v))
        elif c == "x":
            out.append(f"{v:x}")
        elif c == "X":
            out.append(f"{v:X}")
        else:
            return -errno.EINVAL
    return "".join(out)
