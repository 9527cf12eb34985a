"""The builder DSL: exact encodings, labels, blocks, source lines and errors."""

import pytest

from pybpf.asm import AssemblerError, Builder, decode, opcodes as op, r0, r1, r2, r6, r7, r10, w1, w2


def hexof(b: Builder) -> str:
    return b.encode().hex()


def test_alu_encodings_match_the_kernel_layout():
    b = Builder()
    b.mov(r0, 1)          # b7 00 0000 01000000
    b.add(w1, w2)         # 0c 21 0000 00000000
    b.sdiv(r1, -3)        # 37 01 0100 fdffffff
    b.movsx(r1, r2, 8)    # bf 21 0800 00000000
    b.bswap(r1, 16)       # d7 01 0000 10000000
    b.be(r1, 32)          # dc 01 0000 20000000
    assert hexof(b) == ("b700000001000000" "0c21000000000000" "37010100fdffffff"
                        "bf21080000000000" "d701000010000000" "dc01000020000000")


def test_memory_and_atomics():
    b = Builder()
    b.stx(r10, -8, r1)                 # 7b 1a f8ff
    b.ldx(r0, r1, 4, "u32")            # 61 10 0400
    b.st(r10, -4, 7, 4)                # 62 0a fcff 07000000
    b.ldxsx(r0, r1, 2, 2)              # 89 10 0200
    b.atomic_add(r0, 0, r1, fetch=True)  # db 10 0000 01000000
    b.cmpxchg(r0, 8, r2, 4)            # c3 20 0800 f1000000
    assert hexof(b) == ("7b1af8ff00000000" "6110040000000000" "620afcff07000000"
                        "8910020000000000" "db10000001000000" "c3200800f1000000")


def test_ld_imm64_is_one_instruction_in_two_slots():
    b = Builder()
    b.ld_imm64(r1, -1)
    b.exit()
    code = b.encode()
    assert len(b) == 2 and len(code) == 24
    assert decode(code)[0].imm == (1 << 64) - 1


def test_forward_and_backward_labels_resolve_in_slots():
    b = Builder()
    b.ja("end")
    b.ld_imm64(r1, 5)       # two slots between the jump and the target
    b.label("end")
    b.exit()
    insns = decode(b.encode())
    assert insns[0].off == 2


def test_if_else_and_for_range_layout():
    b = Builder()
    b.mov(r0, 0)
    with b.if_(r1, ">", 3):
        b.mov(r0, 1)
    with b.else_():
        b.mov(r0, 2)
    with b.for_range(r7, 0, 4):
        b.add(r0, r7)
    b.exit()
    insns = decode(b.encode())
    # if r1 <= 3 goto else; r0 = 1; goto end; else: r0 = 2
    assert insns[1].opcode == op.JMP | op.JLE | op.K and insns[1].off == 2
    assert insns[3].opcode == op.JA_OP and insns[3].off == 1


def test_source_line_points_at_the_dsl_call():
    b = Builder()
    b.mov(r0, 0)  # this line
    assert b.insns[0].source.endswith(f"test_builder.py:{test_source_line_points_at_the_dsl_call.__code__.co_firstlineno + 2}")


def test_map_reference_is_kept_for_relocation():
    class FakeMap:
        fd = 7
    m = FakeMap()
    b = Builder()
    b.map_lookup(m, -4)
    b.exit()
    assert b.insns[0].map is m and b.insns[0].src == op.PSEUDO_MAP_FD
    assert decode(b.encode())[0].imm == 7


@pytest.mark.parametrize("emit, message", [
    (lambda b: b.mov(r10, 1), "frame pointer is read only"),
    (lambda b: b.mov(r1, 1 << 33), "out of 32-bit range"),
    (lambda b: b.ldx(r1, r2, 40000), "16-bit"),
    (lambda b: b.mov(r1, "x"), "invalid immediate"),
    (lambda b: b.jump_if(r1, "=~", 0, "x"), "invalid condition"),
    (lambda b: b.ldx(r1, 3), "invalid source register"),
    (lambda b: b.movsx(w1, w2, 32), "movsx32"),
])
def test_bad_input_names_index_and_line(emit, message):
    b = Builder()
    b.mov(r0, 0)
    with pytest.raises(AssemblerError, match=message) as info:
        emit(b)
    assert info.value.index == 1
    assert "test_builder.py" in info.value.source


def test_unresolved_and_duplicate_labels():
    b = Builder()
    b.ja("nowhere")
    with pytest.raises(AssemblerError, match="unresolved label 'nowhere'"):
        b.encode()
    b.label("x")
    with pytest.raises(AssemblerError, match="duplicate label 'x'"):
        b.label("x")


def test_raw_jump_into_ld_imm64_is_rejected():
    b = Builder()
    b.ja(1)           # lands on the second slot of the ld_imm64
    b.ld_imm64(r1, 1)
    b.exit()
    with pytest.raises(AssemblerError, match="middle of ld_imm64"):
        b.encode()


def test_jump_offset_out_of_16_bit_range():
    b = Builder()
    b.ja("far")
    for _ in range(40000):
        b.mov(r0, 0)
    b.label("far")
    b.exit()
    with pytest.raises(AssemblerError, match="out of 16-bit range"):
        b.encode()
    b2 = Builder()
    b2.gotol("far")
    for _ in range(40000):
        b2.mov(r0, 0)
    b2.label("far")
    b2.exit()
    assert decode(b2.encode())[0].imm == 40000
