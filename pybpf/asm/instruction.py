"""One eBPF instruction, and the byte encoding the kernel reads.

A logical instruction is one :class:`Instruction`; a 64-bit immediate load
(``ld_imm64``) is one logical instruction that occupies two 8-byte slots, as in
the kernel. Jump and call targets may be symbolic (``target``), resolved to
slot offsets only when the program is encoded, so builders never do offset
arithmetic by hand.
"""

from __future__ import annotations

import struct
from itertools import accumulate

from . import opcodes as op
from .errors import AssemblerError

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Iterable, Sequence

CodeType = type((lambda: None).__code__)  # what types.CodeType is, without importing types
_SLOT = struct.Struct("<BBhi")
_PACKERS: dict[int, struct.Struct] = {}


def _packer(slots: int) -> struct.Struct:
    """One Struct packing a whole program at once (much faster than one pack per slot)."""
    packer = _PACKERS.get(slots)
    if packer is None:
        packer = struct.Struct("<" + "BBhi" * slots)
        if len(_PACKERS) > 64:
            _PACKERS.clear()
        _PACKERS[slots] = packer
    return packer
_MASK64 = (1 << 64) - 1


class Instruction:
    """One logical instruction.

    Equality and hashing look only at the encoded fields (opcode, dst, src,
    off, imm); metadata (``source``, ``target``, ``map``) rides along for
    error messages and relocation.

    ``imm`` is a signed 32-bit value, except for ``ld_imm64`` where it holds
    the full 64-bit value as unsigned (first slot's imm in the low half,
    second slot's imm in the high half).
    """

    # ``_source`` is what :attr:`source` formats lazily: a string, a
    # ``(name, line)`` tuple (text assembler), or, from the builder, the
    # caller's code object with ``_lasti`` (its bytecode offset) beside it:
    # reading ``f_lasti`` is cheaper than ``f_lineno``, and two slots cost
    # less than a tuple per instruction.
    __slots__ = ("opcode", "dst", "src", "off", "imm", "_source", "_lasti", "target", "map")

    def __init__(self, opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
                 source: str | None = None, target: str | None = None, map: object = None):
        self.opcode = opcode
        self.dst = dst
        self.src = src
        self.off = off
        self.imm = imm
        self._source = source
        self._lasti = 0
        self.target = target
        self.map = map

    @property
    def source(self) -> str | None:
        """Where the instruction came from: ``file:line`` of the DSL call, or a text line."""
        src = self._source
        if src.__class__ is CodeType:
            src = self._source = f"{src.co_filename}:{_line_at(src, self._lasti)}"
        elif src.__class__ is tuple:
            src = self._source = f"{src[0]}:{src[1]}"
        return src

    @source.setter
    def source(self, value: str | None) -> None:
        self._source = value

    @property
    def slots(self) -> int:
        """How many 8-byte slots the instruction occupies (2 for ld_imm64)."""
        return 2 if self.opcode == op.LD_IMM64 else 1

    @property
    def cls(self) -> int:
        return self.opcode & 0x07

    def key(self) -> tuple[int, int, int, int, int]:
        return (self.opcode, self.dst, self.src, self.off, self.imm)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instruction):
            return NotImplemented
        return (self.opcode == other.opcode and self.dst == other.dst and self.src == other.src
                and self.off == other.off and self.imm == other.imm)

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        extra = f", target={self.target!r}" if self.target else ""
        return (f"Instruction(opcode={self.opcode:#04x}, dst={self.dst}, src={self.src}, "
                f"off={self.off}, imm={self.imm:#x}{extra})")

    def __reduce__(self):
        # Code objects do not pickle: send the formatted source instead.
        return (Instruction, (self.opcode, self.dst, self.src, self.off, self.imm, self.source,
                              self.target, self.map))

    def replace(self, **changes) -> "Instruction":
        fields = {"opcode": self.opcode, "dst": self.dst, "src": self.src, "off": self.off,
                  "imm": self.imm, "source": self.source, "target": self.target, "map": self.map}
        fields.update(changes)
        return Instruction(**fields)


def _line_at(code: CodeType, lasti: int) -> int | None:
    """The source line of bytecode offset ``lasti`` in ``code`` (what ``frame.f_lineno`` says)."""
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line
    return code.co_firstlineno



# Jumps whose raw (unlabelled) offset encode(check_jumps=True) checks: the JMP
# class except exit (and helper calls: only a bpf-to-bpf call has an offset).
_RAW_JUMPS = frozenset(c for c in range(256) if c & 0x07 in (op.JMP, op.JMP32) and c & 0xF0 != op.EXIT)
# Opcodes whose label resolves into the 16-bit ``off`` (all but those _apply_target treats apart).
_OFF_TARGETS = frozenset(range(256)) - {op.LD_IMM64, op.CALL_OP, op.JMP32 | op.JA}


