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
