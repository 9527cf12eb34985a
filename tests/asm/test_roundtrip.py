"""Round trips: bytes -> Instruction -> bytes, and bytes -> text -> bytes."""

from hypothesis import given, settings

from pybpf.asm.disasm import disassemble, listing, validate
from pybpf.asm.instruction import decode, encode
from pybpf.asm.text import assemble

from asm_strategies import instructions, programs


@settings(max_examples=200, deadline=None)
@given(instructions())
def test_strategy_generates_valid_instructions(insn):
    assert validate(insn) is None, insn


@settings(max_examples=200, deadline=None)
@given(programs())
def test_decode_encode(prog):
    assert decode(encode(prog)) == prog


@settings(max_examples=200, deadline=None)
@given(programs())
def test_assemble_disassemble(prog):
    code = encode(prog)
    text = disassemble(code)
    assert encode(assemble(text)) == code, text


@settings(max_examples=80, deadline=None)
@given(programs())
def test_assemble_listing(prog):
    """The verifier-log layout (``N: (xx) text``) reads back too."""
    code = encode(prog)
    assert encode(assemble(listing(code))) == code
