"""The Python DSL: a :class:`Builder` that emits instructions one method call at a time.

Each method emits exactly one instruction (or a fixed, documented sequence for
the few conveniences such as :meth:`Builder.map_lookup`), records the Python
``file:line`` that called it, and refers to jump targets by label. Offsets are
computed only by :meth:`Builder.encode`. Structured blocks (``if_``/``else_``,
``while_``/``for_range``, in blocks.py) are thin layers over labels and jumps,
so the explicit instruction layer stays visible underneath.

    b = Builder()
    b.map_lookup(counts, key_at=-4)        # r0 = bpf_map_lookup_elem(counts, r10-4)
    with b.if_(r0, "!=", 0):
        b.mov(r1, 1)
        b.atomic_add(r0, 0, r1)            # lock *(u64 *)(r0 +0) += r1
    b.mov(r0, 0)
    b.exit()
"""

from __future__ import annotations

import itertools
import sys

from . import blocks as _blocks
from . import opcodes as op
from .blocks import Blocks
from .errors import AssemblerError
from .instruction import Instruction, _line_at, encode
from .registers import R, Reg

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Callable, Iterator, Union

    Operand = Union[Reg, int]
    Size = Union[int, str]

# Frames of this module and of blocks.py (the if_/while_/for_range blocks run inside
# _Block's __enter__/__exit__) are skipped when recording the caller's line.
_SKIPPED = frozenset({__file__, _blocks.__file__})
_getframe = sys._getframe
_new = object.__new__  # an Instruction without running __init__: see Builder._emit
_MASK32 = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1

_SIZES = {
    1: op.B, 2: op.H, 4: op.W, 8: op.DW,
    "u8": op.B, "u16": op.H, "u32": op.W, "u64": op.DW,
    "b": op.B, "h": op.H, "w": op.W, "dw": op.DW,
}

_CONDS = {
    "==": op.JEQ, "!=": op.JNE, ">": op.JGT, ">=": op.JGE, "<": op.JLT, "<=": op.JLE,
    "s>": op.JSGT, "s>=": op.JSGE, "s<": op.JSLT, "s<=": op.JSLE, "&": op.JSET,
}


# Whole opcodes by access size: the hot methods do one lookup, and only an
# unusual spelling ("U32") or bad input takes the slow path through _size().
_LDX_MEM = {k: op.LDX | op.MEM | v for k, v in _SIZES.items()}
_STX_MEM = {k: op.STX | op.MEM | v for k, v in _SIZES.items()}
_ST_MEM = {k: op.ST | op.MEM | v for k, v in _SIZES.items()}
_ATOMIC_SIZES = {k: v for k, v in _SIZES.items() if v in (op.W, op.DW)}
_SMALL_SIZES = {k: v for k, v in _SIZES.items() if v != op.DW}  # sign-extending and skb[] loads
_SKB_WHY = "legacy packet loads (skb[...]) take 1, 2 or 4 bytes"
_STX_ATOMIC = {k: op.STX | op.ATOMIC | v for k, v in _ATOMIC_SIZES.items()}

# Helper ids by every accepted spelling ("map_lookup_elem", "bpf_map_lookup_elem"),
# filled on the first call(); helpers.py is imported only then.
_HELPER_IDS: dict[str, int] = {}


def _user_frame():
    """The first frame outside this module: the user's DSL call."""
    f = _getframe(2)
    while f is not None and f.f_code.co_filename in _SKIPPED:
        f = f.f_back
    return f


