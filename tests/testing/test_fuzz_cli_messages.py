"""``pybpf fuzz`` messages that need no kernel: replaying a file that is not a case, missing backends."""

import pytest

from pybpf import cli
from pybpf.testing import fuzz


def test_replay_of_a_non_case_file_names_the_command_and_path_once(tmp_path, capsys):
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n")
    binary = tmp_path / "blob"
    binary.write_bytes(b"\x7fELF\xd0\xff")
    missing = tmp_path / "nope"
    assert cli.main(["fuzz", "--compare", "sim,vm", "--replay", str(other), str(binary),
                     str(missing)]) in (1, 2)
    err = capsys.readouterr().err
    if "need two backends" in err:  # no kernel here: replay never starts
        pytest.skip("sim and vm are not both available")
    lines = [ln for ln in err.splitlines() if "--replay" in ln]
    assert lines == [
        f"pybpf fuzz: --replay: {other}: no '# prog_type:' line (not a disagreement file written "
        f"by pybpf fuzz)",
        f"pybpf fuzz: --replay: {binary}: not a text file (not a disagreement file written by "
        f"pybpf fuzz)",
        f"pybpf fuzz: --replay: cannot read {missing}: No such file or directory",
    ]


def test_unrequested_kernel_is_not_reported_as_missing(monkeypatch, capsys):
    """As nobody, `--compare sim,vm` must not say "kernel: ...; comparing without it"."""
    monkeypatch.setattr(fuzz, "_kernel_usable", lambda: "not running as root")
    assert cli.main(["fuzz", "--compare", "sim,vm", "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert "pybpf fuzz: kernel:" not in err
    assert ("pybpf fuzz: vm: needs the kernel's BPF_PROG_TEST_RUN to compare with "
            "(kernel: not running as root); comparing without it") in err
    assert "need two backends to compare, have: sim" in err


def test_requested_kernel_is_reported_as_missing(monkeypatch, capsys):
    monkeypatch.setattr(fuzz, "_kernel_usable", lambda: "not running as root")
    assert cli.main(["fuzz", "--compare", "sim,kernel", "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert "pybpf fuzz: kernel: not running as root; comparing without it" in err
