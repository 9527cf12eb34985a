"""``pybpf verify``: text in, the verdict and the kernel's reason out."""

import pytest

from pybpf.cli import main

PROG = """r1 = map[m] ll
*(u64 *)(r10 -8) = 0
r2 = r10
r2 += -8
call 1
if r0 == 0 goto out
r0 = *(u64 *)(r0 +16)
out:
r0 = 0
exit
"""


def test_verify_text_reports_reason_and_line(tmp_path, capsys):
    f = tmp_path / "p.s"
    f.write_text(PROG)
    assert main(["verify", str(f), "--prog-type", "socket_filter", "--map", "hash:8:16:4"]) == 1
    out = capsys.readouterr().out
    assert "R0 min value is outside of the allowed memory range" in out and "p.s:7" in out
    assert main(["verify", str(f), "--prog-type", "socket_filter", "--map", "hash:8:24:4",
                 "--log-level", "2"]) == 0
    out = capsys.readouterr().out
    assert "(85) call" in out and "accepted" in out


def test_verify_needs_map_descriptions(tmp_path, capsys):
    f = tmp_path / "p.s"
    f.write_text(PROG)
    assert main(["verify", str(f), "--prog-type", "xdp"]) == 2
    assert "--map" in capsys.readouterr().err


@pytest.mark.kernel
def test_verify_against_kernel(tmp_path, capsys):
    import kernel
    if not kernel.available():
        pytest.skip("needs root")
    f = tmp_path / "p.s"
    f.write_text(PROG)
    assert main(["verify", str(f), "--prog-type", "socket_filter", "--map", "hash:8:16:4",
                 "--against-kernel"]) == 0
    assert "agrees" in capsys.readouterr().out


FUZZ_CASE = ("# pybpf fuzz disagreement\n# prog_type: socket_filter\n"
             "# map m0: type=hash key_size=8 value_size=16 max_entries=4 flags=0\n"
             + PROG.replace("map[m]", "map[m0]"))


def test_verify_reads_fuzzer_headers(tmp_path, capsys):
    f = tmp_path / "case.s"
    f.write_text(FUZZ_CASE)
    assert main(["verify", str(f)]) == 1
    assert "R0 min value is outside of the allowed memory range" in capsys.readouterr().out
    f.write_text(FUZZ_CASE.replace("value_size=16", "value_size=24"))
    assert main(["verify", str(f), "--log-level", "1"]) == 0
    assert "processed" in capsys.readouterr().out
    g = tmp_path / "plain.s"
    g.write_text(PROG)
    assert main(["verify", str(g)]) == 2
    assert "--prog-type is required" in capsys.readouterr().err


def test_verify_unprivileged_flag(tmp_path, capsys):
    f = tmp_path / "leak.s"
    f.write_text("r0 = r10\nexit\n")
    assert main(["verify", str(f), "--prog-type", "socket_filter"]) == 0
    assert main(["verify", str(f), "--prog-type", "socket_filter", "--unprivileged"]) == 1
    assert "R0 leaks addr as return value" in capsys.readouterr().out


@pytest.mark.kernel
def test_verify_fuzzer_file_against_kernel(tmp_path, capsys):
    import kernel
    if not kernel.available():
        pytest.skip("needs root")
    f = tmp_path / "case.s"
    f.write_text(FUZZ_CASE)
    assert main(["verify", str(f), "--against-kernel"]) == 0
    out = capsys.readouterr().out
    assert "rejected" in out and "agrees" in out


def _pybpf(*args, stdin=None):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "pybpf", *args], input=stdin, capture_output=True,
                          timeout=60)


def test_verify_reads_asm_default_output_from_a_pipe(tmp_path):
    """`pybpf asm x.s | pybpf verify -`: asm writes hex on stdout, verify must take it."""
    f = tmp_path / "x.s"
    f.write_text("r0 = 1\nexit\n")
    hex_out = _pybpf("asm", str(f))
    assert hex_out.returncode == 0 and hex_out.stdout.startswith(b"b7 00 00 00 01 00 00 00")
    r = _pybpf("verify", "-", "--prog-type", "xdp", stdin=hex_out.stdout)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("accepted: processed 2 insns")


@pytest.mark.parametrize("fmt", ["bin", "hex", "c"])
def test_verify_reads_every_asm_format(tmp_path, capsys, fmt):
    src = tmp_path / "p.s"
    src.write_text(PROG)
    out = tmp_path / f"p.{fmt}"
    assert main(["asm", str(src), "--format", fmt, "-o", str(out)]) == 0
    capsys.readouterr()
    # Same verdict and reason as the text (maps in the order of their ld_imm64s for bytecode).
    assert main(["verify", str(out), "--prog-type", "socket_filter", "--map", "hash:8:16:4"]) == 1
    assert "R0 min value is outside of the allowed memory range" in capsys.readouterr().out
    assert main(["verify", str(out), "--prog-type", "socket_filter"]) == 2
    assert "describe each with --map" in capsys.readouterr().err


def test_verify_unreadable_or_malformed_input(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nope.s"), "--prog-type", "xdp"]) == 1
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.hex"
    bad.write_text("b7 00 0")
    assert main(["verify", str(bad), "--prog-type", "xdp"]) == 1
    assert "odd number of digits" in capsys.readouterr().err
