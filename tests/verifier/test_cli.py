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
