"""Translation of instructions into Python functions, one per basic block.

Why generate source: an interpreter that decodes ``opcode`` on every step
spends most of its time on dispatch. Instead each basic block (a run of
instructions entered only at its top) becomes one Python function whose body
is the instructions' effects with registers, offsets and immediates inlined
as constants; the run loop only calls ``pc = blocks[pc](r)``. Every memory
access still goes through the region check of :mod:`pybpf.vm.memory`, and
every fault names its own instruction (``k``, the logical index).

Registers ``r[0]``..``r[10]`` are unsigned 64-bit ints; ALU32 results are
masked to 32 bits (zero-extension), signed operations convert on the spot.
"""

from __future__ import annotations

from ..asm import opcodes as op
from ..asm.instruction import Instruction, slot_offsets
from .errors import VMError

M64 = 0xFFFF_FFFF_FFFF_FFFF
M32 = 0xFFFF_FFFF
_SIGN64 = 0x8000_0000_0000_0000
_SIGN32 = 0x8000_0000
_MASK = {1: 0xFF, 2: 0xFFFF, 4: M32, 8: M64}
_CODE = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SCODE = {1: "b", 2: "h", 4: "i", 8: "q"}


def sdiv(a: int, b: int, bits: int) -> int:
    """Signed division truncating toward zero; /0 is 0 and INT_MIN/-1 is INT_MIN."""
    mask = (1 << bits) - 1
    a &= mask
    b &= mask
    if b == 0:
        return 0
    sa = a - ((a >> (bits - 1)) << bits)
    sb = b - ((b >> (bits - 1)) << bits)
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & mask


def smod(a: int, b: int, bits: int) -> int:
    """Signed remainder with the dividend's sign; %0 leaves the dividend."""
    mask = (1 << bits) - 1
    a &= mask
    b &= mask
    if b == 0:
        return a
    sa = a - ((a >> (bits - 1)) << bits)
    sb = b - ((b >> (bits - 1)) << bits)
    m = abs(sa) % abs(sb)
    return (-m if sa < 0 else m) & mask


def bswap(v: int, nbytes: int) -> int:
    return int.from_bytes((v & _MASK[nbytes]).to_bytes(nbytes, "little"), "big")


def sext(v: int, bits: int, to: int = 64) -> int:
    """Sign-extend the low ``bits`` of ``v`` to ``to`` bits (unsigned result)."""
    v &= (1 << bits) - 1
    return (v - ((v >> (bits - 1)) << bits)) & ((1 << to) - 1)


class CodegenError(VMError):
    pass


def _reg(insn: Instruction, k: int, which: str, write: bool = False) -> str:
    n = insn.dst if which == "dst" else insn.src
    if not 0 <= n <= 10:
        raise CodegenError(f"R{n} is invalid", index=k)
    if write and n == 10:
        raise CodegenError("frame pointer is read only", index=k)
    return f"r[{n}]"


