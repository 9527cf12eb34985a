"""The DSL refuses what the kernel would refuse or misread, at the call, naming the Python line:
64-bit load operands, map references, mixed widths, legacy load sizes, loop bounds, blocks."""

import sys
from types import SimpleNamespace

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.builder import Builder
from pybpf.asm.errors import AssemblerError
from pybpf.asm.instruction import Instruction, decode
from pybpf.asm.registers import r0, r1, r2, r7, w1, w2
from pybpf.maps import MapSpec


class FakeMap:
    fd = 9
    value_size = 64


def _next_line() -> int:
    return sys._getframe(1).f_lineno + 1


def _raises(emit, message: str) -> AssemblerError:
    """``emit(b)`` fails with ``message``, naming the line of the DSL call in ``emit``."""
    line = emit.__code__.co_firstlineno
    b = Builder()
    b.mov(r0, 0)
    with pytest.raises(AssemblerError, match=message) as info:
        emit(b)
    assert info.value.source == f"{__file__}:{line}", info.value.source
    assert info.value.index == 1
    return info.value


# ------------------------------------------------------------------- 64-bit loads
@pytest.mark.parametrize("emit,message", [
    (lambda b: b.ld_map_value(r1, FakeMap(), off=1 << 33), r"map value offset 8589934592 out of range \[0, 0xffffffff\]"),
    (lambda b: b.ld_map_value(r1, FakeMap(), off=-8), "map value offset -8 out of range"),
    (lambda b: b.ld_map_value(r1, FakeMap(), off=64), "invalid access to map value pointer, value_size=64 off=64"),
    (lambda b: b.ld_map_value(r1, FakeMap(), off="8"), "map value offset '8' out of range"),
    (lambda b: b.ld_map_idx(r1, 1 << 40), r"fd_array index 1099511627776 out of range \[0, 0x7fffffff\]"),
    (lambda b: b.ld_map_idx(r1, -1), "fd_array index -1 out of range"),
    (lambda b: b.ld_map_idx_value(r1, 0, -1), "map value offset -1 out of range"),
    (lambda b: b.ld_map_idx_value(r1, 1 << 31, 0), "fd_array index 2147483648 out of range"),
    (lambda b: b.ld_btf_id(r1, -1), r"BTF id -1 out of range \[0, 0xffffffff\]"),
    (lambda b: b.ld_btf_id(r1, 1 << 32), "BTF id 4294967296 out of range"),
])
def test_64_bit_load_operands_are_range_checked(emit, message):
    _raises(emit, message)


def test_64_bit_loads_in_range_encode_both_halves():
    b = Builder()
    b.ld_map_value(r1, FakeMap(), off=63)
    b.ld_map_value(r1, MapSpec.array("Q", 4), off=7)  # value_size 8
    b.ld_map_idx(r1, 0x7FFFFFFF)
    b.ld_map_idx_value(r2, 3, 0xFFFFFFFF)  # no map to know its value size: the kernel checks
    b.ld_btf_id(r1, 0xFFFFFFFF)
    b.exit()
    insns = decode(b.encode())
    assert [(i.src, i.imm) for i in insns[:5]] == [
        (op.PSEUDO_MAP_VALUE, 9 | 63 << 32), (op.PSEUDO_MAP_VALUE, 7 << 32), (op.PSEUDO_MAP_IDX, 0x7FFFFFFF),
        (op.PSEUDO_MAP_IDX_VALUE, 3 | 0xFFFFFFFF << 32), (op.PSEUDO_BTF_ID, 0xFFFFFFFF)]
    with pytest.raises(AssemblerError, match="value_size=8 off=8"):
        b.ld_map_value(r1, MapSpec.array("Q", 4), off=8)


# ----------------------------------------------------------------- map references
@pytest.mark.parametrize("emit,message", [
    (lambda b: b.ld_map_fd(r1, "counts"), "invalid map 'counts': expected a Map, a MapSpec or an fd"),
    (lambda b: b.ld_map_fd(r1, None), "invalid map None"),
    (lambda b: b.ld_map_fd(r1, True), "invalid map True"),
    (lambda b: b.ld_map_fd(r1, 3.0), "invalid map 3.0"),
    (lambda b: b.ld_map_fd(r1, -1), r"map fd -1 out of range \[0, 0x7fffffff\]"),
    (lambda b: b.ld_map_fd(r1, SimpleNamespace(fd="3")), "invalid map"),
    (lambda b: b.ld_map_value(r1, "counts", 0), "invalid map 'counts'"),
    (lambda b: b.map_lookup("counts", -4), "invalid map 'counts'"),
])
def test_bad_map_references_fail_at_the_dsl_call(emit, message):
    _raises(emit, message)


def test_a_closed_map_fails_at_the_dsl_call():
    class Closed:
        @property
        def fd(self):
            raise ValueError("use of closed map 'm' (id 7, array)")

    _raises(lambda b: b.ld_map_fd(r1, Closed()), r"use of closed map 'm' \(id 7, array\)")


def test_map_references_the_loader_the_simulator_and_the_vm_take():
    spec = MapSpec.hash("I", "Q", 4, name="h")
    desc = SimpleNamespace(type="hash", key_size=4, value_size=8, max_entries=4, flags=0, name="m")
    b = Builder()
    b.ld_map_fd(r1, FakeMap())   # a Map: its fd now, relocated again at load
    b.ld_map_fd(r1, spec)        # a spec: fd 0, created and relocated by the loader
    b.ld_map_fd(r1, desc)        # a map description (simulator, VM)
    b.ld_map_fd(r1, 5)           # a raw fd: encoded as is, nothing to relocate
    b.ld_map_value(r1, 6, 16)    # a raw fd's value
    assert [(i.imm, i.map) for i in b.insns] == [(9, b.insns[0].map), (0, spec), (0, desc), (5, None),
                                                  (6 | 16 << 32, None)]
    assert isinstance(b.insns[0].map, FakeMap)


