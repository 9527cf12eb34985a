"""The text assembler: syntax, labels, comments, pasted verifier lines, maps, errors."""

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.disasm import disassemble, validate
from pybpf.asm.errors import AssemblerError
from pybpf.asm.helpers import HELPER_IDS, HELPER_NAMES, helper_id
from pybpf.asm.instruction import Instruction as I, encode
from pybpf.asm.text import assemble, from_verifier_log, parse

# (kernel text, the instruction it is) — the examples of the issue, and the rarer forms
CASES = [
    ("r0 = 1", I(0xB7, 0, 0, 0, 1)),
    ("w1 += w2", I(0x0C, 1, 2)),
    ("r1 = *(u32 *)(r2 +8)", I(0x61, 1, 2, 8)),
    ("*(u64 *)(r10 -8) = r1", I(0x7B, 10, 1, -8)),
    ("*(u8 *)(r1 +3) = -7", I(0x72, 1, 0, 3, -7)),
    ("if r1 s> 0x10 goto pc+3", I(0x65, 1, 0, 3, 16)),
    ("if w1 == 0xffffffff goto pc-1", I(0x16, 1, 0, -1, -1)),
    ("if r3 & r4 goto pc+0", I(0x4D, 3, 4, 0)),
    ("call bpf_map_lookup_elem#1", I(0x85, 0, 0, 0, 1)),
    ("call map_lookup_elem", I(0x85, 0, 0, 0, 1)),
    ("call bpf_ktime_get_ns", I(0x85, 0, 0, 0, 5)),
    ("call 7", I(0x85, 0, 0, 0, 7)),
    ("call pc+4", I(0x85, 0, 1, 0, 4)),
    ("call kernel-function#12345", I(0x85, 0, 2, 0, 12345)),
    ("call bpf_rcu_read_lock#54321", I(0x85, 0, 2, 0, 54321)),  # a kfunc as the verifier names it
    ("lock *(u64 *)(r0 +0) += r1", I(0xDB, 0, 1, 0, op.ATOMIC_ADD)),
    ("lock *(u32 *)(r0 -4) ^= r1", I(0xC3, 0, 1, -4, op.ATOMIC_XOR)),
    ("r1 = atomic64_fetch_and((u64 *)(r2 +8), r1)", I(0xDB, 2, 1, 8, op.ATOMIC_AND | op.FETCH)),
    ("r3 = atomic_xchg((u32 *)(r2 +0), r3)", I(0xC3, 2, 3, 0, op.XCHG)),
    ("r0 = atomic64_cmpxchg((u64 *)(r2 +0), r0, r5)", I(0xDB, 2, 5, 0, op.CMPXCHG)),
    ("r1 = load_acquire((u16 *)(r2 +2))", I(0xCB, 1, 2, 2, op.LOAD_ACQ)),
    ("store_release((u8 *)(r2 -1), r3)", I(0xD3, 2, 3, -1, op.STORE_REL)),
    ("r1 = 0x1234", I(op.LD_IMM64, 1, 0, 0, 0x1234)),
    ("r1 = 5 ll", I(op.LD_IMM64, 1, 0, 0, 5)),
    ("r1 = -1 ll", I(op.LD_IMM64, 1, 0, 0, (1 << 64) - 1)),
    ("r1 = map[fd:7]", I(op.LD_IMM64, 1, 1, 0, 7)),
    ("r1 = map[fd:7][0]+16", I(op.LD_IMM64, 1, 2, 0, 7 | 16 << 32)),
    ("r1 = map[idx:2]", I(op.LD_IMM64, 1, 5, 0, 2)),
    ("r1 = map[idx:2][0]+4", I(op.LD_IMM64, 1, 6, 0, 2 | 4 << 32)),
    ("r1 = btf_id[99]", I(op.LD_IMM64, 1, 3, 0, 99)),
    ("r2 = func[pc+3]", I(op.LD_IMM64, 2, 4, 0, 3)),
    ("goto pc-3", I(0x05, 0, 0, -3)),
    ("gotol pc+100000", I(0x06, 0, 0, 0, 100000)),
    ("may_goto pc+2", I(0xE5, 0, 0, 2)),
    ("r1 = (s8)r2", I(0xBF, 1, 2, 8)),
    ("w1 = (s16)w2", I(0xBC, 1, 2, 16)),
    ("r1 s/= -3", I(0x37, 1, 0, 1, -3)),
    ("w1 s%= w2", I(0x9C, 1, 2, 1)),
    ("r0 = be16 r0", I(0xDC, 0, 0, 0, 16)),
    ("r0 = le64 r0", I(0xD4, 0, 0, 0, 64)),
    ("r4 = bswap32 r4", I(0xD7, 4, 0, 0, 32)),
    ("w3 = -w3", I(0x84, 3)),
    ("r1 = *(s32 *)(r2 +0)", I(0x81, 1, 2, 0)),
    ("r0 = *(u8 *)skb[2]", I(0x30, 0, 0, 0, 2)),
    ("r0 = *(u16 *)skb[r3 + -4]", I(0x48, 0, 3, 0, -4)),
    ("r1 = addr_space_cast(r2, 0, 1)", I(0xBF, 1, 2, 1, 1)),
    ("exit", I(0x95)),
]


