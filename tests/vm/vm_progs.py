"""Hypothesis strategies for the differential tests: straight-line ALU programs over a packet.

A program loads registers from the packet (direct access for XDP/sched_cls,
LD_ABS/LD_IND for socket filters) and from random immediates, runs random
ALU/ALU64 operations (every opcode, with edge-case immediates) with forward
JMP/JMP32 skips, spills through the stack and atomics, stores results back
into the packet and returns r0. Everything it does is valid for the verifier,
so the kernel loads it and BPF_PROG_TEST_RUN shows its concrete semantics.
"""

from __future__ import annotations

from hypothesis import strategies as st

from pybpf.asm import Builder, R

SCALARS = [0, 1, 2, 3, 4, 5, 9]  # registers the body may use; r6-r8 hold ctx/data/data_end
WINDOW = 64  # bytes of packet the program may touch (after its bounds check)
EDGE = [0, 1, -1, 2, 7, 31, 32, 63, 0x7FFF_FFFF, -0x8000_0000, 0xFF, 0xFFFF, 0x8000, -2]
ALU_OPS = ["add", "sub", "mul", "div", "sdiv", "mod", "smod", "or_", "and_", "xor", "lsh", "rsh",
           "arsh", "mov", "neg", "movsx", "be", "le", "bswap"]
CONDS = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"]

imm32 = st.one_of(st.sampled_from(EDGE), st.integers(-(1 << 31), (1 << 31) - 1))
reg = st.sampled_from(SCALARS)


@st.composite
def alu_insn(draw):
    name = draw(st.sampled_from(ALU_OPS))
    wide = draw(st.booleans())
    dst = draw(reg)
    if name in ("neg",):
        return (name, wide, dst, None)
    if name in ("be", "le"):
        return (name, True, dst, draw(st.sampled_from([16, 32, 64])))
    if name == "bswap":
        return (name, True, dst, draw(st.sampled_from([16, 32, 64])))
    if name == "movsx":
        return (name, wide, dst, (draw(reg), draw(st.sampled_from([8, 16, 32] if wide else [8, 16]))))
    if draw(st.booleans()):
        return (name, wide, dst, ("r", draw(reg)))
    imm = draw(imm32)
    if name in ("lsh", "rsh", "arsh"):
        imm &= 63 if wide else 31
    if name in ("div", "sdiv", "mod", "smod") and imm == 0:
        imm = 3  # the verifier rejects division by an immediate zero
    return (name, wide, dst, ("k", imm))


def emit_alu(b: Builder, item) -> None:
    name, wide, dst, arg = item
    d = R[dst] if wide else R[dst].w
    if name == "neg":
        b.neg(d)
    elif name in ("be", "le", "bswap"):
        getattr(b, name)(R[dst], arg)
    elif name == "movsx":
        src, bits = arg
        b.movsx(d, R[src] if wide else R[src].w, bits)
    else:
        kind, v = arg
        operand = (R[v] if wide else R[v].w) if kind == "r" else v
        getattr(b, name)(d, operand)


@st.composite
def body_item(draw):
    kind = draw(st.sampled_from(["alu"] * 8 + ["jmp", "store", "spill", "atomic"]))
    if kind == "alu":
        return ("alu", draw(alu_insn()))
    if kind == "jmp":
        rhs = ("r", draw(reg)) if draw(st.booleans()) else ("k", draw(imm32))
        return ("jmp", draw(st.booleans()), draw(reg), draw(st.sampled_from(CONDS)), rhs,
                draw(st.integers(1, 4)))
    if kind == "store":
        size = draw(st.sampled_from([1, 2, 4, 8]))
        return ("store", draw(reg), size, draw(st.integers(0, WINDOW - size)))
    if kind == "spill":
        return ("spill", draw(reg), draw(reg), draw(st.sampled_from([1, 2, 4, 8])),
                draw(st.booleans()))
    return ("atomic", draw(st.sampled_from(["atomic_add", "atomic_or", "atomic_and", "atomic_xor",
                                             "xchg", "cmpxchg"])),
            draw(reg), draw(st.sampled_from([4, 8])), draw(st.booleans()))


