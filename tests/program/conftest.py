import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction


@pytest.fixture
def ret():
    """ret(n): the two-instruction program ``r0 = n; exit``."""
    def make(n: int):
        return [Instruction(op.ALU64 | op.MOV | op.K, 0, 0, 0, n), Instruction(op.EXIT_OP)]
    return make