@pytest.mark.parametrize("text,insn", CASES, ids=[c[0] for c in CASES])
def test_syntax(text, insn):
    assert assemble(text) == [insn]
    assert validate(insn) is None


@pytest.mark.parametrize("text,insn", [c for c in CASES if c[0] not in (
    "call map_lookup_elem", "call bpf_ktime_get_ns", "call 7", "r1 = 5 ll", "r1 = -1 ll",
    "call bpf_rcu_read_lock#54321")])
def test_disassembler_prints_the_same_text(text, insn):
    assert disassemble([insn]) == text + "\n"


def test_llvm_surface_forms():
    assert assemble("r1 = *(u32 *)(r2 + 8)\n*(u64 *)(r10 - 0x8) = r1\nif r1 > 3 goto +1\nr1 = 0x10 ll") == [
        I(0x61, 1, 2, 8), I(0x7B, 10, 1, -8), I(0x25, 1, 0, 1, 3), I(op.LD_IMM64, 1, 0, 0, 16)]


def test_decimal_is_mov_hex_is_ld_imm64():
    """As the kernel prints them: mov imm in decimal, ld_imm64 in hex."""
    assert assemble("r1 = 16")[0].opcode == 0xB7
    assert assemble("r1 = 0x10")[0].opcode == op.LD_IMM64
    assert assemble("w1 = 0x10")[0] == I(0xB4, 1, 0, 0, 16)


def test_labels_comments_and_blank_lines():
    text = """
    # count to three
    start:  r1 = 0          ; a label before an instruction
    loop:
            r1 += 1         // C++ comment
            if r1 < 3 goto loop
            call sub
            gotol done
            r2 = func[sub]
    done:   exit
    sub:    r0 = 0
            exit
    """
    asm = parse(text)
    assert asm.labels == {"start": 0, "loop": 1, "done": 6, "sub": 7}
    insns = assemble(text)
    assert insns[2] == I(0xA5, 1, 0, -2, 3)
    assert insns[3] == I(0x85, 0, 1, 0, 4)  # call pc+4 -> slot 8 (ld_imm64 is two slots)
    assert insns[4] == I(0x06, 0, 0, 0, 2)
    assert insns[5] == I(op.LD_IMM64, 2, 4, 0, 2)
    assert encode(insns) == asm.encode()


def test_backward_function_reference():
    insns = assemble("f: r0 = 0\nexit\nr1 = func[f]\ncall f\nexit")
    assert insns[2].imm == (-3) & 0xFFFFFFFF  # low half of the 64-bit imm only
    assert insns[3] == I(0x85, 0, 1, 0, -5)