def _alu_op(name: str, code: int, doc: str, off: int = 0) -> Callable[["Builder", Reg, Operand], Instruction]:
    """The Builder method for one ALU operation: ``r`` registers make ALU64, ``w`` registers ALU.

    One function per operation rather than calls into a shared one: these are
    the DSL's most frequent calls, and a Python call level costs as much as
    the checks. Cheap identity tests first; the message-producing checks run
    only when one fails.
    """
    x64, x32 = op.ALU64 | code | op.X, op.ALU | code | op.X
    k64, k32 = op.ALU64 | code | op.K, op.ALU | code | op.K

    def method(self: Builder, dst: Reg, src: Operand) -> Instruction:
        if dst.__class__ is not Reg or dst.num == 10:
            self._reg(dst, "destination register", writable=True)
        if src.__class__ is Reg:
            if src.wide != dst.wide:
                raise self._fail(f"mixed register widths {dst!r} and {src!r}")
            return self._emit(x64 if dst.wide else x32, dst.num, src.num, off)
        if src.__class__ is not int or not -0x80000000 <= src <= 0x7FFFFFFF:
            src = self._imm32(src)
        return self._emit(k64 if dst.wide else k32, dst.num, 0, off, src)

    method.__name__, method.__qualname__, method.__doc__ = name, f"Builder.{name}", doc
    return method


