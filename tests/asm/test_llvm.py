"""Cross-check with LLVM's assembler: the same program, written in the kernel's
syntax (ours) and in LLVM's (a surface translation of ours), gives the same
bytes. LLVM 14 knows ISA up to v3, and its assembler does not parse BPF_ST
immediates or the fetch/xchg/cmpxchg atomics, so those stay out of this check
(they are checked against the kernel instead, in test_disasm_kernel.py).
"""

import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pybpf.asm import opcodes as op
from pybpf.asm.disasm import disassemble_insn
from pybpf.asm.helpers import HELPER_NAMES
from pybpf.asm.instruction import Instruction, encode
from pybpf.asm.text import assemble

import asm_strategies as s

LLVM_MC = shutil.which("llvm-mc") or shutil.which("llvm-mc-14")
OBJCOPY = shutil.which("llvm-objcopy") or shutil.which("llvm-objcopy-14")
pytestmark = pytest.mark.skipif(not (LLVM_MC and OBJCOPY), reason="llvm-mc / llvm-objcopy not installed")

_V4_ALU = (op.DIV, op.MOD, op.MOV)


def _llvm_v3(insn: Instruction) -> bool:
    """Instructions that LLVM 14's assembler can express."""
    code, cls = insn.opcode, insn.opcode & 7
    if cls in (op.ALU, op.ALU64):
        if code == op.ALU64 | op.END:
            return False  # bswap: v4
        return insn.off == 0  # sdiv/smod/movsx/addr_space_cast: v4
    if cls in (op.JMP, op.JMP32):
        if code in (op.JMP32 | op.JA, op.JCOND_OP):
            return False  # gotol, may_goto: v4
        if code == op.CALL_OP:
            return insn.src == 0 and insn.imm in HELPER_NAMES
        return True
    if cls == op.LD:
        if code == op.LD_IMM64:
            return insn.src == 0
        return code & 0xE0 == op.ABS or insn.imm == 0  # LLVM: skb[rN] only
    if cls == op.LDX:
        return code & 0xE0 == op.MEM
    if cls == op.ST:
        return False
    if code & 0xE0 == op.ATOMIC:
        return insn.imm in (op.ATOMIC_ADD, op.ATOMIC_OR, op.ATOMIC_AND, op.ATOMIC_XOR)
    return True


def to_llvm(text: str) -> str:
    """Kernel syntax -> LLVM syntax (surface only: spacing, offsets, ids, hex immediates)."""
    text = re.sub(r"\((r\d+) ([-+])(\d+)\)", r"(\1 \2 \3)", text)
    text = re.sub(r"goto pc([-+]\d+)$", r"goto \1", text)
    text = re.sub(r"^call bpf_\w+#(\d+)$", r"call \1", text)
    m = re.match(r"^(if [rw]\d+ \S+ )(0x[0-9a-f]+)( goto .*)$", text)
    if m:
        value = int(m.group(2), 16)
        text = f"{m.group(1)}{value - (1 << 32) if value & 0x80000000 else value}{m.group(3)}"
    text = re.sub(r"^(r\d+ = 0x[0-9a-f]+)$", r"\1 ll", text)
    text = re.sub(r"skb\[(r\d+) \+ 0\]", r"skb[\1]", text)
    return text


def llvm_assemble(source: str, tmp_path) -> bytes:
    src = tmp_path / "prog.s"
    obj = tmp_path / "prog.o"
    out = tmp_path / "prog.bin"
    src.write_text(source)
    subprocess.run([LLVM_MC, "-triple", "bpfel", "-mattr=+alu32", "-filetype=obj", "-o", str(obj), str(src)],
                   check=True, capture_output=True, text=True)
    subprocess.run([OBJCOPY, "-O", "binary", "--only-section=.text", str(obj), str(out)], check=True)
    return out.read_bytes()


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.large_base_example, HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(s.instructions().filter(_llvm_v3), min_size=100, max_size=200))
def test_same_bytes_as_llvm_mc(tmp_path_factory, prog):
    tmp_path = tmp_path_factory.mktemp("llvm")
    ours = encode(prog)
    kernel_text = [disassemble_insn(insn) for insn in prog]
    assert encode(assemble("\n".join(kernel_text))) == ours
    theirs = llvm_assemble("\n".join(to_llvm(t) for t in kernel_text) + "\n", tmp_path)
    if theirs != ours:
        pos = 0
        for insn, text in zip(prog, kernel_text):
            size = insn.slots * 8
            assert theirs[pos:pos + size] == ours[pos:pos + size], \
                f"{text!r} (LLVM: {to_llvm(text)!r}): ours {ours[pos:pos + size].hex()} " \
                f"llvm {theirs[pos:pos + size].hex()}"
            pos += size
    assert theirs == ours


def test_kernel_syntax_llvm_reads_unchanged(tmp_path):
    """Lines where the two syntaxes agree: llvm-mc reads our text as it is."""
    text = "\n".join([
        "r0 = 1", "w1 += w2", "r1 = -r1", "w3 = -w3", "r0 = be16 r0", "r5 = le64 r5",
        "r1 s>>= 3", "w4 s>>= w3", "r0 = *(u8 *)skb[2]", "exit",
    ]) + "\n"
    assert llvm_assemble(text, tmp_path) == encode(assemble(text))
