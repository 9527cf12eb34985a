"""Structured random programs for differential testing (simulator vs kernel).

Programs are built from blocks that exercise one rule each -- stack, map and
packet accesses with random offsets and checks, scalar ALU chains feeding
bounds checks, branches, bounded loops, helper calls and references -- with
parameters drawn so that roughly half land on either side of each rule's
boundary. ``generate(rng)`` returns one Case; ``corpus(n, seed)`` a list.
The hypothesis strategies in the tests draw the same blocks.
"""

from __future__ import annotations

import random

from dsl import (ARRAY, HASH, RINGBUF, Case, R, add, alu, and_, call, exit_, jmp, ld_map, ldx,
                 lookup, mov, mov32, neg, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, rsh, lsh,
                 st, stx, sub, ldxsx, atomic)

PROG_TYPES = [(1, "socket_filter"), (2, "kprobe"), (3, "sched_cls"), (5, "tracepoint"), (6, "xdp"),
              (7, "perf_event"), (8, "cgroup_skb"), (17, "raw_tracepoint")]
# A ctx offset of each type that reads a 4-byte scalar, and one that reads 8 bytes.
_SCALAR4 = {1: 0, 2: 0, 3: 0, 5: 8, 6: 12, 7: 0, 8: 0, 17: 0}
_SIZE_OK = {1: 4, 2: 8, 3: 4, 5: 8, 6: 4, 7: 8, 8: 4, 17: 8}
CONDS = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset"]
ALUS = ["add", "sub", "mul", "and", "or", "xor", "lsh", "rsh", "arsh", "div", "mod"]


def _edge(rng, limit):
    """A value near ``limit`` (either side), or anywhere."""
    k = rng.random()
    if k < 0.6:
        return limit + rng.randint(-3, 3)
    return rng.randint(-16, limit + 16)


def _scalar(rng, pt, dst):
    """Load an unknown scalar into ``dst`` from ctx (r6 holds ctx) and shape it."""
    size = _SIZE_OK[pt]
    out = [ldx(size, dst, r6, _SCALAR4[pt])]
    k = rng.random()
    if k < 0.3:
        out.append(and_(dst, rng.choice([7, 15, 31, 63, 127, 255, 0xfff])))
    elif k < 0.5:
        out.append(rsh(dst, rng.randint(20, 63) if size == 8 else rng.randint(20, 31)))
    elif k < 0.6:
        out.append(alu("and", dst, rng.choice([7, 31, 255]), w32=True))
    elif k < 0.7:
        out.append(alu("mod", dst, rng.randint(1, 64)))
    return out


def _bounds_check(rng, reg, limit, skip):
    """``if reg OP K goto +skip`` that keeps reg <= ~limit on fall-through (or not quite)."""
    op = rng.choice(["jgt", "jge", "jsgt", "jsge", "jgt32", "jge32"])
    w32 = op.endswith("32")
    op = op.removesuffix("32")
    return [jmp(op, reg, _edge(rng, limit), skip, w32=w32)]


def blk_stack(rng, pt):
    off = rng.choice([-8, -16, -64, -256, -512, -520, 0, -4, -1, -7, -504, -508])
    size = rng.choice([1, 2, 4, 8])
    if rng.random() < 0.5:
        return [st(size, r10, off, rng.randint(-5, 5)), ldx(size, r7, r10, off)]
    return [mov(r7, 3), stx(size, r10, off, r7), ldx(rng.choice([1, 2, 4, 8]), r7, r10, off)]


def blk_stack_var(rng, pt):
    mask = rng.choice([7, 15, 63, 255, 511, 1023])
    off = rng.choice([-1, -8, -16, -512, -600, 0])
    size = rng.choice([1, 2, 4, 8])
    return [*_scalar(rng, pt, r2), and_(r2, mask), neg(r2), mov(r3, r10), add(r3, r2),
            rng.choice([st(size, r3, off, 0), ldx(size, r7, r3, off)])]


def blk_map(rng, pt):
    m = rng.choice([ARRAY, HASH])
    out = [*lookup(m, key_val=rng.choice([0, 1, 3, 4, 100]))]
    off = _edge(rng, m.value_size - 8)
    size = rng.choice([1, 2, 4, 8])
    access = rng.choice([ldx(size, r7, r0, off), st(size, r0, off, 1)])
    if rng.random() < 0.8:
        out += [jmp("jeq", r0, 0, 1), access]
    else:
        out.append(access)
    return out


