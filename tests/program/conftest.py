import os

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction


def _bpf_works() -> bool:
    if os.geteuid() != 0:
        return False
    from pybpf.program import ProgramSpec
    try:
        ProgramSpec([Instruction(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0), Instruction(op.EXIT_OP)],
                    "socket_filter").load(verify=False).close()
    except OSError:
        return False
    return True


BPF_OK = _bpf_works()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs root and a kernel with bpf(2)")
    for item in items:
        if "kernel" in item.keywords and not BPF_OK and str(item.fspath).startswith(
                os.path.dirname(__file__)):
            item.add_marker(skip)


@pytest.fixture
def ret():
    """ret(n): the two-instruction program ``r0 = n; exit``."""
    def make(n: int):
        return [Instruction(op.ALU64 | op.MOV | op.K, 0, 0, 0, n), Instruction(op.EXIT_OP)]
    return make
