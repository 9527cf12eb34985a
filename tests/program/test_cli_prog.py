"""`pybpf prog list|show` against programs loaded by this test."""

import json
import subprocess
import sys

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction as I
from pybpf.program import ProgramSpec

pytestmark = pytest.mark.kernel


def _pybpf(*args):
    out = subprocess.run([sys.executable, "-m", "pybpf", *args], capture_output=True, text=True,
                         timeout=60)
    return out.returncode, out.stdout, out.stderr


def test_prog_list_and_show():
    spec = ProgramSpec([I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 1), I(op.EXIT_OP)], "xdp", name="cli_probe")
    with spec.load() as prog:
        prog.test_run(bytes(64))
        rc, out, _ = _pybpf("prog", "list", "--json")
        assert rc == 0
        mine = [p for p in json.loads(out) if p["id"] == prog.id]
        assert len(mine) == 1
        entry = mine[0]
        assert (entry["type"], entry["name"], entry["tag"]) == ("xdp", "cli_probe", prog.tag)
        assert entry["bytes_xlated"] == 16 and entry["map_ids"] == [] and entry["uid"] == 0
        rc, out, _ = _pybpf("prog", "show", str(prog.id))
        assert rc == 0
        assert out.startswith(f"{prog.id}: xdp  name cli_probe  tag {prog.tag}  gpl")
        assert "xlated 16B" in out
        gone = prog.id
    rc, _, err = _pybpf("prog", "show", str(gone))
    assert rc == 1 and f"no program with id {gone}" in err


def _bpftool_json(*args):
    import shutil
    if not shutil.which("bpftool"):
        pytest.skip("bpftool not installed")
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_prog_show_forms_and_memlock_like_bpftool():
    import os

    from pybpf import pin
    spec = ProgramSpec([I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 1), I(op.EXIT_OP)], "xdp", name="cli_forms")
    with spec.load() as prog:
        path = os.path.join(pin.ensure_bpffs(), f"pybpf_cli_prog_{os.getpid()}")
        pin.pin(prog, path)
        try:
            theirs = _bpftool_json("prog", "show", "id", str(prog.id))
            assert theirs["bytes_memlock"] > 0
            for words in ([str(prog.id)], ["id", str(prog.id)], ["pinned", path], [path]):
                rc, out, err = _pybpf("prog", "show", *words, "--json")
                assert rc == 0, (words, err)
                ours = json.loads(out)
                assert ours["id"] == prog.id, words
                for field in ("type", "name", "tag", "bytes_xlated", "bytes_jited", "bytes_memlock"):
                    assert ours[field] == theirs[field], field
            rc, out, _ = _pybpf("prog", "show", "id", str(prog.id))
            assert rc == 0
            line = out.splitlines()[2]
            assert line == (f"\txlated {theirs['bytes_xlated']}B  jited {theirs['bytes_jited']}B  "
                            f"memlock {theirs['bytes_memlock']}B")
            rc, out, _ = _pybpf("prog", "list", "--json")
            mine = [p for p in json.loads(out) if p["id"] == prog.id]
            assert mine[0]["bytes_memlock"] == theirs["bytes_memlock"]
            rc, out, _ = _pybpf("prog", "list")
            assert f"memlock {theirs['bytes_memlock']}B" in out
        finally:
            pin.unpin(path)