# ----------------------------------------------------------- invalid instructions
@pytest.mark.parametrize("emit,message", [
    (lambda b: b.jump_if(r1, ">", w2, 0), "mixed register widths r1 and w2"),
    (lambda b: b.jump_if(w1, "==", r2, "x"), "mixed register widths w1 and r2"),
    (lambda b: b.jsgt(r1, w2, "x"), "mixed register widths r1 and w2"),
    (lambda b: b.ld_abs(8, 4), r"invalid access size 8: legacy packet loads \(skb\[...\]\) take 1, 2 or 4 bytes"),
    (lambda b: b.ld_abs("u64", 4), "invalid access size 'u64': legacy packet loads"),
    (lambda b: b.ld_ind(8, r1, 4), "invalid access size 8: legacy packet loads"),
    (lambda b: b.ldxsx(r1, r2, 0, 8), r"sign-extending loads take 1, 2 or 4 bytes \(use ldx for 8\)"),
    (lambda b: b.call_kfunc(5, 1 << 20), r"kfunc module fd_array index 1048576 out of range \[0, 0x7fff\]"),
    (lambda b: b.call_kfunc(5, -1), "kfunc module fd_array index -1 out of range"),
    (lambda b: b.call_kfunc(-5), r"kfunc BTF id -5 out of range \[0, 0x7fffffff\]"),
])
def test_invalid_instructions_fail_at_the_dsl_call(emit, message):
    err = _raises(emit, message)
    assert "format requires" not in str(err)


def test_valid_jump_and_legacy_load_widths_still_encode():
    b = Builder()
    b.jump_if(w1, ">", w2, "end")
    b.ld_abs(4, 2)
    b.ld_ind("u16", r1, 2)
    b.call_kfunc(123, 0x7FFF)
    b.label("end")
    b.exit()
    assert [i.opcode for i in decode(b.encode())] == [0x2E, 0x20, 0x48, 0x85, 0x95]


def test_a_field_out_of_range_names_the_field_not_struct():
    b = Builder()
    line = _next_line()
    b.emit(Instruction(op.CALL_OP, 0, op.PSEUDO_KFUNC_CALL, 0, 1 << 40))
    b.emit(Instruction(0x61, 1, 2, 40000))
    b.exit()
    with pytest.raises(AssemblerError) as info:
        b.encode()
    assert str(info.value) == (f"imm 1099511627776 does not fit the signed 32-bit imm field (opcode 0x85) "
                               f"(insn 0, at {__file__}:{line})")
    del b.insns[0]
    with pytest.raises(AssemblerError, match=r"^off 40000 does not fit the signed 16-bit off field \(opcode 0x61\)"):
        b.encode()


# ------------------------------------------------------------------ loops and blocks
def test_for_range_compares_signed():
    b = Builder()
    with b.for_range(r7, -5, 5):
        b.add(r0, r7)
    with b.for_range(r7, 5, -5, -2):
        b.add(r0, r7)
    with b.for_range(r7, 0, r2):
        b.add(r0, r7)
    b.exit()
    jumps = [i for i in decode(b.encode()) if i.opcode & 0x07 == op.JMP and i.opcode & 0xF0 in op.COND_SYMBOLS]
    assert [(op.COND_SYMBOLS[j.opcode & 0xF0], j.imm) for j in jumps] == [("s>=", 5), ("s<=", -5), ("s>=", 0)]


@pytest.mark.parametrize("emit,message", [
    (lambda b: b.for_range(r1, 0, 5, 0).__enter__(), "for_range\\(\\) step must be a non-zero int, not 0"),
    (lambda b: b.for_range(r1, 0, 5, 1.5).__enter__(), "step must be a non-zero int, not 1.5"),
    (lambda b: b.for_range(r1, 0, 1 << 31).__enter__(), "for_range\\(\\) bound 0x80000000 out of signed 32-bit"),
    (lambda b: b.for_range(r1, -(1 << 31) - 1, 0).__enter__(), "bound -0x80000001 out of signed 32-bit"),
])
def test_for_range_bad_steps_and_bounds(emit, message):
    _raises(emit, message)


def test_while_with_bit_test_and_bad_conditions():
    b = Builder()
    with b.while_(r1, "&", 1):   # jset into the body, goto past it otherwise
        b.rsh(r1, 1)
    b.exit()
    assert [i.opcode for i in decode(b.encode())] == [0x45, 0x05, 0x77, 0x05, 0x95]
    assert [i.off for i in decode(b.encode())] == [1, 2, 0, -4, 0]
    for cond in ("=~", None, ["&"]):
        _raises(lambda b: b.while_(r1, cond, 1).__enter__(), "invalid condition")
        _raises(lambda b: b.if_(r1, cond, 1).__enter__(), "invalid condition")


def test_label_past_the_end_names_where_it_was_placed():
    b = Builder()
    b.mov(r0, 0)
    line = _next_line()
    b.label("z")
    b.exit()
    b.insns.pop()
    b.insns.pop()
    with pytest.raises(AssemblerError, match=r"label 'z' points past the end \(0 instructions\)") as info:
        b.encode()
    assert info.value.source == f"{__file__}:{line}"


def test_jump_to_a_label_at_the_end_is_out_of_range():
    b = Builder()
    line = _next_line()
    b.ja("end")
    b.label("end")
    with pytest.raises(AssemblerError, match=r"jump out of range from insn 0 to 1 \(label 'end' is at the end\)") as info:
        b.encode()
    assert info.value.source == f"{__file__}:{line}"
