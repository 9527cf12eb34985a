"""Text assembler for the kernel's instruction syntax (the inverse of :mod:`.disasm`).

Syntax, one instruction a line, exactly as the verifier log and
``bpftool prog dump xlated`` print it::

    r0 = 1                          w1 += w2            r1 = (s8)r2
    r1 = *(u32 *)(r2 +8)            *(u64 *)(r10 -8) = r1
    if r1 s> 0x10 goto pc+3         goto pc-3           gotol pc+70000
    call bpf_map_lookup_elem#1      call pc+4           exit
    lock *(u64 *)(r0 +0) += r1      r0 = be16 r0        r0 = *(u8 *)skb[2]
    r1 = 0x1234                     # a 64-bit immediate (ld_imm64): kernel prints hex

plus what a hand-written file needs:

* labels: ``loop:`` on its own line or before an instruction; ``goto loop``,
  ``if r1 > 3 goto loop``, ``call my_subprog`` (a label), ``r2 = func[cb]``;
* comments: from ``;`` or ``//`` to the end of the line, and lines starting with
  ``#``. ``;`` also drops the register state the kernel prints after an
  instruction at log_level 2;
* lines pasted from a verifier log, ``12: (bf) r1 = r10`` (the opcode in
  parentheses is checked against the one assembled);
* maps by name or number (``ld_imm64`` pseudo sources)::

    r1 = map[events]            BPF_PSEUDO_MAP_FD, relocated by name at load
    r1 = map[fd:3]              BPF_PSEUDO_MAP_FD with a literal fd
    r1 = map[events][0]+8       BPF_PSEUDO_MAP_VALUE: address of value + 8
    r1 = map[idx:0]             BPF_PSEUDO_MAP_IDX (index into fd_array)
    r1 = map[idx:0][0]+8        BPF_PSEUDO_MAP_IDX_VALUE
    r1 = btf_id[123]            BPF_PSEUDO_BTF_ID (``btf_id[123][fd:4]`` for module BTF)
    r1 = func[pc+4]             BPF_PSEUDO_FUNC (or ``func[label]``)

  A named map sets :attr:`Instruction.map` to the name (imm 0).

Rules worth knowing: ``rN = 0x...`` (hex) and ``rN = VALUE ll`` are
``ld_imm64``, ``rN = 123`` (decimal) is a 32-bit ``mov``, as the kernel prints
them. LLVM's surface forms ``(r1 + 8)``, ``goto +3`` and ``ll`` are accepted.
Only ``pc+N``, ``pc-N``, ``+N`` and ``-N`` are offsets: ``goto pc5`` names a label.

Every line is checked as the kernel checks an instruction's fields
(:func:`.disasm.validate`), and :meth:`Assembly.encode` rejects jumps that
leave the program or land inside an ld_imm64. Errors name the line and, when
one token is at fault, its column: ``invalid size 'u24' for store ... (insn 3,
at prog.s:4:3)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import opcodes as op
from .errors import AssemblerError
from .helpers import HELPER_IDS
from ._textdiag import LineError as _Line, bad_mem as _bad_mem, explain as _explain
from .disasm import validate
from .instruction import Instruction, encode

__all__ = ["Assembly", "parse", "assemble", "assemble_bytes", "from_verifier_log"]

_NUM = r"[-+]?(?:0[xX][0-9a-fA-F]+|\d+)"
_MEM = r"\(\s*r(\d+)\s*(?:([-+])\s*(0[xX][0-9a-fA-F]+|\d+))?\s*\)"
_TARGET = r"(pc[-+]\d+|[-+]\d+|[A-Za-z_.$][\w.$]*)"
_SIZES = {"u8": op.B, "u16": op.H, "u32": op.W, "u64": op.DW}
_SX_SIZES = {"s8": op.B, "s16": op.H, "s32": op.W}
_ALU_OPS = {
    "+=": op.ADD, "-=": op.SUB, "*=": op.MUL, "/=": op.DIV, "|=": op.OR, "&=": op.AND,
    "<<=": op.LSH, ">>=": op.RSH, "%=": op.MOD, "^=": op.XOR, "=": op.MOV, "s>>=": op.ARSH,
    "s/=": op.DIV, "s%=": op.MOD,
}
_JMP_OPS = {sym: code for code, sym in op.COND_SYMBOLS.items()}
_LOCK_OPS = {"+=": op.ATOMIC_ADD, "|=": op.ATOMIC_OR, "&=": op.ATOMIC_AND, "^=": op.ATOMIC_XOR}
_FETCH_OPS = {"add": op.ATOMIC_ADD, "or": op.ATOMIC_OR, "and": op.ATOMIC_AND, "xor": op.ATOMIC_XOR}

_PREFIX = re.compile(r"^\s*\d+:\s*(?:[.0-9]{10,}\s+)?\(([0-9a-fA-F]{2})\)\s*")
_LABEL = re.compile(r"^\s*([A-Za-z_.$][\w.$]*):(?!\S)\s*")
_COND = re.compile(rf"^if\s+([rw])(\d+)\s*(s>=|s<=|s>|s<|==|!=|>=|<=|>|<|&)\s*(?:([rw])(\d+)|({_NUM}))\s+goto\s+{_TARGET}$")
_GOTO = re.compile(rf"^(goto|gotol|may_goto)\s+{_TARGET}$")
_CALL_ID = re.compile(rf"^([\w-]+)#({_NUM})(?:\s+off:({_NUM}))?$")
_ASSIGN = re.compile(r"^([rw])(\d+)\s*(s>>=|s/=|s%=|<<=|>>=|[-+*/|&%^]=|=)\s*(.*)$")
_REG = re.compile(r"^([rw])(\d+)$")
_INT = re.compile(rf"^({_NUM})$")
_STORE = re.compile(rf"^\*\((u8|u16|u32|u64) \*\){_MEM}\s*=\s*(?:([rw])(\d+)|({_NUM}))$")
_LOCK = re.compile(rf"^lock\s+\*\((u32|u64) \*\){_MEM}\s*(\+=|\|=|&=|\^=)\s*[rw](\d+)$")
_STORE_REL = re.compile(rf"^store_release\(\((u8|u16|u32|u64) \*\){_MEM},\s*[rw](\d+)\)$")
_LDX = re.compile(rf"^\*\((u8|u16|u32|u64|s8|s16|s32) \*\){_MEM}$")
_LD_ABS = re.compile(rf"^\*\((u8|u16|u32) \*\)skb\[\s*(?:r(\d+)\s*\+\s*)?({_NUM})\s*\]$")
_LOAD_ACQ = re.compile(rf"^load_acquire\(\((u8|u16|u32|u64) \*\){_MEM}\)$")
_ATOMIC = re.compile(rf"^atomic(64)?_(fetch_(?:add|and|or|xor)|xchg|cmpxchg)\(\((u32|u64) \*\){_MEM},\s*(?:[rw]0,\s*)?[rw](\d+)\)$")
_MOVSX = re.compile(r"^\((s8|s16|s32)\)\s*([rw])(\d+)$")
_NEG = re.compile(r"^-([rw])(\d+)$")
_END = re.compile(r"^(be|le|bswap)(16|32|64)\s+r(\d+)$")
_ASCAST = re.compile(rf"^addr_space_cast\(\s*r(\d+)\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\)$")
_PERCPU = re.compile(r"^&\(void __percpu \*\)\(r(\d+)\)$")
_MAP = re.compile(rf"^map\[\s*(?:(fd|idx):\s*({_NUM})|([A-Za-z_.$][\w.$]*))\s*\](?:(?:\[0\])?\s*\+\s*({_NUM}))?$")
_BTF_ID = re.compile(rf"^btf_id\[\s*({_NUM})\s*\](?:\[\s*fd:\s*({_NUM})\s*\])?$")
_MOV64_X = op.ALU64 | op.MOV | op.X
_FUNC = re.compile(rf"^func\[\s*{_TARGET}\s*\]$")
_PC_REL = re.compile(r"^(?:pc)?[-+]\d+$")
_IMM64 = re.compile(rf"^({_NUM})(\s+ll)?$")


@dataclass
class Assembly:
    """Parsed text: instructions (jump targets still symbolic) and labels.

    ``labels`` maps a label to the logical index of the instruction it names.
    ``maps`` lists the map names referenced (``map[name]``), in order of first use.
    """

    insns: list[Instruction]
    labels: dict[str, int]
    maps: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        """Kernel bytecode; numeric jumps that leave the program or land inside an ld_imm64
        are rejected here, naming their line (:meth:`resolved` leaves them to the verifier)."""
        return encode(_resolve(self.insns, self.labels), check_jumps=True)

    def resolved(self) -> list[Instruction]:
        """Instructions with every label turned into a numeric offset."""
        return _resolve(self.insns, self.labels)


def _int(text: str, lo: int, hi: int, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise _Line(f"invalid number {text!r}", text) from None
    if not lo <= value <= hi:
        raise _Line(f"{what} {text} out of range [{lo}, {hi}]", text)
    return value


def _imm32(text: str, what: str = "immediate") -> int:
    """A 32-bit immediate: signed, or an unsigned 32-bit pattern (``0xffffffff`` is -1)."""
    value = _int(text, -0x80000000, 0xFFFFFFFF, what)
    return value - 0x100000000 if value > 0x7FFFFFFF else value


_REGS = {str(i): i for i in range(op.MAX_REG + 1)}


def _reg(num: str) -> int:
    try:
        return _REGS[num]
    except KeyError:
        raise _Line(f"invalid register r{num}: eBPF has r0..r10", num) from None


def _mem_off(sign: str | None, num: str | None) -> int:
    if num is None:
        return 0
    value = int(num, 0)
    value = -value if sign == "-" else value
    if not -0x8000 <= value <= 0x7FFF:
        raise _Line(f"offset {value} out of 16-bit range", num)
    return value


def _target(text: str) -> tuple[int, str | None]:
    """(numeric offset, None) for ``pc+N``/``pc-N``/``+N``/``-N``, (0, label) for anything else."""
    if text[:3] in ("pc+", "pc-") or text[0] in "+-":
        value = _int(text[2:] if text[0] == "p" else text, -0x80000000, 0x7FFFFFFF, "jump offset")
        return value, None
    return 0, text


def _off16(value: int, token: str | None = None) -> int:
    if not -0x8000 <= value <= 0x7FFF:
        raise _Line(f"jump offset {value} out of 16-bit range (use gotol)", token)
    return value


def _alu(dst_kind: str, dst: int, sym: str, rhs: str) -> Instruction:
    cls = op.ALU64 if dst_kind == "r" else op.ALU
    opc = _ALU_OPS[sym]
    off = 1 if sym in ("s/=", "s%=") else 0
    m = _REG.match(rhs)
    if m:
        if m.group(1) != dst_kind:
            raise _Line("mixed 32-bit (w) and 64-bit (r) registers", rhs)
        return Instruction(cls | opc | op.X, dst, _reg(m.group(2)), off, 0)
    m = _INT.match(rhs)
    if m:
        return Instruction(cls | opc | op.K, dst, 0, off, _imm32(m.group(1)))
    raise _Line(f"expected a register or an immediate after {sym!r}, not {rhs!r}", rhs or None)


def _assign(kind: str, dst: int, rhs: str, ctx: "_Parser") -> Instruction:
    """Everything of the form ``rN = ...`` other than a plain mov."""
    if rhs.startswith("*("):
        m = _LDX.match(rhs)
        if m:
            size = m.group(1)
            mode, sz = (op.MEM, _SIZES[size]) if size in _SIZES else (op.MEMSX, _SX_SIZES[size])
            return Instruction(op.LDX | mode | sz, dst, _reg(m.group(2)), _mem_off(m.group(3), m.group(4)), 0)
        m = _LD_ABS.match(rhs)
        if m:
            if dst != 0:
                raise _Line("legacy packet loads (skb[...]) always load into r0")
            size = _SIZES[m.group(1)]
            if m.group(2) is None:
                return Instruction(op.LD | op.ABS | size, 0, 0, 0, _imm32(m.group(3)))
            return Instruction(op.LD | op.IND | size, 0, _reg(m.group(2)), 0, _imm32(m.group(3)))
        raise _bad_mem(rhs, "memory load")
    m = _INT.match(rhs) or _IMM64.match(rhs)
    if m:
        literal = m.group(1)
        if kind == "r" and (rhs.endswith("ll") or literal.lstrip("+-")[:2] in ("0x", "0X")):
            value = _int(literal, -(1 << 63), (1 << 64) - 1, "64-bit immediate") & ((1 << 64) - 1)
            return Instruction(op.LD_IMM64, dst, 0, 0, value)
        if rhs.endswith("ll"):
            raise _Line("ld_imm64 needs a 64-bit register (r, not w)")
        return Instruction((op.ALU64 if kind == "r" else op.ALU) | op.MOV | op.K, dst, 0, 0, _imm32(literal))
    m = _REG.match(rhs)
    if m:
        if m.group(1) != kind:
            raise _Line("mixed 32-bit (w) and 64-bit (r) registers", rhs)
        return Instruction((op.ALU64 if kind == "r" else op.ALU) | op.MOV | op.X, dst, _reg(m.group(2)))
    cls = op.ALU64 if kind == "r" else op.ALU
    m = _MOVSX.match(rhs)
    if m:
        if m.group(2) != kind:
            raise _Line("mixed 32-bit (w) and 64-bit (r) registers", rhs)
        if kind == "w" and m.group(1) == "s32":
            raise _Line("(s32) sign extension needs r registers: w registers take (s8) or (s16)", "s32")
        return Instruction(cls | op.MOV | op.X, dst, _reg(m.group(3)), int(m.group(1)[1:]), 0)
    m = _NEG.match(rhs)
    if m:
        if _reg(m.group(2)) != dst or m.group(1) != kind:
            raise _Line("neg takes the destination register as its operand")
        return Instruction(cls | op.NEG, dst)
    m = _END.match(rhs)
    if m:
        if _reg(m.group(3)) != dst:
            raise _Line("byte swap takes the destination register as its operand")
        code = {"le": op.ALU | op.END | op.TO_LE, "be": op.ALU | op.END | op.TO_BE,
                "bswap": op.ALU64 | op.END}[m.group(1)]
        return Instruction(code, dst, 0, 0, int(m.group(2)))
    if rhs.startswith("map["):
        return _map_ref(dst, rhs, ctx)
    m = _ATOMIC.match(rhs)
    if m:
        sz = _SIZES[m.group(3)]
        if (m.group(1) == "64") != (sz == op.DW):
            raise _Line("atomic64_* works on u64, atomic_* on u32")
        name = m.group(2)
        src = _reg(m.group(7))
        if name == "cmpxchg":
            if dst != 0:
                raise _Line("cmpxchg returns the old value in r0")
            imm = op.CMPXCHG
        else:
            if dst != src:
                raise _Line(f"atomic {name} returns the old value in its source register r{src}")
            imm = op.XCHG if name == "xchg" else _FETCH_OPS[name[6:]] | op.FETCH
        return Instruction(op.STX | op.ATOMIC | sz, _reg(m.group(4)), src, _mem_off(m.group(5), m.group(6)), imm)
    m = _LOAD_ACQ.match(rhs)
    if m:
        return Instruction(op.STX | op.ATOMIC | _SIZES[m.group(1)], dst, _reg(m.group(2)),
                           _mem_off(m.group(3), m.group(4)), op.LOAD_ACQ)
    m = _ASCAST.match(rhs)
    if m:
        dst_as = _int(m.group(2), 0, 0xFFFF, "address space")
        src_as = _int(m.group(3), 0, 0xFFFF, "address space")
        imm = (dst_as << 16) | src_as
        return Instruction(op.ALU64 | op.MOV | op.X, dst, _reg(m.group(1)), op.ADDR_SPACE_CAST,
                           imm - (1 << 32) if imm & 0x80000000 else imm)
    m = _PERCPU.match(rhs)
    if m:
        return Instruction(op.ALU64 | op.MOV | op.X, dst, _reg(m.group(1)), -1, 0)
    m = _BTF_ID.match(rhs)
    if m:
        lo = _int(m.group(1), 0, 0xFFFFFFFF, "BTF id")
        hi = _int(m.group(2), 0, 0xFFFFFFFF, "BTF fd") if m.group(2) else 0
        return Instruction(op.LD_IMM64, dst, op.PSEUDO_BTF_ID, 0, lo | hi << 32)
    m = _FUNC.match(rhs)
    if m:
        rel, label = _target(m.group(1))  # func[pcb] names a label, as call pcb does
        return Instruction(op.LD_IMM64, dst, op.PSEUDO_FUNC, 0, rel & 0xFFFFFFFF, target=label)
    raise _Line("unknown instruction syntax")


def _map_ref(dst: int, rhs: str, ctx: "_Parser") -> Instruction:
    text = rhs[:-2].rstrip() if rhs.endswith(" ll") else rhs
    m = _MAP.match(text)
    if not m:
        raise _Line("cannot parse map reference (map[name], map[fd:N], map[idx:N], optional [0]+OFF)")
    kind, number, name, value_off = m.groups()
    off = _int(value_off, 0, 0xFFFFFFFF, "map value offset") if value_off is not None else None
    if kind == "idx":
        src = op.PSEUDO_MAP_IDX if off is None else op.PSEUDO_MAP_IDX_VALUE
    else:
        src = op.PSEUDO_MAP_FD if off is None else op.PSEUDO_MAP_VALUE
    lo = _int(number, 0, 0xFFFFFFFF, "map fd" if kind == "fd" else "map index") if number else 0
    if name and name not in ctx.maps:
        ctx.maps.append(name)
    return Instruction(op.LD_IMM64, dst, src, 0, lo | (off or 0) << 32, map=name)


class _Parser:
    def __init__(self, name: str):
        self.name = name
        self.insns: list[Instruction] = []
        self.labels: dict[str, int] = {}
        self.maps: list[str] = []
        self.calls: list[tuple[int, str, int, str]] = []  # (index, name, lineno, line)

    def line(self, text: str) -> Instruction | None:
        first = text[0]
        if first == "r" or first == "w":
            m = _ASSIGN.match(text)
            if m:
                kind, dst, sym, rhs = m.groups()
                dst = _reg(dst)
                if sym != "=":
                    return _alu(kind, dst, sym, rhs)
                return _assign(kind, dst, rhs, self)
        if text.startswith("if"):
            m = _COND.match(text)
            if not m:
                raise _explain("cond", text)
            kind, dst, sym, skind, src, imm, target = m.groups()
            cls = op.JMP if kind == "r" else op.JMP32
            rel, label = _target(target)
            if src is not None:
                if skind != kind:
                    raise _Line("mixed 32-bit (w) and 64-bit (r) registers", f"{skind}{src}")
                return Instruction(cls | _JMP_OPS[sym] | op.X, _reg(dst), _reg(src), _off16(rel, target), 0,
                                   target=label)
            return Instruction(cls | _JMP_OPS[sym] | op.K, _reg(dst), 0, _off16(rel, target), _imm32(imm),
                               target=label)
        if text == "exit":
            return Instruction(op.EXIT_OP)
        if text.startswith(("goto", "may_goto")):
            m = _GOTO.match(text)
            if not m:
                raise _explain("goto", text)
            rel, label = _target(m.group(2))  # in 32-bit range: gotol's
            if m.group(1) == "gotol":
                return Instruction(op.JMP32 | op.JA, 0, 0, 0, rel, target=label)
            code = op.JA_OP if m.group(1) == "goto" else op.JCOND_OP
            return Instruction(code, 0, 0, _off16(rel, m.group(2)), 0, target=label)
        if text.startswith("call"):
            return self.call(text[4:].strip())
        if text.startswith("*("):
            m = _STORE.match(text)
            if not m:
                raise _bad_mem(text, "store")
            size, base, sign, num, _, src, imm = m.groups()
            off = _mem_off(sign, num)
            if src is not None:
                return Instruction(op.STX | op.MEM | _SIZES[size], _reg(base), _reg(src), off, 0)
            return Instruction(op.ST | op.MEM | _SIZES[size], _reg(base), 0, off, _imm32(imm))
        if text.startswith("lock"):
            m = _LOCK.match(text)
            if not m:
                raise _bad_mem(text, "atomic")
            size, base, sign, num, sym, src = m.groups()
            return Instruction(op.STX | op.ATOMIC | _SIZES[size], _reg(base), _reg(src),
                               _mem_off(sign, num), _LOCK_OPS[sym])
        if text.startswith("store_release"):
            m = _STORE_REL.match(text)
            if not m:
                raise _bad_mem(text, "store_release")
            size, base, sign, num, src = m.groups()
            return Instruction(op.STX | op.ATOMIC | _SIZES[size], _reg(base), _reg(src),
                               _mem_off(sign, num), op.STORE_REL)
        raise _Line("unknown instruction syntax")

    def call(self, arg: str) -> Instruction:
        if _PC_REL.match(arg):
            return Instruction(op.CALL_OP, 0, op.PSEUDO_CALL, 0, _target(arg)[0])
        m = _CALL_ID.match(arg)
        if m:
            name, number, off = m.groups()
            imm = _imm32(number, "call id")
            short = name[4:] if name.startswith("bpf_") else name
            if short in HELPER_IDS:  # never a kfunc: a kfunc cannot be named as a helper (both are C functions)
                if HELPER_IDS[short] != imm:
                    raise _Line(f"helper bpf_{short} is #{HELPER_IDS[short]}, not #{number}: name and id disagree",
                                "#" + number)
                if off is not None:
                    raise _Line("helper calls take no off: (only a kfunc of a module BTF has one)", "off:")
                return Instruction(op.CALL_OP, 0, 0, 0, imm)
            if name == "unknown":
                return Instruction(op.CALL_OP, 0, 0, 0, imm)
            # a kfunc, printed by the verifier as its BTF name and id
            return Instruction(op.CALL_OP, 0, op.PSEUDO_KFUNC_CALL,
                               _int(off, -0x8000, 0x7FFF, "kfunc BTF fd index") if off else 0, imm)
        if _INT.match(arg):
            return Instruction(op.CALL_OP, 0, 0, 0, _imm32(arg, "helper id"))
        if re.fullmatch(r"[A-Za-z_.$][\w.$]*", arg):
            # a label (bpf-to-bpf call) or a helper name: decided once all labels are known
            insn = Instruction(op.CALL_OP, 0, 0, 0, 0)
            self.calls.append((len(self.insns), arg, 0, ""))
            return insn
        raise _explain("call", "call " + arg)


def _strip(raw: str) -> tuple[str, int | None]:
    """The instruction text of a line, and the opcode of a ``N: (xx)`` prefix if any."""
    line = raw
    cut = line.find(";")
    if cut >= 0:
        line = line[:cut]
    cut = line.find("//")
    if cut >= 0:
        line = line[:cut]
    line = line.strip()
    if not line or line[0] == "#":
        return "", None
    code = None
    if line[0].isdigit():
        m = _PREFIX.match(line)
        if m:
            code = int(m.group(1), 16)
            line = line[m.end():]
    return " ".join(line.split()), code


def parse(text: str, *, name: str = "<text>") -> Assembly:
    """Parse kernel-syntax text into instructions and labels (see the module docstring).

    Errors are :class:`AssemblerError` naming ``name:line`` and the line's text.
    """
    p = _Parser(name)
    insns, labels = p.insns, p.labels
    label_lines: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line, code = _strip(raw)
        while ":" in line:
            m = _LABEL.match(line)
            if not m or line.startswith(("r", "w")) and _ASSIGN.match(line):
                break
            label = m.group(1)
            if label in labels:
                raise AssemblerError(f"duplicate label {label!r} (first defined at line "
                                     f"{label_lines[label]}) in {raw.strip()!r}", source=f"{name}:{lineno}")
            labels[label] = len(insns)
            label_lines[label] = lineno
            line = line[m.end():]
        if not line:
            continue
        try:
            insn = p.line(line)
            reason = validate(insn)
            if reason is not None and not (insn.opcode == _MOV64_X and insn.off == -1):
                raise _Line(reason)  # (the percpu mov, off -1, is kernel-internal: it reads back for dumps)
        except _Line as exc:
            column = raw.find(exc.token) + 1 if exc.token else 0
            raise AssemblerError(f"{exc} in {raw.strip()!r}", index=len(insns), source=f"{name}:{lineno}",
                                 column=column or None) from None
        if p.calls and p.calls[-1][0] == len(insns) and not p.calls[-1][2]:
            index, callee, _, _ = p.calls[-1]
            p.calls[-1] = (index, callee, lineno, raw.strip())
        if code is not None and code != insn.opcode:
            raise AssemblerError(f"opcode ({code:02x}) in the log prefix does not match the "
                                 f"instruction ({insn.opcode:02x}) in {raw.strip()!r}",
                                 index=len(insns), source=f"{name}:{lineno}")
        insn.source = (name, lineno)  # formatted "name:line" by Instruction.source when read
        insns.append(insn)
    for index, callee, lineno, raw in p.calls:
        if callee in labels:
            insns[index] = Instruction(op.CALL_OP, 0, op.PSEUDO_CALL, 0, 0, source=insns[index].source,
                                       target=callee)
            continue
        short = callee[4:] if callee.startswith("bpf_") else callee
        if short not in HELPER_IDS:
            raise AssemblerError(f"unknown helper or label {callee!r} in {raw!r}", index=index,
                                 source=f"{name}:{lineno}")
        insns[index].imm = HELPER_IDS[short]
    for i, insn in enumerate(insns):
        if insn.target is not None and insn.target not in labels:
            raise AssemblerError(f"unresolved label {insn.target!r}", index=i, source=insn.source)
    return Assembly(insns, labels, p.maps)


def _resolve(insns: list[Instruction], labels: dict[str, int]) -> list[Instruction]:
    slot_of = []
    pos = 0
    for insn in insns:
        slot_of.append(pos)
        pos += 2 if insn.opcode == op.LD_IMM64 else 1
    slot_of.append(pos)
    out = []
    for i, insn in enumerate(insns):
        if insn.target is None:
            out.append(insn)
            continue
        rel = slot_of[labels[insn.target]] - slot_of[i] - 1
        if insn.opcode == op.LD_IMM64:
            out.append(insn.replace(imm=rel & 0xFFFFFFFF, target=None))
        elif insn.opcode == op.CALL_OP or insn.opcode == op.JMP32 | op.JA:
            out.append(insn.replace(imm=rel, target=None))
        else:
            if not -0x8000 <= rel <= 0x7FFF:
                raise AssemblerError(f"jump offset {rel} to {insn.target!r} out of 16-bit range "
                                     f"(use gotol)", index=i, source=insn.source)
            out.append(insn.replace(off=rel, target=None))
    return out


def assemble(text: str, *, name: str = "<text>") -> list[Instruction]:
    """Assemble text into instructions with every label resolved to an offset."""
    asm = parse(text, name=name)
    return _resolve(asm.insns, asm.labels)


def assemble_bytes(text: str, *, name: str = "<text>") -> bytes:
    """Assemble text straight to kernel bytecode."""
    return parse(text, name=name).encode()


def from_verifier_log(log: str, *, name: str = "<log>") -> list[Instruction]:
    """Rebuild a program from the ``N: (xx) text`` lines of a whole verifier log.

    The verifier prints an instruction each time it walks it; duplicates are
    dropped. Instructions it never reached are not in the log, and their
    absence is an error naming the missing slots.
    """
    from .disasm import parse_verifier_log

    by_slot: dict[int, str] = {}
    for slot, code, text in parse_verifier_log(log):
        by_slot.setdefault(slot, f"({code:02x}) {text}")
    out: list[Instruction] = []
    pos = 0
    for slot in sorted(by_slot):
        if slot != pos:
            raise AssemblerError(f"slots {pos}..{slot - 1} are not in the log (never verified)",
                                 index=len(out), source=f"{name}")
        insn = assemble(f"{slot}: {by_slot[slot]}", name=f"{name} slot {slot}")[0]
        out.append(insn)
        pos += insn.slots
    return out