@st.composite
def loads(draw, socket_filter: bool):
    """How each scalar register starts: ('imm', value) or a packet load."""
    out = []
    for r in SCALARS:
        if draw(st.booleans()):
            out.append((r, "imm", draw(st.integers(0, (1 << 64) - 1) | st.sampled_from([0, 1, 1 << 63]))))
        elif socket_filter:
            out.append((r, "abs", draw(st.sampled_from([1, 2, 4])), draw(st.integers(0, WINDOW + 8))))
        else:
            size = draw(st.sampled_from([1, 2, 4, 8]))
            out.append((r, draw(st.sampled_from(["ldx", "ldxsx"])) if size < 8 else "ldx", size,
                        draw(st.integers(0, WINDOW - size))))
    return out


@st.composite
def programs(draw, prog_type: str):
    sf = prog_type == "socket_filter"
    return (draw(loads(sf)), draw(st.lists(body_item(), min_size=1, max_size=25)),
            draw(st.integers(-(1 << 31), (1 << 31) - 1)))


# Mostly long enough for the WINDOW bounds check; sometimes short (the other path).
packets = st.one_of(st.binary(min_size=WINDOW, max_size=120), st.binary(min_size=WINDOW, max_size=80),
                    st.binary(min_size=14, max_size=WINDOW - 1))


def build(prog_type: str, program) -> Builder:
    """The Builder for a drawn program."""
    starts, body, short_ret = program
    sf = prog_type == "socket_filter"
    b = Builder()
    r6, r7, r8 = R[6], R[7], R[8]
    b.mov(r6, R[1])
    if not sf:
        data_off, end_off = (0, 4) if prog_type == "xdp" else (76, 80)
        b.ldx(r7, r6, data_off, 4)
        b.ldx(r8, r6, end_off, 4)
        b.mov(R[1], r7)
        b.add(R[1], WINDOW)
        b.jgt(R[1], r8, "short")
    # LD_ABS/LD_IND clobber r1-r5: park their results on the stack, then load registers.
    for i, (r, kind, *args) in enumerate(starts):
        if kind == "abs":
            size, off = args
            b.ld_abs(size, off)  # into r0; out of bounds ends the program with 0
            b.stx(R[10], -64 - 8 * i, R[0], 8)
    for i, (r, kind, *args) in enumerate(starts):
        if kind == "imm":
            b.ld_imm64(R[r], args[0])
        elif kind == "abs":
            b.ldx(R[r], R[10], -64 - 8 * i, 8)
        else:
            size, off = args
            getattr(b, kind)(R[r], r7, off, size)
    b.st(R[10], -16, 0, 8)  # initialized slot for atomics
    labels = []
    for i, item in enumerate(body):
        for name, at in labels:
            if at == i:
                b.label(name)
        if item[0] == "alu":
            emit_alu(b, item[1])
        elif item[0] == "jmp":
            _, wide, a, cond, (kind, v), skip = item
            name = b.new_label("J")
            labels.append((name, min(i + 1 + skip, len(body))))
            lhs = R[a] if wide else R[a].w
            rhs = (R[v] if wide else R[v].w) if kind == "r" else v
            b.jump_if(lhs, cond, rhs, name)
        elif item[0] == "store":
            _, r, size, off = item
            if sf:
                b.stx(R[10], -40 + off % 24, R[r], size) if (off % 24) % size == 0 else None
            else:
                b.stx(r7, off, R[r], size)
        elif item[0] == "spill":
            _, src, dst, size, signed = item
            b.stx(R[10], -8, R[src], size)
            if signed and size < 8:
                b.ldxsx(R[dst], R[10], -8, size)
            else:
                b.ldx(R[dst], R[10], -8, size)
        else:
            _, name, r, size, fetch = item
            if name in ("xchg", "cmpxchg"):
                getattr(b, name)(R[10], -16, R[r], size)
            else:
                getattr(b, name)(R[10], -16, R[r], size, fetch=fetch)
    for name, at in labels:
        if at == len(body):
            b.label(name)
    # Make every register observable: into the packet, or folded into r0 for socket filters.
    if sf:
        for r in SCALARS[1:]:
            b.mul(R[0], 0x9E37_79B1)
            b.xor(R[0], R[r])
        b.mov(R[1], R[0])
        b.rsh(R[1], 32)
        b.xor(R[0], R[1])
    else:
        for i, r in enumerate(SCALARS):
            b.stx(r7, 8 * i, R[r], 8)
    b.exit()
    if not sf:
        b.label("short")
        b.mov(R[0], short_ret)
        b.exit()
    return b
