"""Structured blocks (if_/else_/while_/for_range): source lines and exceptions in the body.

The blocks are generator methods run by the builder's own small context manager
(not contextlib, whose import the tools' start-up would pay); these pin down
what contextlib.contextmanager gave: every instruction, including the jumps a
block emits when it is entered or left, names the user's line.
"""

import pytest

from pybpf.asm import AssemblerError, Builder, r0, r1, r2


def lines_of(b: Builder, first: int) -> list[tuple[int, int]]:
    """(line relative to ``first``, opcode) of every instruction."""
    return [(int(i.source.rsplit(":", 1)[1]) - first, i.opcode) for i in b.insns]


def test_block_instructions_name_the_user_lines():
    first = test_block_instructions_name_the_user_lines.__code__.co_firstlineno + 1
    b = Builder()
    b.mov(r0, 0)                         # +2
    with b.if_(r1, "==", 1):             # +3: the inverted jump
        b.mov(r0, 1)                     # +4
    with b.else_():                      # +5: the then-branch's jump over the else
        b.mov(r0, 2)                     # +6
    with b.while_(r1, "<", 10):          # +7: the exit test, and the back jump on leaving
        b.add(r1, 1)                     # +8
    with b.for_range(r2, 0, 4):          # +9: init, test; increment and back jump on leaving
        with b.if_(r1, "&", 4):          # +10: jset and ja (no inverse of &)
            b.break_()                   # +11
    b.exit()                             # +12
    assert lines_of(b, first) == [
        (2, 0xb7), (3, 0x55), (4, 0xb7), (5, 0x05), (6, 0xb7),
        (7, 0x35), (8, 0x07), (7, 0x05),
        (9, 0xb7), (9, 0x75), (10, 0x45), (10, 0x05), (11, 0x05), (9, 0x07), (9, 0x05),
        (12, 0x95),
    ]
    assert b.labels == {".endif0": 4, ".endelse1": 5, ".while2": 5, ".endwhile3": 8, ".for4": 9,
                        ".then8": 12, ".endif7": 13, ".next5": 13, ".endfor6": 15}


def test_misplaced_else_names_the_with_line():
    b = Builder()
    line = test_misplaced_else_names_the_with_line.__code__.co_firstlineno + 4
    with pytest.raises(AssemblerError, match=r"else_\(\) must directly follow an if_\(\) block") as info:
        with b.else_():
            pass
    assert info.value.source.endswith(f"test_builder_blocks.py:{line}")


def test_exception_in_the_body_skips_the_block_end():
    b = Builder()
    with pytest.raises(KeyError):
        with b.while_(r1, "<", 3):
            b.mov(r0, 1)
            raise KeyError("x")
    # The loop test and the body ran; the back jump and end label (after the yield) did not.
    assert [i.opcode for i in b.insns] == [0x35, 0xb7]
    assert sorted(b.labels) == [".while0"]


def test_a_block_not_entered_emits_nothing():
    b = Builder()
    block = b.if_(r1, "==", 0)  # as with contextmanager: nothing happens before the with
    assert b.insns == [] and b.labels == {}
    with block:
        b.mov(r0, 1)
    assert [i.opcode for i in b.insns] == [0x55, 0xb7]
