"""ProgramSpec and verifier-log parsing: pure Python, no kernel."""

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction
from pybpf.program import AttachType, ProgramSpec, ProgType, prog_type
from pybpf.program.log import failing_insn, reason_line, summarize
from pybpf.program.privileges import required_capabilities


def test_prog_type_names():
    assert prog_type("xdp") is ProgType.XDP
    assert prog_type("BPF_PROG_TYPE_SCHED_CLS") is ProgType.SCHED_CLS
    assert prog_type(17) is ProgType.RAW_TRACEPOINT
    with pytest.raises(ValueError, match="unknown ProgType 'xpd'"):
        prog_type("xpd")


def test_spec_normalises_and_validates():
    spec = ProgramSpec([Instruction(op.EXIT_OP)], "xdp", expected_attach_type="BPF_XDP", name="a.b_1")
    assert spec.prog_type is ProgType.XDP and spec.expected_attach_type is AttachType.XDP
    with pytest.raises(ValueError, match="invalid program name 'has space'"):
        ProgramSpec([], "xdp", name="has space")
    with pytest.raises(ValueError, match="at most 15"):
        ProgramSpec([], "xdp", name="x" * 16)
    with pytest.raises(ValueError, match="not a multiple of 8"):
        ProgramSpec(b"\x95" * 12, "xdp")
    with pytest.raises(TypeError, match="insns must be"):
        ProgramSpec(42, "xdp")


def test_source_line_counts_slots():
    insns = [Instruction(op.LD_IMM64, 1, 0, 0, 1 << 40, source="a.py:1"),
             Instruction(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0, source="a.py:2"),
             Instruction(op.EXIT_OP, source="a.py:3")]
    spec = ProgramSpec(insns, "xdp")
    assert spec.source_line(0) == "a.py:1"
    assert spec.source_line(1) is None  # second slot of ld_imm64
    assert spec.source_line(2) == "a.py:2" and spec.source_line(3) == "a.py:3"
    assert len(spec.encode()) == 32


LOG_6_18 = """func#0 @0
0: R1=ctx() R10=fp0
0: (b7) r0 = 0                        ; R0_w=0
1: (61) r2 = *(u32 *)(r1 +9999)
invalid bpf_context access off=9999 size=4
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
verification time 23 usec
stack depth 0
-- END PROG LOAD LOG --
"""


def test_reason_skips_summary_blocks():
    assert reason_line(LOG_6_18) == "invalid bpf_context access off=9999 size=4"
    s = summarize(LOG_6_18)
    assert s.insn == 1 and s.processed_insns == 2 and s.total_states == 0


def test_failing_insn_from_cfg_message():
    log = "jump out of range from insn 1 to 9\nprocessed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n"
    assert reason_line(log) == "jump out of range from insn 1 to 9"
    assert failing_insn(log) == 1
    assert failing_insn("") is None and reason_line("") is None


def test_required_capabilities():
    assert required_capabilities(ProgType.XDP) == ("CAP_BPF", "CAP_NET_ADMIN")
    assert required_capabilities(ProgType.KPROBE) == ("CAP_BPF", "CAP_PERFMON")
    assert required_capabilities(ProgType.SOCKET_FILTER) == ("CAP_BPF",)