def blk_map_var(rng, pt):
    m = rng.choice([ARRAY, HASH])
    out = [*lookup(m), jmp("jeq", r0, 0, 0)]
    body = [*_scalar(rng, pt, r2)]
    size = rng.choice([1, 4, 8])
    tail = [add(r0, r2), ldx(size, r7, r0, rng.choice([0, 0, 4, -1]))]
    if rng.random() < 0.7:
        chk = _bounds_check(rng, r2, m.value_size - size, len(tail))
        body += chk
    body += tail
    out[-1] = jmp("jeq", r0, 0, len(body))
    return out + body


def blk_pkt(rng, pt):
    if pt not in (3, 6, 8):
        return blk_stack(rng, pt)
    d, e = (0, 4) if pt == 6 else (76, 80)
    n = rng.choice([1, 4, 8, 14, 20, 34, 60])
    off = _edge(rng, n - 4)
    size = rng.choice([1, 2, 4, 8])
    acc = ldx(size, r7, r2, off)
    op = rng.choice(["jgt", "jge", "jlt", "jle", "rgt", "rge"])
    out = [ldx(4, r2, r6, d), ldx(4, r3, r6, e), mov(r4, r2), add(r4, n)]
    if op in ("jgt", "jge"):
        out += [jmp(op, r4, r3, 1), acc]
    elif op == "rgt":
        out += [jmp("jlt", r3, r4, 1), acc]
    elif op == "rge":
        out += [jmp("jle", r3, r4, 1), acc]
    else:
        out += [jmp(op, r4, r3, 1), ja_(1), acc]
    return out


def ja_(off):
    from dsl import ja
    return ja(off)


def blk_alu(rng, pt):
    out = [*_scalar(rng, pt, r8)]
    for _ in range(rng.randint(1, 4)):
        name = rng.choice(ALUS)
        w32 = rng.random() < 0.3
        if name in ("lsh", "rsh", "arsh"):
            imm = rng.choice([0, 1, 3, 31, 32, 63])
        elif name in ("div", "mod"):
            imm = rng.choice([0, 1, 3, 16])
        else:
            imm = rng.randint(-100, 100)
        if rng.random() < 0.2:
            out += [mov(r9, rng.randint(0, 40)), alu(name, r8, R(9), w32=w32)]
        else:
            out.append(alu(name, r8, imm, w32=w32))
    # use r8 as an offset into a map value to test the bounds the ALU chain produced
    out += [mov(r9, r8)]
    body = [*lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0)]
    return out + body


def blk_branch(rng, pt):
    out = [*_scalar(rng, pt, r7)]
    cond = rng.choice(CONDS)
    w32 = rng.random() < 0.3
    inner = rng.choice([blk_stack, blk_map, blk_alu])(rng, pt)
    if rng.random() < 0.5:
        return out + [jmp(cond, r7, rng.randint(-5, 300), len(inner), w32=w32)] + inner
    return out + [mov(r9, rng.randint(0, 300)), jmp(cond, r7, R(9), len(inner), w32=w32)] + inner


def blk_loop(rng, pt):
    n = rng.choice([1, 5, 30, 200])
    step = rng.choice([1, 2, 7])
    cond = rng.choice(["jlt", "jle", "jne", "jslt"])
    if cond == "jne":
        n = step * rng.choice([1, 5, 30])  # reachable: a runaway loop would take 1M insns
    body = [add(r7, step), st(8, r10, -40, 0)]
    return [mov(r7, 0), *body, jmp(cond, r7, n, -(len(body) + 1))]


def blk_helper(rng, pt):
    k = rng.random()
    if k < 0.3:
        return [call(rng.choice([5, 7, 8, 14, 35]))]
    if k < 0.6:
        size = rng.choice([0, 1, 8, 16, 24, 600])
        off = rng.choice([-8, -16, -24, -32, -512])
        return [mov(r1, r10), add(r1, off), mov(r2, size), mov(r3, 0), call(rng.choice([4, 113, 16]))]
    sz = rng.choice([0, 8, 16])
    acc_off = _edge(rng, max(sz - 8, 0))
    submit = [mov(r1, r0), mov(r2, 0), call(rng.choice([132, 133]))]
    body = [st(8, r0, acc_off, 1)] if rng.random() < 0.7 else []
    body += submit if rng.random() < 0.85 else []
    return [ld_map(r1, RINGBUF), mov(r2, sz), mov(r3, 0), call(131),
            jmp("jeq", r0, 0, len(body)) if rng.random() < 0.9 else mov(r9, 0), *body]


