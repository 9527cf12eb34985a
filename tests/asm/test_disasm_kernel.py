"""The disassembler against the running kernel: load programs with log_level 2 and
compare every ``N: (xx) text`` line of the verifier log with our text.

The programs (asm_programs.py) are built from raw instruction fields, so this
tests the disassembler alone; the text assembler is then checked to read the
kernel's own lines back to the same bytes.
"""

import os
import re

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.disasm import disassemble_insn, parse_verifier_log
from pybpf.asm.instruction import encode, slot_offsets
from pybpf.asm.text import assemble, from_verifier_log

import asm_kernel
import asm_programs as progs

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not asm_kernel.can_bpf(), reason="needs root and bpf(2)"),
]

# ld_imm64 of a map: the kernel logs the map's kernel address (0x0 without
# CAP_PERFMON), a run-time value; we print map[fd:N] / map[fd:N][0]+off.
_KERNEL_ADDRESS = re.compile(r"^r\d+ = 0x[0-9a-f]+$")


def _load_and_compare(prog, prog_type=asm_kernel.PROG_TYPE_SOCKET_FILTER):
    code = encode(prog)
    fd, err, log = asm_kernel.prog_load(code, prog_type)
    assert fd >= 0, f"kernel rejected the program (errno {err}):\n{log[-4000:]}"
    os.close(fd)
    by_slot = dict(zip(slot_offsets(prog), prog))
    lines = parse_verifier_log(log)
    mismatches = []
    for slot, opcode, kernel_text in lines:
        insn = by_slot[slot]
        assert opcode == insn.opcode
        ours = disassemble_insn(insn)
        if insn.opcode == op.LD_IMM64 and insn.src in (op.PSEUDO_MAP_FD, op.PSEUDO_MAP_VALUE):
            assert _KERNEL_ADDRESS.match(kernel_text), kernel_text
            continue
        if ours != kernel_text:
            mismatches.append(f"{slot}: kernel {kernel_text!r}, ours {ours!r}")
    assert not mismatches, "\n".join(mismatches)
    unseen = sorted(set(by_slot) - {slot for slot, _, _ in lines})
    assert not unseen, f"instructions the verifier never logged: {unseen}"
    return code, log


@pytest.mark.parametrize("seed", [1, 7])
def test_alu(seed):
    _load_and_compare(progs.alu_program(seed))


@pytest.mark.parametrize("seed", [2, 8])
def test_jumps_and_calls(seed):
    _load_and_compare(progs.jump_program(seed))


@pytest.mark.parametrize("seed", [3, 9])
def test_memory_atomics_and_packet_loads(seed):
    _load_and_compare(progs.memory_program(seed))


def test_map_references():
    map_fd = asm_kernel.create_array_map()
    assert map_fd >= 0
    try:
        _load_and_compare(progs.map_program(map_fd))
    finally:
        os.close(map_fd)


def test_bpf_to_bpf_calls():
    _load_and_compare(progs.subprog_program())


def test_may_goto():
    _load_and_compare(progs.may_goto_program())


@pytest.mark.parametrize("build", [progs.alu_program, progs.jump_program, progs.memory_program,
                                   progs.subprog_program, progs.may_goto_program])
def test_kernel_log_reassembles_to_same_bytes(build):
    """A whole verifier log, pasted into the assembler, gives back the program."""
    prog = build()
    code, log = _load_and_compare(prog)
    assert encode(from_verifier_log(log)) == code
    # and each line pasted on its own, with its state annotation
    lines = [line for line in log.splitlines() if re.match(r"^\d+: \([0-9a-f]{2}\) ", line)]
    assert lines
    for line in lines[:50]:
        slot = int(line.split(":")[0])
        [insn] = assemble(line)
        assert insn == dict(zip(slot_offsets(prog), prog))[slot], line
