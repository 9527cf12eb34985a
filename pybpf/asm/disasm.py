"""Disassembler printing the kernel's own instruction syntax.

Each instruction is printed as ``print_bpf_insn()`` in kernel/bpf/disasm.c
prints it in the verifier log (log_level 2), so a disassembly can be compared
line by line with a kernel log and searched for the same strings.

Where the kernel's text depends on run-time values it cannot print the
instruction faithfully, and we print a form the text assembler reads back
instead (documented in :func:`disassemble_insn`):

* ``ld_imm64`` with a pseudo source (map fd, map value, BTF id, function,
  map index): by the time the verifier logs it, the kernel has replaced the fd
  by a kernel address (printed as ``0x...``, or ``0x0`` without
  CAP_PERFMON), so we print ``map[fd:3]``, ``map[fd:3][0]+8``,
  ``map[idx:0]``, ``btf_id[123]`` instead (``map[name]`` when the
  instruction carries a map name);
* ``ld_imm64`` of a function (``func[pc+4]``): the kernel prints the raw
  imm, ``0x4``, which would read back as a plain constant;
* kfunc calls: the kernel prints the function's BTF name (``call
  bpf_rcu_read_lock#1234``); without BTF we print ``kernel-function``, as the
  kernel does when it has no name. Pass ``kfunc_name`` to print the name.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence

from . import opcodes as op
from .errors import AssemblerError
from .helpers import HELPER_NAMES
from .instruction import Instruction, decode

__all__ = [
    "disassemble_insn", "disassemble", "disassemble_lines", "listing",
    "check_opcode", "validate", "validate_program", "parse_verifier_log",
]

_ALU_STR = {
    op.ADD: "+=", op.SUB: "-=", op.MUL: "*=", op.DIV: "/=", op.OR: "|=", op.AND: "&=",
    op.LSH: "<<=", op.RSH: ">>=", op.MOD: "%=", op.XOR: "^=", op.MOV: "=", op.ARSH: "s>>=",
}
_ALU_SIGNED_STR = {op.DIV: "s/=", op.MOD: "s%="}
_MOVSX_STR = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
_JMP_STR = op.COND_SYMBOLS
_ATOMIC_ALU = {op.ATOMIC_ADD: "add", op.ATOMIC_AND: "and", op.ATOMIC_OR: "or", op.ATOMIC_XOR: "xor"}
_ATOMIC_LOCK_STR = {op.ATOMIC_ADD: "+=", op.ATOMIC_AND: "&=", op.ATOMIC_OR: "|=", op.ATOMIC_XOR: "^="}
_SIZE = op.SIZE_NAMES
_SIZE_SX = op.LDSX_NAMES
_MASK64 = (1 << 64) - 1

KfuncName = Callable[[Instruction], "str | None"]


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _ld_imm64_text(insn: Instruction) -> str:
    imm = insn.imm & _MASK64
    lo, hi = imm & 0xFFFFFFFF, imm >> 32
    src = insn.src
    if src == 0:
        return f"{imm:#x}"
    name = insn.map if isinstance(insn.map, str) else None
    if src == op.PSEUDO_MAP_FD:
        return f"map[{name}]" if name else f"map[fd:{lo}]"
    if src == op.PSEUDO_MAP_VALUE:
        return f"map[{name}][0]+{hi}" if name else f"map[fd:{lo}][0]+{hi}"
    if src == op.PSEUDO_MAP_IDX:
        return f"map[idx:{lo}]"
    if src == op.PSEUDO_MAP_IDX_VALUE:
        return f"map[idx:{lo}][0]+{hi}"
    if src == op.PSEUDO_BTF_ID:
        return f"btf_id[{lo}]" if not hi else f"btf_id[{lo}][fd:{hi}]"
    if src == op.PSEUDO_FUNC:
        return f"func[pc{_s32(lo):+d}]"
    return f"{imm:#x}"


def disassemble_insn(insn: Instruction, *, kfunc_name: KfuncName | None = None) -> str:
    """The kernel's text for one instruction (without the ``N: (xx)`` prefix).

    Invalid encodings print as the kernel prints them (``BUG_...``); use
    :func:`validate` to reject them with a reason instead.
    """
    code = insn.opcode
    cls = code & 0x07
    dst, src, off, imm = insn.dst, insn.src, insn.off, insn.imm
    if cls == op.ALU or cls == op.ALU64:
        r = "w" if cls == op.ALU else "r"
        opc = code & 0xF0
        if opc == op.END:
            if cls == op.ALU64:
                return f"r{dst} = bswap{imm} r{dst}"
            return f"r{dst} = {'be' if code & op.X else 'le'}{imm} r{dst}"
        if opc == op.NEG:
            return f"{r}{dst} = -{r}{dst}"
        if code == op.ALU64 | op.MOV | op.X and off == op.ADDR_SPACE_CAST:
            return f"r{dst} = addr_space_cast(r{src}, {(imm & 0xFFFFFFFF) >> 16}, {imm & 0xFFFF})"
        if code == op.ALU64 | op.MOV | op.X and off == -1:
            return f"r{dst} = &(void __percpu *)(r{src})"
        sym = _ALU_SIGNED_STR[opc] if off == 1 and opc in _ALU_SIGNED_STR else _ALU_STR.get(opc, "?")
        if code & op.X:
            sx = _MOVSX_STR.get(off, "") if opc == op.MOV else ""
            return f"{r}{dst} {sym} {sx}{r}{src}"
        return f"{r}{dst} {sym} {imm}"
    if cls == op.JMP or cls == op.JMP32:
        opc = code & 0xF0
        if opc == op.CALL:
            if src == op.PSEUDO_CALL:
                return f"call pc{imm:+d}"
            name = None
            if src == 0 and imm in HELPER_NAMES:
                name = "bpf_" + HELPER_NAMES[imm]
            elif kfunc_name is not None:
                name = kfunc_name(insn)
            if name is None:
                name = "kernel-function" if src == op.PSEUDO_KFUNC_CALL else "unknown"
            text = f"call {name}#{imm}"
            # A kfunc from a module BTF carries the fd_array index in off;
            # the kernel does not print it, we do so that text round-trips.
            return f"{text} off:{off}" if src == op.PSEUDO_KFUNC_CALL and off else text
        if code == op.JA_OP:
            return f"goto pc{off:+d}"
        if code == op.JCOND_OP and src == op.MAY_GOTO:
            return f"may_goto pc{off:+d}"
        if code == op.JMP32 | op.JA:
            return f"gotol pc{imm:+d}"
        if code == op.EXIT_OP:
            return "exit"
        r = "w" if cls == op.JMP32 else "r"
        if code & op.X:
            return f"if {r}{dst} {_JMP_STR.get(opc, '?')} {r}{src} goto pc{off:+d}"
        return f"if {r}{dst} {_JMP_STR.get(opc, '?')} {imm & 0xFFFFFFFF:#x} goto pc{off:+d}"
    mode, size = code & 0xE0, code & 0x18
    if cls == op.LDX:
        if mode == op.MEM:
            return f"r{dst} = *({_SIZE[size]} *)(r{src} {off:+d})"
        if mode == op.MEMSX and size in _SIZE_SX:
            return f"r{dst} = *({_SIZE_SX[size]} *)(r{src} {off:+d})"
        return f"BUG_ldx_{code:02x}"
    if cls == op.STX:
        if mode == op.MEM:
            return f"*({_SIZE[size]} *)(r{dst} {off:+d}) = r{src}"
        if mode == op.ATOMIC:
            ptr = f"({_SIZE[size]} *)(r{dst} {off:+d})"
            bits = "64" if size == op.DW else ""
            if imm in _ATOMIC_LOCK_STR:
                return f"lock *{ptr} {_ATOMIC_LOCK_STR[imm]} r{src}"
            if imm & op.FETCH and (imm & ~op.FETCH) in _ATOMIC_ALU:
                return f"r{src} = atomic{bits}_fetch_{_ATOMIC_ALU[imm & ~op.FETCH]}({ptr}, r{src})"
            if imm == op.CMPXCHG:
                return f"r0 = atomic{bits}_cmpxchg({ptr}, r0, r{src})"
            if imm == op.XCHG:
                return f"r{src} = atomic{bits}_xchg({ptr}, r{src})"
            if imm == op.LOAD_ACQ:
                return f"r{dst} = load_acquire(({_SIZE[size]} *)(r{src} {off:+d}))"
            if imm == op.STORE_REL:
                return f"store_release({ptr}, r{src})"
        return f"BUG_{code:02x}"
    if cls == op.ST:
        if mode == op.MEM:
            return f"*({_SIZE[size]} *)(r{dst} {off:+d}) = {imm}"
        if mode == 0xC0:  # BPF_NOSPEC, kernel-internal
            return "nospec"
        return f"BUG_st_{code:02x}"
    # cls == op.LD
    if mode == op.ABS:
        return f"r0 = *({_SIZE[size]} *)skb[{imm}]"
    if mode == op.IND:
        return f"r0 = *({_SIZE[size]} *)skb[r{src} + {imm}]"
    if code == op.LD_IMM64:
        return f"r{dst} = {_ld_imm64_text(insn)}"
    return f"BUG_ld_{code:02x}"


def _as_insns(program: "bytes | bytearray | memoryview | Iterable[Instruction]") -> list[Instruction]:
    if isinstance(program, (bytes, bytearray, memoryview)):
        return decode(program)
    return list(program)


def disassemble_lines(program, *, kfunc_name: KfuncName | None = None) -> list[str]:
    """One line of kernel text per logical instruction."""
    return [disassemble_insn(insn, kfunc_name=kfunc_name) for insn in _as_insns(program)]


def disassemble(program, *, kfunc_name: KfuncName | None = None) -> str:
    """Kernel-syntax text of bytecode or instructions, one instruction a line.

    The result reads back with :func:`pybpf.asm.text.assemble` to the same bytes.
    """
    lines = disassemble_lines(program, kfunc_name=kfunc_name)
    return "\n".join(lines) + ("\n" if lines else "")


def listing(program, *, kfunc_name: KfuncName | None = None) -> str:
    """Text in the verifier log's layout, ``N: (xx) text``, N counting slots."""
    out = []
    pos = 0
    for insn in _as_insns(program):
        out.append(f"{pos}: ({insn.opcode:02x}) {disassemble_insn(insn, kfunc_name=kfunc_name)}")
        pos += insn.slots
    return "\n".join(out) + ("\n" if out else "")


