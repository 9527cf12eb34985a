"""The builder's fast paths: same instructions, same source lines, same errors as the checks.

Builder methods validate with cheap identity tests and fall back to the
message-producing checks only on failure, fill Instruction slots directly, and
record the call site as (code, bytecode offset). These tests pin what that
must not change.
"""

import pickle
import sys

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.builder import Builder
from pybpf.asm.errors import AssemblerError
from pybpf.asm.instruction import Instruction, decode
from pybpf.asm.registers import Reg, r0, r1, r2, r3, r10, w1


class FakeMap:
    fd = 9


def _here() -> int:
    return sys._getframe(1).f_lineno


def _lines(b: Builder) -> list[int]:
    return [int(insn.source.rsplit(":", 1)[1]) for insn in b.insns]


def test_every_slot_is_set_on_builder_instructions():
    b = Builder()
    b.mov(r1, 1)
    b.ldx(r2, r1, 0, "u32")
    b.ld_map_fd(r1, FakeMap())
    b.call("map_lookup_elem")
    b.ja("end")
    b.label("end")
    b.exit()
    for insn in b.insns:
        for name in Instruction.__slots__:
            getattr(insn, name)  # an unset slot raises AttributeError


def test_conveniences_record_the_users_line():
    m = FakeMap()
    b = Builder()
    line = _here() + 1
    b.map_lookup(m, -4)                      # ld_imm64, mov, add, call: all on this line
    b.map_update(m, -4, -16)
    b.stack_ptr(r3, -8)
    b.ret(0)
    assert _lines(b) == [line] * 4 + [line + 1] * 7 + [line + 2] * 2 + [line + 3] * 2


def test_nested_helpers_and_blocks_record_the_users_line():
    b = Builder()
    first = _here() + 1
    b.atomic_add(r10, -8, r1)                # atomic_add -> atomic -> _emit
    b.movsx(r1, r2, 16)                      # movsx -> its ALU method -> _emit
    b.jeq(r1, 0, "x")                        # jeq -> jump_if -> _emit
    b.label("x")
    with b.if_(r1, ">", 3):                  # the inverted jump
        b.mov(r0, 1)
    with b.for_range(r3, 0, 4):              # mov, jump (then add and ja at the end)
        b.add(r0, r3)
    assert _lines(b) == [first, first + 1, first + 2, first + 4, first + 5,
                         first + 6, first + 6, first + 7, first + 6, first + 6]


def test_multi_line_call_records_the_line_of_the_call():
    b = Builder()
    line = _here() + 1
    b.ldx(                                   # the line a traceback shows for the call
        r1, r2,
        8)
    assert b.insns[0].source.endswith(f":{line}")


def test_emit_fills_in_the_source_of_a_prebuilt_instruction():
    b = Builder()
    line = _here() + 1
    insn = b.emit(Instruction(op.EXIT_OP))
    assert insn.source.endswith(f"test_builder_hotpaths.py:{line}")
    kept = b.emit(Instruction(op.EXIT_OP, source="prog.s:3"))
    assert kept.source == "prog.s:3"