def blk_ctx(rng, pt):
    """A random ctx access: offsets and sizes around each type's fields."""
    off = rng.choice([0, 4, 8, 12, 16, 20, 24, 48, 64, 68, 72, 76, 80, 88, 96, 140, 144, 152, 160,
                      164, 168, 176, 180, 184, 188, 192, 2, 6, 7])
    size = rng.choice([1, 2, 4, 8])
    k = rng.random()
    if k < 0.7:
        return [ldx(size, r7, r6, off)]
    if k < 0.85:
        return [st(size, r6, off, 0)]
    return [mov(r7, 1), stx(size, r6, off, r7)]


def blk_chaos(rng, pt):
    """A few arbitrary but well-formed instructions on random registers."""
    out = []
    regs = [r0, r1, r2, r3, r4, r5, r7, r8, r9, r10]
    for _ in range(rng.randint(1, 3)):
        k = rng.random()
        d, s_ = rng.choice(regs), rng.choice(regs + [r6])
        if k < 0.35:
            name = rng.choice(ALUS + ["mov", "neg"])
            if name == "neg":
                out.append(neg(d))
            elif rng.random() < 0.5:
                out.append(alu(name, d, R(s_), w32=rng.random() < 0.3))
            else:
                imm = rng.choice([0, 1, 8, -8, 63, 64, 4096])
                out.append(alu(name, d, imm, w32=rng.random() < 0.3))
        elif k < 0.6:
            out.append(ldx(rng.choice([1, 2, 4, 8]), d, s_, rng.choice([0, -8, 8, -16, 4])))
        elif k < 0.8:
            out.append(stx(rng.choice([1, 2, 4, 8]), d, rng.choice([0, -8, -16, 8]), s_))
        else:
            out.append(mov(d, R(s_)))
    return out


def blk_spill(rng, pt):
    """Spill a pointer or bounded scalar, clobber, fill (maybe narrowly), then use it."""
    src = rng.choice(["ctx", "fp", "scalar", "map"])
    off = rng.choice([-8, -16, -24])
    fill = rng.choice([8, 8, 8, 4, 1])
    if src == "ctx":
        return [stx(8, r10, off, r6), mov(r7, 0), ldx(fill, r7, r10, off), ldx(4, r7, r7, _SCALAR4[pt])]
    if src == "fp":
        return [mov(r7, r10), add(r7, -32), stx(8, r10, off, r7), ldx(fill, r8, r10, off), st(8, r8, 0, 1)]
    if src == "map":
        body = [stx(8, r10, off, r0), ldx(fill, r8, r10, off), ldx(4, r7, r8, rng.choice([0, 44, 45]))]
        return [*lookup(ARRAY), *body]
    size = rng.choice([8, 4])
    out = [*_scalar(rng, pt, r7), and_(r7, 31), stx(size, r10, off, r7), ldx(fill, r8, r10, off)]
    return out + [*lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, rng.choice([0, 16, 17]))]


def blk_signed(rng, pt):
    """Signed/32-bit refinements, sign extension and byte swaps feeding a map index."""
    out = [*_scalar(rng, pt, r8)]
    k = rng.random()
    if k < 0.25:
        out.append(alu("mov", r8, R(8), off=rng.choice([8, 16, 32])))
    elif k < 0.4:
        from pybpf.asm.instruction import Instruction
        from pybpf.asm import opcodes as op
        out.append(Instruction(op.ALU | op.END | rng.choice([op.TO_LE, op.TO_BE]), 8, 0, 0,
                               rng.choice([16, 32, 64])))
    elif k < 0.55:
        out += [stx(8, r10, -8, r8), ldxsx(rng.choice([1, 2, 4]), r8, r10, -8)]
    lo, hi = rng.randint(-10, 5), rng.randint(10, 50)
    chk = [jmp(rng.choice(["jsgt", "jgt"]), r8, hi, 4, w32=rng.random() < 0.4),
           jmp(rng.choice(["jslt", "jlt"]), r8, lo, 3, w32=rng.random() < 0.4)]
    return out + [*lookup(ARRAY)[:-1], call(1)] + chk + [add(r0, r8), ldx(1, r7, r0, 0), ja_(0)]


def blk_diamonds(rng, pt):
    """Branches that join again, so state pruning matters."""
    out = []
    for _ in range(rng.randint(2, 6)):
        out += [*_scalar(rng, pt, r7), jmp(rng.choice(CONDS), r7, rng.randint(0, 9), 2),
                mov(r8, rng.randint(0, 5)), ja_(1), mov(r8, rng.randint(0, 60))]
    return out + [*lookup(ARRAY), add(r0, r8), ldx(1, r7, r0, 0)]