# ---------------------------------------------------------------------------
# Validation: which encodings the kernel accepts as instructions at all.

def _valid_opcodes() -> frozenset[int]:
    ok = set()
    for cls in (op.ALU, op.ALU64):
        for opc in (op.ADD, op.SUB, op.MUL, op.DIV, op.OR, op.AND, op.LSH, op.RSH,
                    op.MOD, op.XOR, op.MOV, op.ARSH):
            ok.add(cls | opc | op.K)
            ok.add(cls | opc | op.X)
        ok.add(cls | op.NEG)
    ok.update((op.ALU | op.END | op.TO_LE, op.ALU | op.END | op.TO_BE, op.ALU64 | op.END))
    for cls in (op.JMP, op.JMP32):
        for opc in _JMP_STR:
            ok.add(cls | opc | op.K)
            ok.add(cls | opc | op.X)
    ok.update((op.JA_OP, op.JMP32 | op.JA, op.CALL_OP, op.EXIT_OP, op.JCOND_OP))
    ok.add(op.LD_IMM64)
    for size in (op.W, op.H, op.B):
        ok.update((op.LD | op.ABS | size, op.LD | op.IND | size, op.LDX | op.MEMSX | size))
    for size in (op.W, op.H, op.B, op.DW):
        ok.update((op.LDX | op.MEM | size, op.ST | op.MEM | size, op.STX | op.MEM | size,
                   op.STX | op.ATOMIC | size))
    return frozenset(ok)