def test_pasted_verifier_lines_with_state():
    log = """\
0: R1=ctx() R10=fp0
0: (b7) r0 = 0                        ; R0_w=0
1: (bf) r2 = r10                      ; R2_w=fp0 R10=fp0
2: (07) r2 += -4                      ; R2_w=fp-4
; return 0; @ prog.c:12
3: (95) exit
"""
    lines = [line for line in log.splitlines() if ": (" in line or line.startswith(";")]
    assert assemble("\n".join(lines)) == [I(0xB7), I(0xBF, 2, 10), I(0x07, 2, 0, 0, -4), I(0x95)]
    assert from_verifier_log(log) == [I(0xB7), I(0xBF, 2, 10), I(0x07, 2, 0, 0, -4), I(0x95)]
    # the liveness table the kernel prints before the walk
    assert assemble("      2: .1........ (07) r2 += -4") == [I(0x07, 2, 0, 0, -4)]


def test_verifier_log_with_missing_instructions():
    with pytest.raises(AssemblerError, match=r"slots 1\.\.1 are not in the log"):
        from_verifier_log("0: (b7) r0 = 0\n2: (95) exit\n")


def test_map_by_name():
    asm = parse("r1 = map[events]\nr2 = map[counts][0]+8 ll\nr3 = map[events]")
    assert asm.maps == ["events", "counts"]
    a, b, c = asm.insns
    assert (a.src, a.imm, a.map) == (op.PSEUDO_MAP_FD, 0, "events")
    assert (b.src, b.imm, b.map) == (op.PSEUDO_MAP_VALUE, 8 << 32, "counts")
    assert disassemble(asm.insns) == "r1 = map[events]\nr2 = map[counts][0]+8\nr3 = map[events]\n"


@pytest.mark.parametrize("text,message", [
    ("r1 == 2", "unknown instruction syntax in 'r1 == 2'"),
    ("r11 = 1", "invalid register r11"),
    ("r1 = 1\n  frob r2", r"unknown instruction syntax in 'frob r2' \(insn 1, at <text>:2\)"),
    ("goto nowhere", "unresolved label 'nowhere'"),
    ("a: exit\na: exit", "duplicate label 'a'"),
    ("call no_such_helper", "unknown helper or label 'no_such_helper'"),
    ("r1 += w2", "mixed 32-bit"),
    ("r1 = 0x1ffffffffffffffff", "out of range"),
    ("r1 += 0x100000000", "out of range"),
    ("*(u32 *)(r1 +40000) = r2", "offset 40000 out of 16-bit range"),
    ("goto pc+40000", "out of 16-bit range"),
    ("5: (b7) r0 = *(u8 *)skb[1]", r"opcode \(b7\) in the log prefix does not match"),
    ("r1 = atomic_xchg((u32 *)(r2 +0), r3)", "returns the old value in its source register r3"),
    ("r2 = *(u8 *)skb[1]", "always load into r0"),
    ("r1 = map[fd:x]", "cannot parse map reference"),
])
def test_errors_name_line_and_text(text, message):
    with pytest.raises(AssemblerError, match=message):
        assemble(text)


def test_error_source_is_the_line():
    with pytest.raises(AssemblerError) as info:
        assemble("r0 = 0\n\n; comment\nr0 = ?\nexit", name="prog.s")
    assert info.value.source == "prog.s:4"
    assert info.value.index == 1


def test_far_label_needs_gotol():
    text = "goto far\n" + "r0 = 0\n" * 40000 + "far: exit"
    with pytest.raises(AssemblerError, match="out of 16-bit range"):
        assemble(text)
    assert assemble(text.replace("goto far", "gotol far"))[0].imm == 40000


def test_helpers_table():
    assert len(HELPER_IDS) == 212 and HELPER_NAMES[0] == "unspec"
    assert HELPER_IDS["map_lookup_elem"] == 1 and HELPER_IDS["ringbuf_output"] == 130
    assert HELPER_IDS["user_ringbuf_drain"] == 209 and HELPER_IDS["cgrp_storage_delete"] == 211
    assert helper_id("bpf_map_lookup_elem") == helper_id("map_lookup_elem") == helper_id(1) == 1
    with pytest.raises(AssemblerError, match="unknown helper 'bpf_nope'"):
        helper_id("bpf_nope")
