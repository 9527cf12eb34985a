"""Loading with bad input: closed maps and closed programs are named, with the source line."""

from __future__ import annotations

import pytest

from pybpf.asm.builder import Builder
from pybpf.asm.registers import r0, r1
from pybpf.maps import MapSpec
from pybpf.program import ProgramSpec, ProgType

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("verify", [True, False])
def test_load_with_a_closed_map_names_map_insn_and_line(verify):
    m = MapSpec.hash("I", "Q", 4, name="closed_m").create()
    b = Builder()
    b.mov(r0, 0)
    line = b.ld_map_fd(r1, m).source  # "file:line" of this call
    b.exit()
    m.close()
    with pytest.raises(ValueError) as exc:
        ProgramSpec(list(b), ProgType.SOCKET_FILTER).load(verify=verify)
    text = str(exc.value)
    assert "map 'closed_m'" in text and "which is closed" in text
    assert "insn 1" in text and f"emitted at {line}" in text and "test_load_errors.py:" in line


def test_closed_program_is_named():
    b = Builder()
    b.mov(r0, 0)
    b.exit()
    prog = ProgramSpec(list(b), ProgType.SOCKET_FILTER, name="shut").load(verify=False)
    prog_id = prog.id
    prog.close()
    with pytest.raises(ValueError, match=rf"use of closed program 'shut' \(id {prog_id}\)"):
        prog.test_run(data_in=bytes(64))