VALID_OPCODES = _valid_opcodes()
_ATOMIC_RMW = frozenset(list(_ATOMIC_ALU) + [a | op.FETCH for a in _ATOMIC_ALU] + [op.XCHG, op.CMPXCHG])


def check_opcode(opcode: int) -> str | None:
    """Why an opcode byte is not an eBPF instruction, or None if it is one."""
    if opcode in VALID_OPCODES:
        return None
    cls = op.CLASS_NAMES[opcode & 7]
    return f"unknown opcode {opcode:#04x} (class {cls})"


def validate(insn: Instruction) -> str | None:
    """Why an instruction's fields are not a valid encoding, or None.

    Checks what the kernel checks before the verifier's data-flow pass
    (opcode, reserved fields, registers, immediates of atomics, endianness,
    sign extension); it does not check semantics (e.g. division by zero).
    """
    code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
    reason = check_opcode(code)
    if reason:
        return reason
    if not 0 <= dst <= op.MAX_REG or not 0 <= src <= 15:
        return f"invalid register (dst r{dst}, src r{src})"
    cls, opc = code & 7, code & 0xF0
    if cls in (op.ALU, op.ALU64):
        if opc == op.END:
            if imm not in (16, 32, 64):
                return f"invalid endianness width {imm} (want 16, 32 or 64)"
            return None if src == 0 and off == 0 else "BPF_END uses reserved fields"
        if opc == op.NEG:
            return None if src == 0 and off == 0 and imm == 0 else "BPF_NEG uses reserved fields"
        if opc in (op.DIV, op.MOD):
            if off not in (0, 1):
                return f"invalid off {off} for div/mod (0 or 1 for signed)"
        elif opc == op.MOV and code & op.X:
            allowed = (0, 8, 16, 32) if cls == op.ALU64 else (0, 8, 16)
            if off not in allowed and not (cls == op.ALU64 and off == op.ADDR_SPACE_CAST):
                return f"invalid sign extension off {off} for mov"
        elif off != 0:
            return "BPF_ALU uses reserved fields"
        if code & op.X:
            if src > op.MAX_REG:
                return f"invalid register r{src}"
            if imm != 0 and not (opc == op.MOV and off == op.ADDR_SPACE_CAST):
                return "BPF_ALU uses reserved fields"
        elif src != 0:
            return "BPF_ALU uses reserved fields"
        return None
    if cls in (op.JMP, op.JMP32):
        if opc == op.CALL:
            if src not in (0, op.PSEUDO_CALL, op.PSEUDO_KFUNC_CALL) or dst:
                return "BPF_CALL uses reserved fields"
            if src != op.PSEUDO_KFUNC_CALL and off:
                return "BPF_CALL uses reserved fields"
            return None
        if code == op.EXIT_OP:
            return None if not (src or dst or off or imm) else "BPF_EXIT uses reserved fields"
        if code == op.JA_OP:
            return None if not (src or dst or imm) else "BPF_JA uses reserved fields"
        if code == op.JMP32 | op.JA:
            return None if not (src or dst or off) else "BPF_JA uses reserved fields"
        if code == op.JCOND_OP:
            return None if src == op.MAY_GOTO and not (dst or imm) else "invalid may_goto"
        if code & op.X:
            return None if imm == 0 and src <= op.MAX_REG else "BPF_JMP/JMP32 uses reserved fields"
        return None if src == 0 else "BPF_JMP/JMP32 uses reserved fields"
    mode, size = code & 0xE0, code & 0x18
    if cls == op.LD:
        if code == op.LD_IMM64:
            if src > op.PSEUDO_MAP_IDX_VALUE:
                return f"invalid ld_imm64 source {src}"
            if off or dst > op.MAX_REG:
                return "invalid bpf_ld_imm64 insn"
            if src in (op.PSEUDO_MAP_FD, op.PSEUDO_MAP_IDX, op.PSEUDO_FUNC) and imm >> 32:
                return "unrecognized bpf_ld_imm64 insn"  # the second slot's imm must be 0
            return None
        if mode == op.ABS and (src or dst or off):
            return "BPF_LD_[ABS|IND] uses reserved fields"
        if mode == op.IND and (dst or off or src > op.MAX_REG):
            return "BPF_LD_[ABS|IND] uses reserved fields"
        return None
    if src > op.MAX_REG:
        return f"invalid register r{src}"
    if cls == op.LDX:
        return None if imm == 0 else "BPF_LDX uses reserved fields"
    if cls == op.ST:
        return None if src == 0 else "BPF_ST uses reserved fields"
    if mode == op.MEM:
        return None if imm == 0 else "BPF_STX uses reserved fields"
    if imm in (op.LOAD_ACQ, op.STORE_REL):
        return None
    if imm not in _ATOMIC_RMW:
        return f"BPF_ATOMIC uses invalid atomic opcode {imm & 0xFFFFFFFF:02x}"
    if size not in (op.W, op.DW):
        return "invalid atomic operand size"
    return None


def validate_program(program: "bytes | bytearray | memoryview | Sequence[Instruction]") -> list[Instruction]:
    """Decode (if bytes) and validate; raise AssemblerError naming the byte offset."""
    insns = _as_insns(program)
    pos = 0
    for i, insn in enumerate(insns):
        reason = validate(insn)
        if reason:
            raise AssemblerError(f"{reason} at byte offset {pos * 8} (slot {pos})", index=i,
                                 source=insn.source)
        pos += insn.slots
    return insns


_LOG_LINE = re.compile(r"^\s*(\d+): \(([0-9a-f]{2})\) ([^;\n]*?)\s*(?:;.*)?$", re.M)


def parse_verifier_log(log: str) -> list[tuple[int, int, str]]:
    """``(slot, opcode, text)`` for every instruction line ``N: (xx) text`` of a verifier log.

    State annotations after ``;`` are dropped. Instructions the verifier
    walked more than once appear more than once, in log order.
    """
    return [(int(n), int(code, 16), text) for n, code, text in _LOG_LINE.findall(log)]
