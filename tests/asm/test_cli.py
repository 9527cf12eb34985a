"""``pybpf asm`` and ``pybpf disasm`` end to end, through the real dispatcher."""

import subprocess
import sys

import pytest

from pybpf.asm.instruction import encode
from pybpf.asm.text import assemble
from pybpf.cli import main

PROG = """\
; count to three
start:  r1 = 0
loop:   r1 += 1
        if r1 < 3 goto loop
        call ktime_get_ns
        r2 = 0x1122334455667788
        r0 = 0
        exit
"""


@pytest.fixture
def prog_file(tmp_path):
    path = tmp_path / "prog.s"
    path.write_text(PROG)
    return path


def test_asm_bin_then_disasm(prog_file, tmp_path, capsys):
    out = tmp_path / "prog.bin"
    assert main(["asm", str(prog_file), "-o", str(out)]) == 0
    assert out.read_bytes() == encode(assemble(PROG))
    assert main(["disasm", str(out)]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[2] == "2: (a5) if r1 < 0x3 goto pc-2"
    assert listing.splitlines()[4] == "4: (18) r2 = 0x1122334455667788"
    assert encode(assemble(listing)) == out.read_bytes()


def test_asm_hex_and_c(prog_file, capsys):
    assert main(["asm", str(prog_file), "--format", "hex"]) == 0
    hex_text = capsys.readouterr().out
    assert hex_text.splitlines()[0] == "b7 01 00 00 00 00 00 00"
    assert main(["asm", str(prog_file), "--format", "c"]) == 0
    c_text = capsys.readouterr().out
    assert "{ .code = 0xa5, .dst_reg = 1, .src_reg = 0, .off = -2, .imm = 3 },  /* if r1 < 0x3 goto pc-2 */" in c_text


def test_disasm_hex_from_stdin():
    code = encode(assemble(PROG))
    for text in (code.hex(), " ".join(f"0x{b:02x}," for b in code), "".join(f"\\x{b:02x}" for b in code)):
        r = subprocess.run([sys.executable, "-m", "pybpf", "disasm", "--plain", "-"], input=text.encode(),
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        assert encode(assemble(r.stdout.decode())) == code


@pytest.mark.parametrize("data,message", [
    (bytes.fromhex("b701000000000000b70100"), "truncated instruction at byte offset 8"),
    (bytes.fromhex("b701000000000000ff00000000000000"), "unknown opcode 0xff (class alu64) at byte offset 8"),
    (bytes.fromhex("18010000000000000000000000000000b7"), "truncated instruction at byte offset 16"),
    (bytes.fromhex("1801000000000000"), "truncated ld_imm64 at byte offset 0"),
    (bytes.fromhex("b7010000000000008f01000000000000"), "unknown opcode 0x8f"),
    (bytes.fromhex("b7010000000000000701010000000000"), "BPF_ALU uses reserved fields at byte offset 8"),
    (b"b7 01 0", "odd number of digits"),
    # asm's --format c output, malformed
    (b"{ .code = 0xb7, .dst_reg = 16, .src_reg = 0, .off = 0, .imm = 1 },",
     "C array element 0: .dst_reg = 16 is out of range 0..15"),
    (b"{ .code = 0xb7, .imm = 1 },\n{ .code = 0x95, .imm = one },",
     "C array element 1: .imm = 'one' is not a number"),
    (b"struct bpf_insn p[] = { BPF_MOV64_IMM(BPF_REG_0, 0), BPF_EXIT_INSN() };",
     "designated-initializer form"),
])
def test_disasm_malformed_input(tmp_path, capsys, data, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(data)
    assert main(["disasm", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_asm_error_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.s"
    path.write_text("r0 = 0\nr0 +== 1\nexit\n")
    assert main(["asm", str(path)]) == 1
    err = capsys.readouterr().err
    assert "bad.s:2" in err and "'r0 +== 1'" in err


def test_missing_file(capsys):
    assert main(["disasm", "/nonexistent/prog.bin"]) == 1
    assert "cannot read /nonexistent/prog.bin" in capsys.readouterr().err


def test_disasm_reads_asm_c_output(prog_file, tmp_path, capsys):
    """Whatever `pybpf asm` writes, `pybpf disasm` reads back: raw, hex (default) and C array."""
    code = encode(assemble(PROG))
    for fmt in ("bin", "hex", "c"):
        out = tmp_path / f"prog.{fmt}"
        assert main(["asm", str(prog_file), "--format", fmt, "-o", str(out)]) == 0
        assert main(["disasm", "--plain", str(out)]) == 0, capsys.readouterr().err
        assert encode(assemble(capsys.readouterr().out)) == code, fmt


def test_disasm_of_assembly_text_says_so(prog_file, capsys):
    assert main(["disasm", str(prog_file)]) == 1
    err = capsys.readouterr().err
    assert "looks like assembly text" in err and f"pybpf asm {prog_file}" in err
    assert "truncated" not in err


def test_disasm_c_array_fields_default_to_zero(tmp_path, capsys):
    path = tmp_path / "p.c"
    path.write_text("/* r0 = -1 */ { .imm = -1, .code = 0xb7 },\n// exit\n{ .code = 0x95 },\n")
    assert main(["disasm", str(path)]) == 0
    assert capsys.readouterr().out == "0: (b7) r0 = -1\n1: (95) exit\n"