class Builder(Blocks):
    """An instruction list under construction, with labels.

    ``insns`` are logical instructions (an ld_imm64 counts once); ``labels``
    maps a label to the logical index of the instruction that follows it.
    """

    def __init__(self) -> None:
        self.insns: list[Instruction] = []
        self.labels: dict[str, int] = {}
        self._ids = itertools.count()
        self._last_if: tuple[str, int] | None = None
        self._loops: list[tuple[str, str]] = []
        self._sites: dict[str, tuple[object, int]] = {}  # label -> (code, lasti) of its label() call

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.insns)

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.insns)

    def emit(self, insn: Instruction) -> Instruction:
        """Append a pre-built instruction (its ``source`` is filled in if empty)."""
        if insn._source is None:
            f = _user_frame()
            if f is not None:
                insn._source, insn._lasti = f.f_code, f.f_lasti
        self.insns.append(insn)
        return insn

    def _emit(self, opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
              target: str | None = None, map: object = None) -> Instruction:
        """Append one instruction that the caller has checked; the DSL's hot path.

        The call site is the first frame outside this module (the public
        method's caller, or further up for conveniences such as map_lookup),
        kept as (code object, bytecode offset) for :attr:`Instruction.source`
        to turn into ``file:line`` when read. The slots are filled here
        directly, skipping ``Instruction.__init__``: a third of the cost of
        building one.
        """
        f = _getframe(2)  # _emit <- public method <- (usually) the user
        code = f.f_code
        while code.co_filename in _SKIPPED:
            f = f.f_back
            code = f.f_code
        insn = _new(Instruction)
        insn.opcode = opcode
        insn.dst = dst
        insn.src = src
        insn.off = off
        insn.imm = imm
        insn._source = code
        insn._lasti = f.f_lasti
        insn.target = target
        insn.map = map
        self.insns.append(insn)
        return insn

    def _fail(self, message: str) -> AssemblerError:
        f = _user_frame()
        return AssemblerError(message, index=len(self.insns),
                              source=f"{f.f_code.co_filename}:{f.f_lineno}" if f else None)

    def label(self, name: str) -> str:
        """Name the position of the next instruction."""
        if name in self.labels:
            raise self._fail(f"duplicate label {name!r} (first at insn {self.labels[name]})")
        self.labels[name] = len(self.insns)
        f = _user_frame()
        self._sites[name] = f and (f.f_code, f.f_lasti)
        return name

    def new_label(self, prefix: str = "L") -> str:
        """A fresh label name, not yet placed (place it with :meth:`label`)."""
        return f".{prefix}{next(self._ids)}"

    # --------------------------------------------------------------- checking
    def _reg(self, reg: object, what: str = "register", writable: bool = False) -> Reg:
        if not isinstance(reg, Reg):
            raise self._fail(f"invalid {what} {reg!r}: expected r0..r10 or w0..w10")
        if writable and reg.num == 10:
            raise self._fail("frame pointer is read only: cannot write to r10")
        return reg

    def _imm32(self, value: object) -> int:
        if not isinstance(value, int):
            raise self._fail(f"invalid immediate {value!r}: expected an int or a register")
        if -(1 << 31) <= value <= _MASK32:
            return value - ((value & 0x80000000) << 1) if value > 0x7FFFFFFF else value
        raise self._fail(f"immediate {value:#x} out of 32-bit range (use ld_imm64)")

    def _off16(self, value: int) -> int:
        if not isinstance(value, int) or not -32768 <= value <= 32767:
            raise self._fail(f"offset {value!r} out of 16-bit signed range")
        return value

    def _u32(self, value: object, what: str, hi: int = _MASK32) -> int:
        if value.__class__ is not int or not 0 <= value <= hi:
            raise self._fail(f"{what} {value!r} out of range [0, {hi:#x}]")
        return value

    def _size(self, size: Size, sizes: dict = _SIZES, why: str = "use 1, 2, 4, 8 or 'u8'..'u64'") -> int:
        try:
            return sizes[size.lower() if isinstance(size, str) else size]
        except (KeyError, AttributeError, TypeError):
            raise self._fail(f"invalid access size {size!r}: {why}") from None

    # The hot methods below check with cheap identity tests first and call the
    # checks above (which produce the messages) only when one fails, in the
    # order the checks would run anyway, so the first bad argument is named.

    # -------------------------------------------------------------------- ALU
    # dst <op>= src, one method per operation: see _alu_op() below the class.
    add = _alu_op("add", op.ADD, "``dst += src``")
    sub = _alu_op("sub", op.SUB, "``dst -= src``")
    mul = _alu_op("mul", op.MUL, "``dst *= src``")
    div = _alu_op("div", op.DIV, "``dst /= src`` (unsigned; x / 0 is 0)")
    sdiv = _alu_op("sdiv", op.DIV, "``dst s/= src`` (signed, ISA v4)", off=1)
    mod = _alu_op("mod", op.MOD, "``dst %= src`` (unsigned; x % 0 is x)")
    smod = _alu_op("smod", op.MOD, "``dst s%= src`` (signed, ISA v4)", off=1)
    or_ = _alu_op("or_", op.OR, "``dst |= src``")
    and_ = _alu_op("and_", op.AND, "``dst &= src``")
    xor = _alu_op("xor", op.XOR, "``dst ^= src``")
    lsh = _alu_op("lsh", op.LSH, "``dst <<= src``")
    rsh = _alu_op("rsh", op.RSH, "``dst >>= src`` (logical)")
    arsh = _alu_op("arsh", op.ARSH, "``dst s>>= src`` (arithmetic)")
    mov = _alu_op("mov", op.MOV, "``dst = src``")

    def neg(self, dst: Reg) -> Instruction:
        dst = self._reg(dst, writable=True)
        return self._emit((op.ALU64 if dst.wide else op.ALU) | op.NEG, dst.num)

    def movsx(self, dst: Reg, src: Reg, bits: int) -> Instruction:
        """Sign-extending move of the low ``bits`` (8, 16, or 32 for r-registers) of src."""
        self._reg(src, "source register")
        self._reg(dst, "destination register")
        allowed = (8, 16, 32) if dst.wide else (8, 16)
        if bits not in allowed:
            raise self._fail(f"movsx{bits} is not an instruction for {dst!r}: use one of {allowed}")
        return _MOVSX[bits](self, dst, src)

    def _end(self, dst: Reg, bits: int, cls: int, src: int) -> Instruction:
        dst = self._reg(dst, writable=True)
        if bits not in (16, 32, 64):
            raise self._fail(f"byte swap width {bits} is not 16, 32 or 64")
        return self._emit(cls | op.END | src, dst.num, 0, 0, bits)

    def be(self, dst: Reg, bits: int) -> Instruction:
        """Convert to big endian (``r0 = be16 r0``)."""
        return self._end(dst, bits, op.ALU, op.TO_BE)

    def le(self, dst: Reg, bits: int) -> Instruction:
        """Convert to little endian (``r0 = le32 r0``): truncation on little-endian hosts."""
        return self._end(dst, bits, op.ALU, op.TO_LE)

    def bswap(self, dst: Reg, bits: int) -> Instruction:
        """Unconditional byte swap (ISA v4, ``r0 = bswap16 r0``)."""
        return self._end(dst, bits, op.ALU64, op.TO_LE)

    # ----------------------------------------------------------------- memory
    def ldx(self, dst: Reg, src: Reg, off: int = 0, size: Size = 8) -> Instruction:
        """``dst = *(size *)(src + off)``."""
        if dst.__class__ is not Reg or dst.num == 10:
            self._reg(dst, writable=True)
        if src.__class__ is not Reg:
            self._reg(src, "source register")
        try:
            opcode = _LDX_MEM[size]
        except (KeyError, TypeError):
            opcode = op.LDX | op.MEM | self._size(size)
        if off.__class__ is not int or not -32768 <= off <= 32767:
            self._off16(off)
        return self._emit(opcode, dst.num, src.num, off)

    def ldxsx(self, dst: Reg, src: Reg, off: int = 0, size: Size = 4) -> Instruction:
        """Sign-extending load (ISA v4): ``dst = *(s32 *)(src + off)``."""
        sz = self._size(size, _SMALL_SIZES, "sign-extending loads take 1, 2 or 4 bytes (use ldx for 8)")
        dst = self._reg(dst, writable=True)
        src = self._reg(src, "source register")
        return self._emit(op.LDX | op.MEMSX | sz, dst.num, src.num, self._off16(off))

    def stx(self, dst: Reg, off: int, src: Reg, size: Size = 8) -> Instruction:
        """``*(size *)(dst + off) = src``."""
        if dst.__class__ is not Reg:
            self._reg(dst, "base register")
        if src.__class__ is not Reg:
            self._reg(src, "source register")
        try:
            opcode = _STX_MEM[size]
        except (KeyError, TypeError):
            opcode = op.STX | op.MEM | self._size(size)
        if off.__class__ is not int or not -32768 <= off <= 32767:
            self._off16(off)
        return self._emit(opcode, dst.num, src.num, off)

    def st(self, dst: Reg, off: int, imm: int, size: Size = 8) -> Instruction:
        """``*(size *)(dst + off) = imm``."""
        if dst.__class__ is not Reg:
            self._reg(dst, "base register")
        try:
            opcode = _ST_MEM[size]
        except (KeyError, TypeError):
            opcode = op.ST | op.MEM | self._size(size)
        if off.__class__ is not int or not -32768 <= off <= 32767:
            self._off16(off)
        if imm.__class__ is not int or not -0x80000000 <= imm <= 0x7FFFFFFF:
            imm = self._imm32(imm)
        return self._emit(opcode, dst.num, 0, off, imm)

    def atomic(self, operation: int, dst: Reg, off: int, src: Reg, size: Size = 8) -> Instruction:
        """``lock`` instruction; ``operation`` is an ``opcodes.ATOMIC_*``/``XCHG``/``CMPXCHG`` value."""
        try:
            opcode = _STX_ATOMIC[size]
        except (KeyError, TypeError):
            opcode = op.STX | op.ATOMIC | self._size(size, _ATOMIC_SIZES, "atomic operations take 4 or 8 bytes")
        if dst.__class__ is not Reg:
            self._reg(dst, "base register")
        if src.__class__ is not Reg:
            self._reg(src, "source register")
        if off.__class__ is not int or not -32768 <= off <= 32767:
            self._off16(off)
        return self._emit(opcode, dst.num, src.num, off, operation)

    def atomic_add(self, dst: Reg, off: int, src: Reg, size: Size = 8, fetch: bool = False) -> Instruction:
        return self.atomic(op.ATOMIC_ADD | (op.FETCH if fetch else 0), dst, off, src, size)

    def atomic_or(self, dst: Reg, off: int, src: Reg, size: Size = 8, fetch: bool = False) -> Instruction:
        return self.atomic(op.ATOMIC_OR | (op.FETCH if fetch else 0), dst, off, src, size)

    def atomic_and(self, dst: Reg, off: int, src: Reg, size: Size = 8, fetch: bool = False) -> Instruction:
        return self.atomic(op.ATOMIC_AND | (op.FETCH if fetch else 0), dst, off, src, size)

    def atomic_xor(self, dst: Reg, off: int, src: Reg, size: Size = 8, fetch: bool = False) -> Instruction:
        return self.atomic(op.ATOMIC_XOR | (op.FETCH if fetch else 0), dst, off, src, size)

    def xchg(self, dst: Reg, off: int, src: Reg, size: Size = 8) -> Instruction:
        return self.atomic(op.XCHG, dst, off, src, size)

    def cmpxchg(self, dst: Reg, off: int, src: Reg, size: Size = 8) -> Instruction:
        """Compare r0 with ``*(dst + off)``; if equal store src; r0 gets the old value."""
        return self.atomic(op.CMPXCHG, dst, off, src, size)

    def ld_abs(self, size: Size, imm: int) -> Instruction:
        """Legacy packet load: ``r0 = *(size *)skb[imm]`` (socket filters; r6 must hold ctx)."""
        return self._emit(op.LD | op.ABS | self._size(size, _SMALL_SIZES, _SKB_WHY), 0, 0, 0, self._imm32(imm))

    def ld_ind(self, size: Size, src: Reg, imm: int) -> Instruction:
        """Legacy packet load: ``r0 = *(size *)skb[src + imm]``."""
        src = self._reg(src, "source register")
        return self._emit(op.LD | op.IND | self._size(size, _SMALL_SIZES, _SKB_WHY), 0, src.num, 0, self._imm32(imm))

    # ---------------------------------------------------------- 64-bit loads
    def _ld64(self, dst: Reg, src: int, imm: int, target: str | None = None,
              map: object = None) -> Instruction:
        if dst.__class__ is not Reg or dst.num == 10:
            self._reg(dst, writable=True)
        return self._emit(op.LD_IMM64, dst.num, src, 0, imm & _MASK64, target, map)

    def ld_imm64(self, dst: Reg, value: int) -> Instruction:
        """``dst = value ll`` (any 64-bit constant, signed or unsigned)."""
        if not isinstance(value, int) or not -(1 << 63) <= value <= _MASK64:
            raise self._fail(f"immediate {value!r} out of 64-bit range")
        if dst.__class__ is not Reg or dst.num == 10:
            self._reg(dst, writable=True)
        return self._emit(op.LD_IMM64, dst.num, 0, 0, value & _MASK64)

    def _map_fd(self, map: object) -> tuple[int, object]:
        """(fd to encode now, map to relocate) for what the loader, simulator and VM take: a Map,
        a spec (``create()``) or map description (``key_size``): fd 0 until relocated, or an fd."""
        if map.__class__ is int:
            return self._u32(map, "map fd", 0x7FFFFFFF), None
        try:
            fd = getattr(map, "fd", None)
        except ValueError as exc:  # a closed Map
            raise self._fail(str(exc)) from None
        if fd is None:
            if callable(getattr(map, "create", None)) or hasattr(map, "key_size"):
                return 0, map
        elif isinstance(fd, int):
            return self._u32(int(fd), f"fd of map {map!r}", 0x7FFFFFFF), map
        raise self._fail(f"invalid map {map!r}: expected a Map, a MapSpec or an fd")

    def ld_map_fd(self, dst: Reg, map: object) -> Instruction:
        """Load a map (a Map, a MapSpec, or an int fd); relocated to its fd when the program is loaded."""
        fd, map = self._map_fd(map)
        return self._ld64(dst, op.PSEUDO_MAP_FD, fd, map=map)

    def _value_off(self, map: object, off: int) -> int:
        # The kernel reads the offset as a u32 and the map checks it against its value size.
        off = self._u32(off, "map value offset")
        size = getattr(map, "value_size", None)
        if size.__class__ is int and 0 < size <= off:  # 0: an arena, which checks its own size
            raise self._fail(f"invalid access to map value pointer, value_size={size} off={off}")
        return off << 32

    def ld_map_value(self, dst: Reg, map: object, off: int = 0) -> Instruction:
        """Load the address of a map's value at ``off`` (direct value access of arrays)."""
        fd, map = self._map_fd(map)
        return self._ld64(dst, op.PSEUDO_MAP_VALUE, self._value_off(map, off) | fd, map=map)

    def ld_map_idx(self, dst: Reg, index: int) -> Instruction:
        """Load the map at ``index`` of the program's fd_array."""
        return self._ld64(dst, op.PSEUDO_MAP_IDX, self._u32(index, "fd_array index", 0x7FFFFFFF))

    def ld_map_idx_value(self, dst: Reg, index: int, off: int = 0) -> Instruction:
        index = self._u32(index, "fd_array index", 0x7FFFFFFF)
        return self._ld64(dst, op.PSEUDO_MAP_IDX_VALUE, self._value_off(None, off) | index)

    def ld_btf_id(self, dst: Reg, btf_id: int) -> Instruction:
        """Load the address of a kernel variable by its BTF id."""
        return self._ld64(dst, op.PSEUDO_BTF_ID, self._u32(btf_id, "BTF id"))

    def ld_func(self, dst: Reg, label: str) -> Instruction:
        """Load the address of a bpf-to-bpf function (for callbacks such as bpf_loop)."""
        return self._ld64(dst, op.PSEUDO_FUNC, 0, target=label)

    # ------------------------------------------------------------------ jumps
    def _target(self, target: str | int) -> tuple[str | None, int]:
        if isinstance(target, str):
            return target, 0
        if isinstance(target, int):
            return None, self._off16(target)
        raise self._fail(f"invalid jump target {target!r}: expected a label or an int offset")

    def ja(self, target: str | int) -> Instruction:
        """``goto target`` (16-bit offset)."""
        if target.__class__ is str:
            return self._emit(op.JA_OP, 0, 0, 0, 0, target)
        label, off = self._target(target)
        return self._emit(op.JA_OP, 0, 0, off, 0, label)

    def gotol(self, target: str | int) -> Instruction:
        """``gotol target`` (ISA v4, 32-bit offset in imm)."""
        if isinstance(target, int):
            return self._emit(op.JMP32 | op.JA, 0, 0, 0, self._imm32(target))
        return self._emit(op.JMP32 | op.JA, 0, 0, 0, 0, target=target)

    def jump_if(self, a: Reg, cond: str, b: Operand, target: str | int) -> Instruction:
        """``if a <cond> b goto target``; cond is one of ``== != > >= < <= s> s>= s< s<= &``."""
        try:
            code = _CONDS[cond]
        except (KeyError, TypeError):
            raise self._fail(f"invalid condition {cond!r}: use one of {' '.join(_CONDS)}") from None
        if a.__class__ is not Reg:
            self._reg(a)
        code |= op.JMP if a.wide else op.JMP32
        if target.__class__ is str:
            label, off = target, 0
        else:
            label, off = self._target(target)
        if b.__class__ is Reg or isinstance(b, Reg):
            if b.wide is not a.wide:
                raise self._fail(f"mixed register widths {a!r} and {b!r}")
            return self._emit(code | op.X, a.num, b.num, off, 0, label)
        if b.__class__ is not int or not -0x80000000 <= b <= 0x7FFFFFFF:
            b = self._imm32(b)
        return self._emit(code | op.K, a.num, 0, off, b, label)

    def jeq(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "==", b, t)
    def jne(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "!=", b, t)
    def jgt(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, ">", b, t)
    def jge(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, ">=", b, t)
    def jlt(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "<", b, t)
    def jle(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "<=", b, t)
    def jsgt(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "s>", b, t)
    def jsge(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "s>=", b, t)
    def jslt(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "s<", b, t)
    def jsle(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "s<=", b, t)
    def jset(self, a: Reg, b: Operand, t: str | int) -> Instruction: return self.jump_if(a, "&", b, t)

    def call(self, helper: str | int) -> Instruction:
        """Call a kernel helper by name (``"map_lookup_elem"`` or ``"bpf_..."``) or id."""
        hid = _HELPER_IDS.get(helper) if helper.__class__ is str else None
        if hid is None:
            hid = self._helper_id(helper)
        return self._emit(op.CALL_OP, 0, 0, 0, hid)

    def _helper_id(self, helper: str | int) -> int:
        from .helpers import HELPER_IDS, helper_id

        if not _HELPER_IDS:
            _HELPER_IDS.update(HELPER_IDS)
            _HELPER_IDS.update({f"bpf_{name}": hid for name, hid in HELPER_IDS.items()})
        try:
            return helper_id(helper)
        except AssemblerError as exc:
            raise self._fail(exc.reason) from None

    def call_func(self, label: str) -> Instruction:
        """bpf-to-bpf call of the subprogram at ``label`` (``call pc+N``)."""
        return self._emit(op.CALL_OP, 0, op.PSEUDO_CALL, 0, 0, target=label)

    def call_kfunc(self, btf_id: int, module_fd_index: int = 0) -> Instruction:
        """Call a kernel function (kfunc) by BTF id."""
        btf_id = self._u32(btf_id, "kfunc BTF id", 0x7FFFFFFF)
        index = self._u32(module_fd_index, "kfunc module fd_array index", 0x7FFF)
        return self._emit(op.CALL_OP, 0, op.PSEUDO_KFUNC_CALL, index, btf_id)

    def exit(self) -> Instruction:
        return self._emit(op.EXIT_OP)

    # ----------------------------------------------------------- conveniences
    def stack_ptr(self, dst: Reg, off: int) -> None:
        """``dst = r10 + off``: a pointer to a stack slot, for helper arguments."""
        self.mov(dst, R[10])
        self.add(dst, off)

    def map_lookup(self, map: object, key_at: int) -> None:
        """``r0 = bpf_map_lookup_elem(map, r10 + key_at)``; clobbers r1-r5."""
        self.ld_map_fd(R[1], map)
        self.stack_ptr(R[2], key_at)
        self.call("map_lookup_elem")

    def map_update(self, map: object, key_at: int, value_at: int, flags: int = 0) -> None:
        """``r0 = bpf_map_update_elem(map, r10 + key_at, r10 + value_at, flags)``."""
        self.ld_map_fd(R[1], map)
        self.stack_ptr(R[2], key_at)
        self.stack_ptr(R[3], value_at)
        self.mov(R[4], flags)
        self.call("map_update_elem")

    def ret(self, value: Operand) -> None:
        """``r0 = value; exit``."""
        self.mov(R[0], value)
        self.exit()

    # --------------------------------------------------------------- output
    def encode(self) -> bytes:
        """The program as kernel bytecode; labels resolved, raw offsets checked.

        Maps are encoded with their current ``fd`` (0 for a spec with no fd);
        the loader relocates them to real fds.
        """
        insns = self.insns
        for insn in insns:
            if insn.map is not None and insn.opcode == op.LD_IMM64:
                fd = getattr(insn.map, "fd", None)
                if isinstance(fd, int):
                    insn.imm = (insn.imm & ~_MASK32 & _MASK64) | (fd & _MASK32)
        for name, index in self.labels.items():
            if index > len(insns):
                site = self._sites.get(name)
                raise AssemblerError(f"label {name!r} points past the end ({len(insns)} instructions)",
                                     index=index, source=site and f"{site[0].co_filename}:{_line_at(*site)}")
        return encode(insns, self.labels, check_jumps=True)



_MOVSX = {bits: _alu_op("movsx", op.MOV, "``dst = (s<bits>)src``", off=bits) for bits in (8, 16, 32)}
