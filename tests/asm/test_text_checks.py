"""The text assembler's checks: labels that look like ``pc``, jump ranges, helper names and ids,
encodings the kernel refuses, and errors that name the bad token, its line and its column."""

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.disasm import disassemble, validate
from pybpf.asm.errors import AssemblerError
from pybpf.asm.instruction import Instruction as I, decode
from pybpf.asm.text import assemble, assemble_bytes, parse


# ------------------------------------------------------------ labels starting with "pc"
def test_a_label_named_like_pc_is_a_label():
    code = assemble_bytes("goto pc5\nr0 = 1\npc5:\nr0 = 0\nexit\n")
    assert decode(code)[0] == I(op.JA_OP, 0, 0, 1)  # to the label, not pc+5
    assert disassemble(code).splitlines()[0] == "goto pc+1"


@pytest.mark.parametrize("text,first", [
    ("goto pcap\nexit\npcap: exit", I(op.JA_OP, 0, 0, 1)),
    ("if r1 > 2 goto pc\nexit\npc: exit", I(0x25, 1, 0, 1, 2)),
    ("r1 = func[pcb]\nexit\npcb: exit", I(op.LD_IMM64, 1, op.PSEUDO_FUNC, 0, 2)),
    ("call pc1\nexit\npc1: exit", I(op.CALL_OP, 0, op.PSEUDO_CALL, 0, 1)),
    ("gotol pc_far\nexit\npc_far: exit", I(op.JMP32 | op.JA, 0, 0, 0, 1)),
])
def test_labels_starting_with_pc(text, first):
    assert assemble(text)[0] == first


@pytest.mark.parametrize("text,first", [
    ("goto pc+1\nexit\nexit", I(op.JA_OP, 0, 0, 1)),
    ("goto +1\nexit\nexit", I(op.JA_OP, 0, 0, 1)),
    ("call pc-1", I(op.CALL_OP, 0, op.PSEUDO_CALL, 0, -1)),
    ("r1 = func[pc+1]\nexit", I(op.LD_IMM64, 1, op.PSEUDO_FUNC, 0, 1)),
])
def test_pc_plus_n_stays_numeric(text, first):
    assert assemble(text)[0] == first


def test_an_undefined_pc_label_is_an_unresolved_label():
    for text in ("goto pcx", "r1 = func[pcb]", "if r1 == 0 goto pc7"):
        with pytest.raises(AssemblerError, match="unresolved label 'pc"):
            assemble(text)
    with pytest.raises(AssemblerError, match="unknown helper or label 'pc1'"):
        assemble("call pc1")


# ---------------------------------------------------------------- numeric jump targets
@pytest.mark.parametrize("text,message,line", [
    ("goto +100\nexit", "jump out of range from insn 0 to 101", 1),
    ("r0 = 0\nif r0 == 0 goto pc-3\nexit", "jump out of range from insn 1 to -1", 2),
    ("r0 = 0\ngoto pc+1\nexit", "jump out of range from insn 1 to 3", 2),  # the end is out, as in the kernel
    ("call pc+5\nexit", "jump out of range from insn 0 to 6", 1),
    ("may_goto pc+7\nexit", "jump out of range", 1),
    ("gotol pc+70000\nexit", "jump out of range", 1),
    ("goto +1\nr1 = 0x1\nexit", "into the middle of ld_imm64 at 1", 1),
    ("r0 = 0\nr1 = 0x1\nexit\nif r0 > 0 goto pc-3", "into the middle of ld_imm64 at 1", 4),
    ("r0 = 0\ngoto end\nexit\nend:", "jump out of range from insn 1 to 3", 2),  # a label at the end
])
def test_jumps_out_of_the_program_are_rejected_with_their_line(text, message, line):
    with pytest.raises(AssemblerError, match=message) as info:
        assemble_bytes(text, name="p.s")
    assert info.value.source == f"p.s:{line}"


def test_fragments_keep_their_offsets():
    """assemble() and resolved() leave jump targets to whoever joins the pieces (the verifier-log
    reader assembles one line at a time); only bytecode is checked."""
    assert assemble("goto +100") == [I(op.JA_OP, 0, 0, 100)]
    assert parse("goto +100\nexit").resolved()[0].off == 100


# ------------------------------------------------------------------ helper name and id
@pytest.mark.parametrize("text,message", [
    ("call bpf_map_lookup_elem#2", r"helper bpf_map_lookup_elem is #1, not #2: name and id disagree"),
    ("call map_lookup_elem#2", r"helper bpf_map_lookup_elem is #1, not #2"),
    ("call bpf_ktime_get_ns#1", r"helper bpf_ktime_get_ns is #5, not #1"),
    ("call bpf_map_lookup_elem#1 off:3", "helper calls take no off:"),
])
def test_helper_name_and_id_must_agree(text, message):
    with pytest.raises(AssemblerError, match=message):
        assemble(text)


