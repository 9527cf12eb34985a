"""``pybpf fuzz`` end to end, with an injected disagreement (a simulator that rejects everything)."""

import os
import re

import pytest

from pybpf import cli
from pybpf.testing import fuzz
from pybpf.testing.fuzz import RunOutput, Verdict
from pybpf.testing.report import load_case

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for BPF_PROG_LOAD")]


def reject_all(prog, log_level=0):
    return Verdict(False, "fake simulator rejects everything", 0, "fake log\n")


def test_injected_disagreements_are_minimized_and_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fuzz, "_SIMULATOR_OVERRIDE", reject_all)
    out = tmp_path / "out"
    rc = cli.main(["fuzz", "--count", "6", "--seed", "3", "--prog-type", "xdp",
                   "--compare", "sim,kernel", "--valid", "true", "--out", str(out), "-q"])
    assert rc == 1
    stdout = capsys.readouterr().out
    assert "6 programs" in stdout and "6 disagreements" in stdout
    assert "sim-rejects-kernel-accepts" in stdout
    files = sorted(out.iterdir())
    assert len(files) == 6
    text = files[0].read_text()
    assert "# prog_type: xdp" in text and "# kernel: accepted" in text
    assert "# simulator: rejected: fake simulator rejects everything" in text
    assert "kernel verifier log" in text and "processed" in text
    # The smallest program the kernel accepts: r0 = <ret>; exit (r6 = r1 etc. removed).
    prog = load_case(str(files[0]))
    assert len(prog) == 2
    # Replaying the file reproduces the disagreement (exit status 1) ...
    assert cli.main(["fuzz", "--compare", "sim,kernel", "--prog-type", "xdp",
                     "--replay", str(files[0])]) == 1
    assert "sim-rejects-kernel-accepts" in capsys.readouterr().out


def test_agreement_exits_zero_and_prints_summary(tmp_path, monkeypatch, capsys):
    kernel = fuzz._kernel()
    monkeypatch.setattr(fuzz, "_SIMULATOR_OVERRIDE", lambda p: kernel(p)[0])  # agrees by construction
    rc = cli.main(["fuzz", "--count", "30", "--seed", "5", "--prog-type", "cgroup_skb",
                   "--compare", "sim,kernel", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert rc == 0, captured.out
    assert "no disagreements" in captured.out
    m = re.search(r"kernel:\s+(\d+) accepted, (\d+) rejected", captured.out)
    assert int(m.group(1)) + int(m.group(2)) == 30 and int(m.group(1)) > 0 and int(m.group(2)) > 0
    # Progress lines (not a terminal: periodic lines) went to stderr.
    assert "programs 30/30" in captured.err
    assert not (tmp_path / "o").exists()


def test_vm_disagreement_is_reported(tmp_path, monkeypatch, capsys):
    def wrong_vm():
        return lambda prog: RunOutput(12345, prog.packet)
    monkeypatch.setattr(fuzz, "_vm", wrong_vm)
    rc = cli.main(["fuzz", "--count", "3", "--seed", "1", "--prog-type", "xdp", "--valid", "true",
                   "--compare", "kernel,vm", "--out", str(tmp_path), "-q"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "vm-retval" in out and "vm:        3 test runs compared" in out
    text = next(tmp_path.iterdir()).read_text()
    assert "# vm run: retval=12345" in text and "# kernel test run: retval=" in text


def test_missing_backends_are_named(monkeypatch, capsys):
    def missing():
        raise ImportError("no module named pybpf.verifier.api")
    monkeypatch.setattr(fuzz, "_simulator", missing)
    monkeypatch.setattr(fuzz, "_SIMULATOR_OVERRIDE", None)
    rc = cli.main(["fuzz", "--count", "1", "--compare", "sim,kernel"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "sim: verifier simulator not importable" in err and "need two backends" in err


def test_usage_errors(capsys):
    assert cli.main(["fuzz", "--prog-type", "lwt_in", "--compare", "kernel,vm"]) == 2
    assert "not supported" in capsys.readouterr().err
    assert cli.main(["fuzz", "--compare", "sim,bogus"]) == 2
    assert "unknown backend 'bogus'" in capsys.readouterr().err