def blk_imprecise(rng, pt):
    """Many diamonds assigning a scalar that is later stored (imprecise) or used as an offset
    (precise), sometimes out of bounds on one path only: pruning must not hide that path."""
    out = [mov(r9, 0)]
    for _ in range(rng.randint(3, 14)):
        a, b = rng.randint(0, 6), rng.randint(0, 60)
        out += [ldx(_SIZE_OK[pt], r7, r6, _SCALAR4[pt]), jmp(rng.choice(CONDS), r7, rng.randint(0, 9), 2),
                mov(r8, a), ja_(1), mov(r8, b), alu(rng.choice(["add", "or", "mov"]), r9, R(8))]
    use = rng.random()
    tail = [*lookup(ARRAY)]
    if use < 0.4:
        tail += [stx(8, r0, 0, r9)]
    elif use < 0.8:
        tail += [and_(r9, rng.choice([7, 31, 63])), add(r0, r9), ldx(1, r7, r0, 0)]
    else:
        tail += [add(r0, r8), ldx(8, r7, r0, 0)]
    return out + tail


def blk_nullcmp(rng, pt):
    """Null checks in unusual shapes: on copies, jne, against a register, twice."""
    out = [*lookup(HASH), mov(r7, r0)]
    k = rng.random()
    if k < 0.3:
        out += [jmp("jne", r7, 0, 1), ja_(1), ldx(8, r8, r0, 0)]
    elif k < 0.5:
        out += [mov(r9, 0), jmp("jeq", r0, R(9), 1), ldx(8, r8, r7, 0)]
    elif k < 0.7:
        out += [jmp("jeq", r0, 0, 1, w32=True), ldx(8, r8, r7, 0)]
    else:
        out += [jmp("jeq", r7, 0, 2), add(r7, rng.choice([8, 16, -8])), ldx(8, r8, r7, 0)]
    return out


def blk_ldabs(rng, pt):
    if pt not in (1, 3):
        return blk_ctx(rng, pt)
    from pybpf.asm.instruction import Instruction
    from pybpf.asm import opcodes as op
    sz = rng.choice([op.B, op.H, op.W])
    if rng.random() < 0.5:
        return [Instruction(op.LD | op.ABS | sz, 0, 0, 0, rng.randint(0, 60)), mov(r7, R(0))]
    return [mov(r7, 2), Instruction(op.LD | op.IND | sz, 0, 7, 0, 4)]


def blk_subprog(rng, pt):
    """Placeholder: subprograms are added by generate() after the main body."""
    return []


BLOCKS = [blk_stack, blk_stack_var, blk_map, blk_map_var, blk_pkt, blk_alu, blk_branch, blk_loop,
          blk_helper, blk_ctx, blk_chaos, blk_spill, blk_signed, blk_diamonds, blk_nullcmp, blk_ldabs,
          blk_imprecise, blk_imprecise]


def generate(rng: random.Random, name: str = "gen") -> Case:
    pt, _ = rng.choice(PROG_TYPES)
    insns = [mov(r6, r1)]
    for _ in range(rng.randint(1, 3)):
        insns += rng.choice(BLOCKS)(rng, pt)
    if pt == 8:
        if rng.random() < 0.7:
            insns += [mov(r0, rng.choice([0, 1, 1, 2]))]
        else:
            insns += [*_scalar(rng, pt, r0)]
    else:
        insns += [mov(r0, rng.randint(0, 3))]
    insns.append(exit_())
    if rng.random() < 0.15:
        insns = _with_subprog(rng, pt, insns)
    return Case(name, pt, insns, expect=None, tags=("generated",))


def _with_subprog(rng, pt, main):
    """Prepend a call to a subprogram that gets a stack pointer and a scalar."""
    from dsl import call_local
    off = rng.choice([-8, -16, -64])
    body = [st(8, r1, rng.choice([0, 8, -8]), 1), mov(r0, R(2)) if rng.random() < 0.8 else mov(r9, 0),
            exit_()]
    pre = [mov(r1, r10), add(r1, off), mov(r2, rng.randint(0, 3)), call_local(0)]
    prog = pre + main
    prog[3] = call_local(len(prog) - 3)
    return prog + body


def corpus(n: int, seed: int = 1) -> list[Case]:
    rng = random.Random(seed)
    return [generate(rng, f"gen{seed}_{i}") for i in range(n)]


UNPRIV_TYPES = (1, 3, 6, 8)  # types a loader with CAP_BPF + CAP_NET_ADMIN (no CAP_PERFMON) may load


def corpus_unpriv(n: int, seed: int = 1) -> list[Case]:
    """Generated programs of the networking types, to be loaded without CAP_PERFMON."""
    rng = random.Random(seed ^ 0x5EC)
    out = []
    while len(out) < n:
        c = generate(rng, f"ugen{seed}_{len(out)}")
        if c.prog_type in UNPRIV_TYPES:
            c.priv = False
            out.append(c)
    return out