def test_kfuncs_and_unknown_helpers_still_assemble():
    assert assemble("call bpf_rcu_read_lock#54321") == [I(op.CALL_OP, 0, op.PSEUDO_KFUNC_CALL, 0, 54321)]
    assert assemble("call unknown#300") == [I(op.CALL_OP, 0, 0, 0, 300)]
    assert assemble("call bpf_map_lookup_elem#1") == [I(op.CALL_OP, 0, 0, 0, 1)]


# --------------------------------------------------- encodings the kernel does not accept
@pytest.mark.parametrize("text,message", [
    ("lock *(u8 *)(r1 +0) += r2", "invalid size 'u8' for atomic: use u32, u64"),
    ("lock *(u16 *)(r1 +0) |= r2", "invalid size 'u16' for atomic"),
    ("w1 = (s32)w2", r"\(s32\) sign extension needs r registers"),
    ("r1 = (s8)w2", "mixed 32-bit"),
    ("r0 = *(u64 *)skb[4]", "invalid size 'u64' for legacy packet load"),
])
def test_invalid_encodings_are_rejected_with_the_line(text, message):
    with pytest.raises(AssemblerError, match=message) as info:
        assemble_bytes("r0 = 0\n" + text + "\nexit")
    assert info.value.source == "<text>:2" and info.value.index == 1


def test_every_line_is_validated():
    """What the parser builds and validate() refuses is an error, with validate's reason."""
    for text in ("r0 = 0", "lock *(u32 *)(r1 +0) += r2", "w1 = (s16)w2", "r1 = (s32)r2",
                 "store_release((u8 *)(r1 +0), r2)", "r1 = load_acquire((u16 *)(r2 +0))"):
        assert all(validate(i) is None for i in assemble(text)), text
    # the kernel-internal percpu mov reads back (for xlated dumps); validate() says why it cannot load
    insn, = assemble("r1 = &(void __percpu *)(r2)")
    assert validate(insn) is not None


# ------------------------------------------------- errors name the token and its column
@pytest.mark.parametrize("text,message,column", [
    ("*(u24 *)(r10 -4) = r1", "invalid size 'u24' for store: use u8, u16, u32, u64", 3),
    ("r1 = *(u24 *)(r1 +0)", "invalid size 'u24' for memory load", 8),
    ("*(u32 *)(r10 4) = r1", r"invalid address '\(r10 4\)' in store: expected \(rX \+off\)", 9),
    ("*(u32 *)(r10 -4) = foo", "invalid value 'foo' stored", 20),
    ("store_release((u9 *)(r1 +0), r2)", "invalid size 'u9' for store_release", 16),
    ("goto", "goto needs a target: pc\\+N, pc-N, \\+N, -N or a label", None),
    ("goto 5x", "invalid jump target '5x'", 6),
    ("gotox 1", "unknown instruction 'gotox'", 1),
    ("if r1 > 3", "conditional jump needs 'goto TARGET'", None),
    ("if r1 > 3 goto", "goto needs a target", None),
    ("if r1 > 3 goto 5x", "invalid jump target '5x'", 16),
    ("if r1 =~ 3 goto +0", "cannot parse condition 'r1 =~ 3'", 4),
    ("if x1 > 3 goto +0", "expected a register before the comparison, not 'x1'", 4),
    ("if r1 > foo goto +0", "expected a register or an immediate after the comparison, not 'foo'", 9),
    ("if r1 > w2 goto +0", "mixed 32-bit", 9),
    ("call", "call needs a target", None),
    ("call foo bar", "invalid call target 'foo bar'", 6),
    ("call pc+99999999999", r"jump offset \+99999999999 out of range", 8),
    ("gotol pc+99999999999", r"jump offset \+99999999999 out of range", 9),
    ("if r1 > 3 goto pc+40000", "jump offset 40000 out of 16-bit range", 16),
    ("r1 += foo", "expected a register or an immediate after '\\+=', not 'foo'", 7),
    ("r12 = 1", "invalid register r12", 2),
    ("  r1 = *(u8 *)(r1 + 99999)", "offset 99999 out of 16-bit range", 21),
    ("call bpf_map_lookup_elem#2", "name and id disagree", 25),
])
def test_errors_name_the_token_line_and_column(text, message, column):
    with pytest.raises(AssemblerError, match=message) as info:
        assemble_bytes("exit\n" + text, name="p.s")
    err = info.value
    assert err.source == "p.s:2" and err.column == column
    assert (f"at p.s:2:{column})" if column else "at p.s:2)") in str(err)
    assert "format requires" not in str(err) and "Instruction(" not in str(err)
