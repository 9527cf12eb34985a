"""E2BIG from BPF_PROG_LOAD is about the program's length, not a full map."""

import pytest

from pybpf.program import ProgramSpec
from pybpf.syscall.errors import MapFull, TooBig

pytestmark = pytest.mark.kernel

MOV_R0_0 = bytes.fromhex("b700000000000000")
EXIT = bytes.fromhex("9500000000000000")


def test_empty_program_says_so():
    with pytest.raises(TooBig, match=r"BPF_PROG_LOAD: E2BIG .*program too large or empty "
                                     r"\(0 instructions") as info:
        ProgramSpec(b"", "socket_filter").load(verify=False)
    assert not isinstance(info.value, MapFull)


def test_over_the_instruction_limit_counts_them():
    code = MOV_R0_0 * 1_000_000 + EXIT
    with pytest.raises(TooBig, match=r"program too large or empty \(1000001 instructions"):
        ProgramSpec(code, "socket_filter").load(verify=False)