def encode(insns: Sequence[Instruction], labels: dict[str, int] | None = None, *,
           check_jumps: bool = False) -> bytes:
    """Encode logical instructions into kernel bytecode.

    ``labels`` maps a label to the logical index it names; instructions whose
    ``target`` is set get their offset (jumps) or imm (bpf-to-bpf calls,
    ``ld_imm64`` of a function) computed here, in slots, relative to the next
    instruction. With ``check_jumps``, jumps that leave the program (the end
    included, as the kernel counts) or land inside an ld_imm64 are rejected too.
    """
    ld64 = op.LD_IMM64
    opcodes = [insn.opcode for insn in insns]
    if ld64 in opcodes:
        slot_of = list(accumulate([2 if opcode == ld64 else 1 for opcode in opcodes], initial=0))
    else:
        slot_of = range(len(opcodes) + 1)
    pos = slot_of[-1]
    last = len(opcodes)
    fields: list[int] = []
    starts: set[int] | None = None
    i = -1
    for insn in insns:
        i += 1
        opcode = insn.opcode
        target = insn.target
        if target is None:
            off, imm = insn.off, insn.imm
            if check_jumps and opcode in _RAW_JUMPS and (opcode != op.CALL_OP or insn.src == op.PSEUDO_CALL):
                if starts is None:
                    starts = set(slot_of)
                _check_raw_jump(insn, i, slot_of, starts)
        else:
            try:
                dest = labels[target]
                rel = slot_of[dest] - slot_of[i] - 1
            except (KeyError, TypeError, IndexError):
                raise AssemblerError(f"unresolved label {target!r}", index=i, source=insn.source) from None
            if check_jumps and dest >= last:  # the label names the end: nothing to land on
                raise AssemblerError(f"jump out of range from insn {slot_of[i]} to {pos} (label {target!r} "
                                     f"is at the end)", index=i, source=insn.source)
            if opcode in _OFF_TARGETS and -32768 <= rel <= 32767:
                off, imm = rel, insn.imm  # the common case of _apply_target
            else:
                off, imm = _apply_target(insn, rel, i)
        if opcode == ld64:
            imm &= _MASK64
            lo = imm & 0xFFFFFFFF
            hi = imm >> 32
            fields += (opcode, (insn.dst & 0x0F) | ((insn.src & 0x0F) << 4), off,
                       lo - ((lo & 0x80000000) << 1), 0, 0, 0, hi - ((hi & 0x80000000) << 1))
        else:
            fields += (opcode, (insn.dst & 0x0F) | ((insn.src & 0x0F) << 4), off, imm)
    try:
        return _packer(pos).pack(*fields)
    except struct.error:
        pass
    at = 0
    for i, insn in enumerate(insns):  # slow path: name the instruction and the bad field
        for _ in range(insn.slots):
            for name, value, lo, hi, width in (("opcode", fields[at], 0, 0xFF, "8-bit"),
                                               ("off", fields[at + 2], -0x8000, 0x7FFF, "signed 16-bit"),
                                               ("imm", fields[at + 3], -0x80000000, 0x7FFFFFFF, "signed 32-bit")):
                if value.__class__ is not int or not lo <= value <= hi:
                    code = f" (opcode {insn.opcode:#04x})" if name != "opcode" else ""
                    raise AssemblerError(f"{name} {value!r} does not fit the {width} {name} field{code}",
                                         index=i, source=insn.source)
            at += 4
    raise AssemblerError("field out of range")  # unreachable: struct and the checks above agree


def _apply_target(insn: Instruction, rel: int, index: int) -> tuple[int, int]:
    opcode = insn.opcode
    if opcode == op.LD_IMM64:  # function address: the offset sits in the first slot's imm
        return insn.off, rel & 0xFFFFFFFF
    if opcode == op.CALL_OP and insn.src == op.PSEUDO_CALL:
        return insn.off, rel
    if opcode == op.JMP32 | op.JA:  # gotol: 32-bit offset in imm
        return 0, rel
    if not -32768 <= rel <= 32767:
        raise AssemblerError(f"jump offset {rel} to {insn.target!r} out of 16-bit range (use gotol)",
                             index=index, source=insn.source)
    return rel, insn.imm


def _check_raw_jump(insn: Instruction, i: int, slot_of: list[int], starts: set[int]) -> None:
    code = insn.opcode & 0xF0
    if code == op.EXIT or (code == op.CALL and insn.src != op.PSEUDO_CALL):
        return
    if code == op.CALL or (insn.opcode & 0x07 == op.JMP32 and code == op.JA):
        rel = insn.imm
    else:
        rel = insn.off
    total = slot_of[-1]
    dest = slot_of[i] + 1 + rel
    if dest < 0 or dest >= total:
        raise AssemblerError(f"jump out of range from insn {slot_of[i]} to {dest}", index=i,
                             source=insn.source)
    if dest not in starts:
        raise AssemblerError(f"jump from insn {slot_of[i]} into the middle of ld_imm64 at {dest - 1}",
                             index=i, source=insn.source)


def decode(code: bytes | bytearray | memoryview) -> list[Instruction]:
    """Decode kernel bytecode into logical instructions (ld_imm64 merged into one)."""
    code = bytes(code)
    if len(code) % 8:
        raise AssemblerError(f"truncated instruction at byte offset {len(code) - len(code) % 8}: "
                             f"bytecode length {len(code)} is not a multiple of 8")
    out: list[Instruction] = []
    unpack = _SLOT.unpack_from
    n = len(code) // 8
    i = 0
    while i < n:
        opcode, regs, off, imm = unpack(code, i * 8)
        if opcode == op.LD_IMM64:
            if i + 1 >= n:
                raise AssemblerError(f"truncated ld_imm64 at byte offset {i * 8}: second slot missing",
                                     index=len(out))
            op2, regs2, off2, imm2 = unpack(code, i * 8 + 8)
            if op2 or regs2 or off2:
                raise AssemblerError(f"invalid second slot of ld_imm64 at byte offset {i * 8 + 8}",
                                     index=len(out))
            value = (imm & 0xFFFFFFFF) | ((imm2 & 0xFFFFFFFF) << 32)
            out.append(Instruction(opcode, regs & 0x0F, regs >> 4, off, value))
            i += 2
        else:
            out.append(Instruction(opcode, regs & 0x0F, regs >> 4, off, imm))
            i += 1
    return out


def slot_offsets(insns: Iterable[Instruction]) -> list[int]:
    """The slot index of each logical instruction (how the kernel numbers them)."""
    out = []
    pos = 0
    for insn in insns:
        out.append(pos)
        pos += 2 if insn.opcode == op.LD_IMM64 else 1
    return out
