"""Why a line of assembly text did not parse: the message naming the bad token.

The text assembler matches each line against whole-instruction patterns,
which say only *that* a line failed. On failure these functions take the line
apart more loosely to say *what* is wrong, such as a size ``u24`` or a jump
target ``5x``, and return the error with that token so that the assembler can
report its column.
"""

from __future__ import annotations

import re

__all__ = ["LineError", "bad_mem", "explain"]


class LineError(Exception):
    """A parse error inside one line; the assembler adds the line and its number.

    ``token`` is the offending text, located in the line for the error's column.
    """

    def __init__(self, message: str, token: str | None = None):
        super().__init__(message)
        self.token = token or None


_TARGETS = "pc+N, pc-N, +N, -N or a label"
_OPS = "== != > >= < <= s> s>= s< s<= &"
_SIZE = re.compile(r"\(\s*([^()\s*]*)\s*\*\s*\)")
_ADDR = re.compile(r"^\(\s*r\d+\s*(?:[-+]\s*(?:0[xX][0-9a-fA-F]+|\d+))?\s*\)")
_TARGET = re.compile(r"^(?:pc[-+]\d+|[-+]\d+|[A-Za-z_.$][\w.$]*)$")
_COND = re.compile(rf"^(\S+?)\s*({'|'.join(map(re.escape, sorted(_OPS.split(), key=len, reverse=True)))})\s*(\S+)$")
_OPERAND = re.compile(r"^(?:[rw]\d+|[-+]?(?:0[xX][0-9a-fA-F]+|\d+))$")
_U = ("u8", "u16", "u32", "u64")
# form -> (sizes it takes, its syntax)
_MEM_FORMS = {
    "store": (_U, "*(uN *)(rX +off) = rY|imm"),
    "memory load": (_U + ("s8", "s16", "s32"), "rX = *(uN *)(rY +off)"),
    "atomic": (_U[2:], "lock *(u32|u64 *)(rX +off) += rY"),
    "store_release": (_U, "store_release((uN *)(rX +off), rY)"),
    "legacy packet load": (_U[:3], "r0 = *(uN *)skb[imm] or skb[rX + imm]"),
}


def bad_mem(text: str, what: str) -> LineError:
    """The error for a memory instruction (``what``: a key of _MEM_FORMS) that did not parse."""
    if "skb[" in text:
        what = "legacy packet load"
    sizes, syntax = _MEM_FORMS[what]
    m = _SIZE.search(text)
    if m is None:
        return LineError(f"cannot parse {what}: expected {syntax}")
    size = m.group(1)
    if size not in sizes:
        return LineError(f"invalid size {size!r} for {what}: use {', '.join(sizes)}", size)
    rest = text[m.end():].lstrip()
    if what != "legacy packet load" and not _ADDR.match(rest):
        addr = rest[:rest.find(")") + 1] if ")" in rest else rest
        return LineError(f"invalid address {addr!r} in {what}: expected (rX +off)", addr)
    if what == "store" and "=" in rest:
        value = rest.split("=", 1)[1].strip()
        if not _OPERAND.match(value):
            return LineError(f"invalid value {value!r} stored: expected a register or an immediate", value)
    return LineError(f"cannot parse {what}: expected {syntax}")


def explain(kind: str, text: str) -> LineError:
    """The error for a jump (``kind`` "goto" or "cond") or "call" line that did not parse."""
    word, _, arg = text.partition(" ")
    if kind == "goto" and word not in ("goto", "gotol", "may_goto"):
        return LineError(f"unknown instruction {word!r}", word)
    if kind == "call":
        if not arg:
            return LineError("call needs a target: bpf_name#id, a helper name, an id, pc+N or a label")
        return LineError(f"invalid call target {arg!r}: expected bpf_name#id, a helper name, an id, "
                         f"pc+N or a label", arg)
    if kind == "goto":
        if not arg:
            return LineError(f"{word} needs a target: {_TARGETS}")
        return LineError(f"invalid jump target {arg!r}: expected {_TARGETS}", arg)
    cond, sep, target = text[2:].partition(" goto")
    target = target.strip()
    if not sep:
        return LineError("conditional jump needs 'goto TARGET': if rX OP rY|imm goto TARGET")
    if not target:
        return LineError(f"goto needs a target: {_TARGETS}")
    if not _TARGET.match(target):
        return LineError(f"invalid jump target {target!r}: expected {_TARGETS}", target)
    cond = cond.strip()
    m = _COND.match(cond)
    if m is None:
        return LineError(f"cannot parse condition {cond!r}: expected rX OP rY|imm, OP one of {_OPS}", cond)
    a, _, b = m.groups()
    if not re.match(r"^[rw]\d+$", a):
        return LineError(f"expected a register before the comparison, not {a!r}", a)
    if not _OPERAND.match(b):
        return LineError(f"expected a register or an immediate after the comparison, not {b!r}", b)
    return LineError("cannot parse conditional jump: expected if rX OP rY|imm goto TARGET")