@pytest.mark.parametrize("emit, message", [
    (lambda b: b.ldx(r1, r2, 0, 3), "invalid access size 3"),
    (lambda b: b.ldx(r1, r2, 0, [8]), "invalid access size"),
    (lambda b: b.stx(r10, -8, r1, "u128"), "invalid access size 'u128'"),
    (lambda b: b.st(r10, -8, 1 << 32), "out of 32-bit range"),
    (lambda b: b.st(r10, -40000, 1), "16-bit"),
    (lambda b: b.ldx(r10, r1), "frame pointer is read only"),
    (lambda b: b.stx("r10", -8, r1), "invalid base register 'r10'"),
    (lambda b: b.atomic_add(r10, -8, r1, size=2), "atomic operations take 4 or 8 bytes"),
    (lambda b: b.atomic_add(r10, -8, 1), "invalid source register 1"),
    (lambda b: b.add(w1, r2), "mixed register widths w1 and r2"),
    (lambda b: b.mov(r1, 1.5), "invalid immediate 1.5"),
    (lambda b: b.jump_if(r1, ["=="], 0, "x"), "invalid condition"),
    (lambda b: b.jump_if(r1, "==", 1 << 32, "x"), "out of 32-bit range"),
    (lambda b: b.jump_if(r1, "==", 0, 1.5), "invalid jump target 1.5"),
    (lambda b: b.ja(40000), "16-bit"),
    (lambda b: b.ld_imm64(r1, 1 << 64), "out of 64-bit range"),
    (lambda b: b.ld_imm64(r10, 1), "frame pointer is read only"),
    (lambda b: b.call("no_such_helper"), "unknown helper 'no_such_helper'"),
    (lambda b: b.call(True), "helper must be a name or an id"),
    (lambda b: b.movsx(3, r2, 8), "invalid destination register 3"),
])
def test_fast_path_failures_name_the_index_and_line(emit, message):
    b = Builder()
    b.mov(r0, 0)
    b.mov(r1, 0)
    with pytest.raises(AssemblerError, match=message) as info:
        emit(b)
    assert info.value.index == 2
    assert info.value.source.endswith(f"test_builder_hotpaths.py:{emit.__code__.co_firstlineno}")
    assert len(b) == 2  # nothing half-emitted


def test_slow_path_spellings_still_encode():
    b = Builder()
    b.ldx(r1, r2, 4, "U32")                  # mixed case: not in the fast table
    b.stx(r10, -8, r1, "DW")
    b.atomic_add(r10, -8, r1, size="W", fetch=True)
    b.st(r10, -4, 0xFFFFFFFF, 4)             # unsigned 32-bit spelling of -1
    b.mov(r1, 0x80000000)
    b.jump_if(r1, "==", 0xFFFFFFFF, 1)
    b.call(" bpf_ktime_get_ns ")
    b.call(5)
    b.add(r1, True)                          # bool is an int (slow path)
    b.exit()
    got = [(i.opcode, i.dst, i.src, i.off, i.imm) for i in decode(b.encode())]
    assert got == [
        (op.LDX | op.MEM | op.W, 1, 2, 4, 0),
        (op.STX | op.MEM | op.DW, 10, 1, -8, 0),
        (op.STX | op.ATOMIC | op.W, 10, 1, -8, op.ATOMIC_ADD | op.FETCH),
        (op.ST | op.MEM | op.W, 10, 0, -4, -1),
        (op.ALU64 | op.MOV | op.K, 1, 0, 0, -0x80000000),
        (op.JMP | op.JEQ | op.K, 1, 0, 1, -1),
        (op.CALL_OP, 0, 0, 0, 5),
        (op.CALL_OP, 0, 0, 0, 5),
        (op.ALU64 | op.ADD | op.K, 1, 0, 0, 1),
        (op.EXIT_OP, 0, 0, 0, 0),
    ]


def test_register_subclasses_take_the_slow_path():
    class Named(Reg):
        __slots__ = ()

    b = Builder()
    b.ldx(Named(1), Named(2), 8)
    b.jump_if(r1, ">", Named(3), 0)
    assert [(i.opcode, i.dst, i.src) for i in b.insns] == [
        (op.LDX | op.MEM | op.DW, 1, 2), (op.JMP | op.JGT | op.X, 1, 3)]


def test_alu_methods_keep_their_names_and_docs():
    for name in ("add", "sub", "mul", "div", "sdiv", "mod", "smod", "or_", "and_", "xor",
                 "lsh", "rsh", "arsh", "mov"):
        method = getattr(Builder, name)
        assert method.__name__ == name and method.__qualname__ == f"Builder.{name}"
        assert method.__doc__


def test_builder_instructions_pickle_and_replace_with_their_source():
    b = Builder()
    line = _here() + 1
    b.ld_map_value(r1, FakeMap(), 8)
    insn = b.insns[0]
    copy = pickle.loads(pickle.dumps(insn))
    assert copy == insn and copy.source == insn.source and copy.source.endswith(f":{line}")
    assert copy.imm == insn.imm and copy.src == op.PSEUDO_MAP_VALUE
    assert insn.replace(imm=3).source == insn.source