class Translator:
    """Turns one program into block sources. ``target(k, slot_delta)`` validates jumps."""

    def __init__(self, insns: list[Instruction]):
        self.insns = insns
        self.slots = slot_offsets(insns)
        self.slot_to_index = {s: i for i, s in enumerate(self.slots)}
        self.nslots = self.slots[-1] + insns[-1].slots if insns else 0
        self.consts: dict[str, object] = {}  # extra names for the generated code
        self.pseudo_hook: dict[int, object] = {}  # k -> zero-arg function for pseudo ld_imm64

    def target(self, k: int, delta: int) -> int:
        to = self.slots[k] + 1 + delta
        i = self.slot_to_index.get(to)
        if i is None:
            raise CodegenError(f"jump out of range from insn {self.slots[k]} to {to}", index=k)
        return i

    def const(self, value: object, prefix: str = "c") -> str:
        name = f"{prefix}{len(self.consts)}"
        self.consts[name] = value
        return name

    # -- the instruction classes --------------------------------------------------------
    def translate(self, k: int) -> tuple[list[str], bool]:
        """Source lines for instruction ``k`` and whether it ends its block."""
        insn = self.insns[k]
        cls = insn.opcode & 7
        if cls in (op.ALU, op.ALU64):
            return self.alu(insn, k), False
        if cls in (op.JMP, op.JMP32):
            return self.jmp(insn, k), True
        if cls == op.LDX:
            return self.ldx(insn, k), False
        if cls in (op.ST, op.STX):
            return self.store(insn, k), False
        if cls == op.LD:
            return self.ld(insn, k), False
        raise CodegenError(f"unknown opcode {insn.opcode:02x}", index=k)  # pragma: no cover

    def alu(self, insn: Instruction, k: int) -> list[str]:
        code = insn.opcode
        is64 = code & 7 == op.ALU64
        alu_op = code & 0xF0
        d = _reg(insn, k, "dst", write=True)
        bits, mask = (64, "M64") if is64 else (32, "M32")
        if code & op.X and alu_op not in (op.NEG, op.END):
            s = _reg(insn, k, "src")
            b = s if is64 else f"({s} & M32)"
        else:
            if alu_op not in (op.NEG, op.END) and insn.src != 0:
                raise CodegenError(f"BPF_ALU uses reserved fields", index=k)
            b = str(insn.imm & (M64 if is64 else M32))
        a = d if is64 else f"({d} & M32)"
        off = insn.off
        if off and not ((alu_op in (op.DIV, op.MOD) and off == 1)
                        or (alu_op == op.MOV and code & op.X)):
            raise CodegenError("BPF_ALU uses reserved fields", index=k)
        if alu_op == op.ADD:
            return [f"{d} = ({d} + {b}) & {mask}"]
        if alu_op == op.SUB:
            return [f"{d} = ({d} - {b}) & {mask}"]
        if alu_op == op.MUL:
            return [f"{d} = ({d} * {b}) & {mask}"]
        if alu_op == op.OR:
            return [f"{d} = {d} | {b}"] if is64 else [f"{d} = ({d} | {b}) & M32"]
        if alu_op == op.AND:
            return [f"{d} = {d} & {b}"] if is64 else [f"{d} = {d} & {b} & M32"]
        if alu_op == op.XOR:
            return [f"{d} = {d} ^ {b}"] if is64 else [f"{d} = ({d} ^ {b}) & M32"]
        if alu_op in (op.LSH, op.RSH, op.ARSH):
            sh = f"({b} & {bits - 1})" if code & op.X else str(int(b) & (bits - 1))
            if alu_op == op.LSH:
                return [f"{d} = ({d} << {sh}) & {mask}"]
            if alu_op == op.RSH:
                return [f"{d} = {a} >> {sh}"]
            sign = "0x8000000000000000" if is64 else "0x80000000"
            return [f"{d} = ((({a} ^ {sign}) - {sign}) >> {sh}) & {mask}"]
        if alu_op == op.NEG:
            return [f"{d} = (-{d}) & {mask}"]
        if alu_op == op.DIV:
            if off == 1:
                return [f"{d} = sdiv({d}, {b}, {bits})"]
            if code & op.X:
                return [f"_b = {b}", f"{d} = {a} // _b if _b else 0"]
            return [f"{d} = {a} // {b}" if int(b) else f"{d} = 0"]
        if alu_op == op.MOD:
            if off == 1:
                return [f"{d} = smod({d}, {b}, {bits})"]
            if code & op.X:
                return [f"_b = {b}", f"{d} = {a} % _b if _b else {a}"]
            return [f"{d} = {a} % {b}" if int(b) else f"{d} = {a}"]
        if alu_op == op.MOV:
            if off:
                if off not in ((8, 16, 32) if is64 else (8, 16)):
                    raise CodegenError(f"invalid movsx offset {off}", index=k)
                return [f"{d} = sext({_reg(insn, k, 'src')}, {off}, {bits})"]
            return [f"{d} = {b}"]
        if alu_op == op.END:
            if insn.imm not in (16, 32, 64):
                raise CodegenError(f"BPF_END uses reserved fields (imm={insn.imm})", index=k)
            n = insn.imm // 8
            if is64:
                if code & op.X:
                    raise CodegenError("BPF_END uses reserved fields", index=k)
                return [f"{d} = bswap({d}, {n})"]
            if code & op.X:  # to_be: a swap on this (little-endian) machine model
                return [f"{d} = bswap({d}, {n})"]
            return [] if n == 8 else [f"{d} = {d} & {_MASK[n]}"]
        raise CodegenError(f"invalid BPF_ALU opcode {alu_op:x}", index=k)

    def cond(self, insn: Instruction, k: int) -> str:
        code = insn.opcode
        is64 = code & 7 == op.JMP
        jop = code & 0xF0
        d = _reg(insn, k, "dst")
        if code & op.X:
            s = _reg(insn, k, "src")
            b = s if is64 else f"({s} & M32)"
        else:
            b = str(insn.imm & (M64 if is64 else M32))
        a = d if is64 else f"({d} & M32)"
        sign = "0x8000000000000000" if is64 else "0x80000000"
        unsigned = {op.JEQ: "==", op.JNE: "!=", op.JGT: ">", op.JGE: ">=", op.JLT: "<",
                    op.JLE: "<="}
        signed = {op.JSGT: ">", op.JSGE: ">=", op.JSLT: "<", op.JSLE: "<="}
        if jop in unsigned:
            return f"{a} {unsigned[jop]} {b}"
        if jop in signed:  # signed order == unsigned order with the sign bit flipped
            return f"({a} ^ {sign}) {signed[jop]} ({b} ^ {sign})"
        if jop == op.JSET:
            return f"{a} & {b}"
        raise CodegenError(f"unknown opcode {code:02x}", index=k)

    def jmp(self, insn: Instruction, k: int) -> list[str]:
        code = insn.opcode
        jop = code & 0xF0
        nxt = k + 1
        if jop == op.JA:
            delta = insn.imm if code & 7 == op.JMP32 else insn.off
            return [f"return {self.target(k, delta)}"]
        if jop == op.EXIT:
            if code != op.EXIT_OP:
                raise CodegenError(f"unknown opcode {code:02x}", index=k)
            return ["return LEAVE(r)"]
        if jop == op.CALL:
            if code != op.CALL_OP:
                raise CodegenError(f"unknown opcode {code:02x}", index=k)
            if insn.src == op.PSEUDO_CALL:
                return [f"return ENTER(r, {nxt}, {self.target(k, insn.imm)}, {k})"]
            if insn.src == op.PSEUDO_KFUNC_CALL:
                return [f"UNSUPPORTED({k}, 'kernel function calls (kfunc btf_id {insn.imm})')",
                        f"return {nxt}"]
            if insn.src != 0:
                raise CodegenError(f"invalid call src_reg {insn.src}", index=k)
            if insn.imm == self.tail_call_id:
                return [f"TAIL(r, {k})", f"return {nxt}"]
            return [f"r[0] = CALL({insn.imm}, r, {k})", f"return {nxt}"]
        target = self.target(k, insn.off)
        return [f"if {self.cond(insn, k)}: return {target}", f"return {nxt}"]

    tail_call_id = 12

    def _addr(self, reg: str, off: int) -> str:
        return f"_a = ({reg} + {off}) & M64" if off else f"_a = {reg}"

    def ldx(self, insn: Instruction, k: int) -> list[str]:
        mode = insn.opcode & 0xE0
        n = op.SIZE_BYTES[insn.opcode & 0x18]
        if mode not in (op.MEM, op.MEMSX) or (mode == op.MEMSX and n == 8):
            raise CodegenError(f"unknown opcode {insn.opcode:02x}", index=k)
        d = _reg(insn, k, "dst", write=True)
        s = _reg(insn, k, "src")
        if n == 1:
            raw = "_t[0][_a - _t[1]]"
        else:
            raw = f"U{n}(_t[0], _a - _t[1])[0]"
        if mode == op.MEMSX:
            raw = f"sext({raw}, {8 * n})"
        return [self._addr(s, insn.off),
                "_t = R.get(_a >> 32)",
                f"if _t is None or _a < _t[2] or _a + {n} > _t[3]: FAULT({k}, _a, {n}, 'read', _t)",
                f"{d} = {raw} if _t[5] is None else _t[5].load(_a - _t[1], {n}, {k}, {mode == op.MEMSX})"]

    def store(self, insn: Instruction, k: int) -> list[str]:
        code = insn.opcode
        mode = code & 0xE0
        n = op.SIZE_BYTES[code & 0x18]
        d = _reg(insn, k, "dst")
        if code & 7 == op.ST:
            if mode != op.MEM:
                raise CodegenError(f"unknown opcode {code:02x}", index=k)
            value = str(insn.imm & _MASK[n])
        else:
            s = _reg(insn, k, "src")
            value = f"{s} & {_MASK[n]}" if n < 8 else s
            if mode == op.ATOMIC:
                return self.atomic(insn, k, n, d, s)
            if mode != op.MEM:
                raise CodegenError(f"unknown opcode {code:02x}", index=k)
        write = f"_t[0][_a - _t[1]] = {value}" if n == 1 else f"P{n}(_t[0], _a - _t[1], {value})"
        return [self._addr(d, insn.off),
                "_t = R.get(_a >> 32)",
                f"if _t is None or _a < _t[2] or _a + {n} > _t[3] or not _t[4]: "
                f"FAULT({k}, _a, {n}, 'write', _t)",
                f"if _t[5] is None: {write}",
                f"else: _t[5].store(_a - _t[1], {n}, {value}, {k})"]

    def atomic(self, insn: Instruction, k: int, n: int, d: str, s: str) -> list[str]:
        aop = insn.imm
        if aop == op.LOAD_ACQ:  # dst = *(src + off), with ordering we need not model
            return self.ldx(insn.replace(opcode=op.LDX | op.MEM | (insn.opcode & 0x18)), k)
        if aop == op.STORE_REL:
            return self.store(insn.replace(opcode=op.STX | op.MEM | (insn.opcode & 0x18)), k)
        if n not in (4, 8):
            raise CodegenError(f"invalid atomic operand size", index=k)
        mask = "M64" if n == 8 else "M32"
        head = [self._addr(d, insn.off),
                "_t = R.get(_a >> 32)",
                f"if _t is None or _a < _t[2] or _a + {n} > _t[3] or not _t[4] or _t[5] is not None: "
                f"FAULT({k}, _a, {n}, 'atomic', _t)",
                "_i = _a - _t[1]",
                f"_o = U{n}(_t[0], _i)[0]"]
        base = aop & ~op.FETCH
        ops = {op.ATOMIC_ADD: f"(_o + {s}) & {mask}", op.ATOMIC_OR: f"(_o | {s}) & {mask}",
               op.ATOMIC_AND: f"_o & {s}", op.ATOMIC_XOR: f"(_o ^ {s}) & {mask}"}
        if aop == op.XCHG:
            return head + [f"P{n}(_t[0], _i, {s} & {mask})", f"{s} = _o"]
        if aop == op.CMPXCHG:
            return head + [f"if _o == r[0] & {mask}: P{n}(_t[0], _i, {s} & {mask})", "r[0] = _o"]
        if base in ops and aop & ~(op.FETCH | 0xF0) == 0:
            lines = head + [f"P{n}(_t[0], _i, {ops[base]})"]
            if aop & op.FETCH:
                if insn.src == 10:
                    raise CodegenError("frame pointer is read only", index=k)
                lines.append(f"{s} = _o")
            return lines
        raise CodegenError(f"BPF_ATOMIC uses invalid atomic opcode {aop:02x}", index=k)

    def ld(self, insn: Instruction, k: int) -> list[str]:
        code = insn.opcode
        if code == op.LD_IMM64:
            d = _reg(insn, k, "dst", write=True)
            if insn.src == 0:
                return [f"{d} = {insn.imm & M64}"]
            return [f"{d} = {self.const(self.pseudo_hook[k], 'ld')}()"]
        mode = code & 0xE0
        n = op.SIZE_BYTES[code & 0x18]
        if mode not in (op.ABS, op.IND) or n == 8:
            raise CodegenError(f"unknown opcode {code:02x}", index=k)
        extra = f" + {_reg(insn, k, 'src')}" if mode == op.IND else ""
        return [f"r[0] = LDABS(({insn.imm}{extra}) & M32, {n}, {k})"]

    # -- blocks -------------------------------------------------------------------------
    def leaders(self) -> list[int]:
        insns = self.insns
        lead = {0}
        for k, insn in enumerate(insns):
            cls = insn.opcode & 7
            if cls in (op.JMP, op.JMP32):
                lead.add(k + 1)
                jop = insn.opcode & 0xF0
                try:
                    if jop == op.JA:
                        lead.add(self.target(k, insn.imm if cls == op.JMP32 else insn.off))
                    elif jop == op.CALL and insn.src == op.PSEUDO_CALL:
                        lead.add(self.target(k, insn.imm))
                    elif jop not in (op.CALL, op.EXIT):
                        lead.add(self.target(k, insn.off))
                except CodegenError:
                    pass  # reported when the instruction itself is translated
        return sorted(i for i in lead if i <= len(insns))

    def blocks(self) -> list[tuple[int, int, str]]:
        """(first index, instruction count, function source) for every block."""
        starts = self.leaders()
        out = []
        for j, start in enumerate(starts):
            if start == len(self.insns):
                break
            end = starts[j + 1] if j + 1 < len(starts) else len(self.insns)
            body: list[str] = []
            k = start
            closed = False
            while k < end:
                lines, closed = self.translate(k)
                body += lines
                k += 1
                if closed:
                    break
            if not closed:
                body.append(f"return {k}")
            src = f"def b{start}(r):\n    " + "\n    ".join(body) + "\n"
            out.append((start, k - start, src))
        return out
