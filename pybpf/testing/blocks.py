"""The idioms generated programs are made of, and their near-miss mutations.

Register discipline: ``r6`` holds the context for the whole program (so
``ld_abs`` and helpers taking ``ctx`` work anywhere), ``r7``-``r9`` hold
scalars, ``r0``-``r5`` are temporaries a block sets before it reads them.
Stack layout (offsets from r10)::

    -64 .. -1     scalars; a read only touches bytes written on every path
    -80 .. -73    map key          -112 .. -81   map value (value_size <= 32)
    -144 .. -129  helper buffer    -152          spilled ctx pointer

:mod:`pybpf.testing.shapes` adds, at a modest weight, blocks that need the facts
the kernel carries between registers and stack slots (linked scalars, spill ids,
pointer equality, pruning, s32/u32 deduction).

Each mutation is the valid idiom with one thing broken, and is emitted at the
top level, so the verifier always walks it.
"""

from __future__ import annotations

import random

from pybpf.asm import opcodes as op
from pybpf.asm.builder import Builder
from pybpf.asm.instruction import Instruction
from pybpf.asm.registers import R
from pybpf.program.types import ProgType as T

from . import shapes

__all__ = ["Gen", "MUTATIONS", "MUTATION_TYPES", "MUTATION_COST"]

FP = R[10]
SC = (R[7], R[8], R[9])
KEY, VALUE, BUF, SPILL = -80, -112, -144, -152
GENERAL = 64  # bytes of scalar stack below r10
MUTATION_COST = 16  # instructions reserved for the planted mutation

SKB = (T.SOCKET_FILTER, T.SCHED_CLS, T.CGROUP_SKB)
PKT = (T.XDP, T.SCHED_CLS, T.CGROUP_SKB)  # direct packet access
PKT_WRITE = (T.XDP, T.SCHED_CLS)
LD_ABS = (T.SOCKET_FILTER, T.SCHED_CLS)
TRACING = (T.KPROBE, T.TRACEPOINT, T.RAW_TRACEPOINT)

# (offset, size) of context fields each type may read as scalars.
_SKB_FIELDS = [(0, 4), (4, 4), (8, 4), (12, 4), (16, 4), (32, 4), (36, 4), (40, 4), (68, 4)] + \
    [(48 + 4 * i, 4) for i in range(5)]
CTX_READS = {
    T.XDP: [(12, 4), (16, 4)],
    T.SOCKET_FILTER: _SKB_FIELDS, T.SCHED_CLS: _SKB_FIELDS, T.CGROUP_SKB: _SKB_FIELDS,
    T.KPROBE: [(o, 8) for o in range(0, 168, 8)],
    T.TRACEPOINT: [(o, 8) for o in range(8, 64, 8)] + [(o, 4) for o in range(8, 64, 4)],
    T.RAW_TRACEPOINT: [(o, 8) for o in range(0, 96, 8)],
}
CTX_WRITES = {  # u32 fields a program may store to: __sk_buff cb[0..4] (and mark)
    T.SOCKET_FILTER: [48 + 4 * i for i in range(5)],
    T.SCHED_CLS: [8] + [48 + 4 * i for i in range(5)],
    T.CGROUP_SKB: [8] + [48 + 4 * i for i in range(5)],
}
PKT_FIELDS = {T.XDP: (0, 4), T.SCHED_CLS: (76, 80), T.CGROUP_SKB: (76, 80)}
# One context access per type that the kernel refuses, one step beyond what is allowed.
CTX_INVALID = {
    T.XDP: [("r", 24, 4), ("r", 2, 4), ("w", 12, 4)],
    T.SOCKET_FILTER: [("r", 76, 4), ("w", 0, 4), ("r", 2, 4)],
    T.SCHED_CLS: [("w", 0, 4), ("r", 2, 4), ("r", 192, 4)],
    T.CGROUP_SKB: [("w", 0, 4), ("r", 2, 4), ("r", 72, 4)],
    T.KPROBE: [("r", 168, 8), ("r", 4, 8), ("r", -8, 8)],
    T.TRACEPOINT: [("r", 0, 8), ("r", 4, 4), ("w", 8, 8)],
    T.RAW_TRACEPOINT: [("r", 96, 8), ("w", 0, 8), ("r", 4, 8)],
}

# name -> program types it applies to (None: all)
MUTATION_TYPES: dict[str, tuple | None] = {
    "missing_null_check": None,
    "map_value_oob": None,
    "map_value_unbounded": None,
    "packet_oob": PKT,
    "packet_no_check": PKT,
    "packet_write_readonly": (T.CGROUP_SKB,),
    "uninit_reg": None,
    "unbounded_loop": None,
    "stack_oob": None,
    "stack_misaligned": None,
    "wrong_helper_arg": None,
    "ctx_invalid": None,
    "bad_return": (T.CGROUP_SKB,),
    "div_by_zero": None,
    "shift_oob": None,
    "frame_pointer_write": None,
}
MUTATIONS = tuple(MUTATION_TYPES)

_SIZE_NAME = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
_ALU_OPS = ("add", "sub", "mul", "div", "mod", "or_", "and_", "xor", "lsh", "rsh", "arsh", "mov")
_CONDS = ("==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&")
_NONDET_HELPERS = ("get_prandom_u32", "ktime_get_ns", "get_smp_processor_id",
                   "get_current_pid_tgid", "ktime_get_boot_ns")


class Gen:
    """Generator state: the builder, which stack bytes hold scalars, nesting depth."""

    def __init__(self, rng: random.Random, ptype: T, maps: list, *, deterministic: bool = False):
        self.rng = rng
        self.t = ptype
        self.maps = maps
        self.det = deterministic
        self.b = Builder()
        self.init: set[int] = set()  # stack byte offsets (negative) holding scalar data
        self.depth = 0
        self.early_exits = True

    # ------------------------------------------------------------------ utils
    def sc(self):
        return self.rng.choice(SC)

    def imm(self) -> int:
        r = self.rng
        return r.choice((0, 1, -1, 2, 0x7F, 0xFF, 0x7FFFFFFF, -0x80000000)) if r.random() < 0.3 \
            else r.randint(-1000, 1000)

    def _mark(self, off: int, size: int) -> None:
        self.init.update(range(off, off + size))

    def _readable(self) -> list[tuple[int, int]]:
        return [(o, s) for s in (1, 2, 4, 8) for o in range(-GENERAL, 0, s)
                if all(x in self.init for x in range(o, o + s))]

    def try_block(self, budget: int) -> None:
        """Emit one random block; undo it if it would overrun ``budget`` instructions."""
        b = self.b
        n, labels, init = len(b.insns), dict(b.labels), set(self.init)
        self.block()
        if len(b.insns) > budget:
            del b.insns[n:]
            b.labels.clear()
            b.labels.update(labels)
            b._last_if = None
            self.init = init

    def block(self) -> None:
        t, r = self.t, self.rng
        choices = [(self.alu, 4), (self.stack, 3), (self.ctx_read, 2), (self.map_lookup, 4),
                   (self.map_update, 2), (self.map_delete, 1), (self.loop, 2), (self.cond, 3),
                   (self.atomic_stack, 2), (self.spill_ctx, 1)]
        if not self.det:
            choices.append((self.helper_scalar, 2))
        if t in SKB:
            choices.append((self.ctx_write, 1))
        if t in PKT:
            choices.append((self.packet, 5))
        if t in LD_ABS:
            choices.append((self.ld_abs, 2))
        if t in SKB or t == T.XDP or (t in TRACING and not self.det):
            choices.append((self.helper_buf, 2))
        choices.extend((lambda fn=fn: fn(self), w) for fn, w in shapes.SHAPES)
        if self.depth >= 2:
            choices = [(f, w) for f, w in choices if f not in (self.cond, self.loop)]
        fns, weights = zip(*choices)
        r.choices(fns, weights)[0]()

    # --------------------------------------------------------------- frame
    def prologue(self) -> None:
        b, r = self.b, self.rng
        b.mov(R[6], R[1])
        off, size = r.choice(CTX_READS[self.t])
        b.ldx(R[7], R[6], off, size)
        b.mov(R[9], self.imm())
        if not self.det and r.random() < 0.5:
            b.call("get_prandom_u32")
            b.mov(R[8], R[0])
        else:
            b.mov(R[8], self.imm())

    def ret_value(self, broken: bool = False) -> None:
        b, r, t = self.b, self.rng, self.t
        if broken:  # cgroup_skb must return 0 or 1
            k = r.random()
            if k < 0.4:
                b.mov(R[0], r.choice((2, 3, -1)))
            elif k < 0.7:
                b.mov(R[0], self.sc())
                b.or_(R[0], 2)
            else:
                b.mov(R[0], R[7])
                b.add(R[0], 1)
            return
        k = r.random()
        if t == T.CGROUP_SKB:
            if k < 0.6:
                b.mov(R[0], r.choice((0, 1)))
            else:
                b.mov(R[0], self.sc())
                b.and_(R[0], 1)
        elif t == T.XDP:
            if k < 0.6:
                b.mov(R[0], r.choice((1, 2, 2, 2, 3)))
            else:
                b.mov(R[0], self.sc())
                b.and_(R[0], 3)
        elif k < 0.5:
            b.mov(R[0], r.choice((0, 1, 2, -1, 0xFFFF)))
        else:
            b.mov(R[0], self.sc())

    def epilogue(self, broken: bool = False) -> None:
        self.ret_value(broken)
        self.b.exit()

    # --------------------------------------------------------------- blocks
    def alu(self) -> None:
        b, r = self.b, self.rng
        for _ in range(r.randint(1, 4)):
            dst = self.sc()
            wide = r.random() < 0.6
            d = dst if wide else dst.w
            bits = 64 if wide else 32
            k = r.random()
            if k < 0.06:
                b.neg(d)
            elif k < 0.12:
                getattr(b, r.choice(("be", "le", "bswap")))(dst, r.choice((16, 32, 64)))
            elif k < 0.18:
                b.movsx(d, self.sc() if wide else self.sc().w, r.choice((8, 16, 32) if wide else (8, 16)))
            elif k < 0.24:
                src = self.sc() if r.random() < 0.5 else (self.imm() or 3)
                getattr(b, r.choice(("sdiv", "smod")))(d, src if isinstance(src, int) else
                                                       (src if wide else src.w))
            else:
                name = r.choice(_ALU_OPS)
                if r.random() < 0.5 and name not in ("lsh", "rsh", "arsh"):
                    src = self.imm()
                    if name in ("div", "mod") and src == 0:
                        src = 7
                elif name in ("lsh", "rsh", "arsh") and r.random() < 0.7:
                    src = r.randrange(bits)
                else:
                    s = self.sc()
                    src = s if wide else s.w
                getattr(b, name)(d, src)

    def stack(self) -> None:
        b, r = self.b, self.rng
        for _ in range(r.randint(1, 2)):
            size = r.choice((1, 2, 4, 8, 8))
            off = -size * r.randint(1, GENERAL // size)
            if r.random() < 0.6:
                b.stx(FP, off, self.sc(), size)
            else:
                b.st(FP, off, self.imm(), size)
            self._mark(off, size)
        readable = self._readable()
        if readable and r.random() < 0.8:
            off, size = r.choice(readable)
            if size < 8 and r.random() < 0.3:
                b.ldxsx(self.sc(), FP, off, size)
            else:
                b.ldx(self.sc(), FP, off, size)

    def ctx_read(self) -> None:
        off, size = self.rng.choice(CTX_READS[self.t])
        self.b.ldx(self.sc(), R[6], off, size)

    def ctx_write(self) -> None:
        off = self.rng.choice(CTX_WRITES[self.t])
        if self.rng.random() < 0.5:
            self.b.stx(R[6], off, self.sc(), 4)
        else:
            self.b.st(R[6], off, self.imm(), 4)

    def _key(self, m) -> None:
        b, r = self.b, self.rng
        if r.random() < 0.6:
            hi = m.max_entries + 1 if m.type.name == "ARRAY" else 8
            b.st(FP, KEY, r.randint(0, hi), 4)
        else:
            b.stx(FP, KEY, self.sc(), 4)

    def _value_access(self, m, count: int) -> None:
        b, r, vs = self.b, self.rng, m.value_size
        for _ in range(count):
            k = r.random()
            size = r.choice((1, 2, 4, 8))
            off = size * r.randrange(vs // size)
            if k < 0.35:
                b.ldx(self.sc(), R[0], off, size)
            elif k < 0.55:
                b.stx(R[0], off, self.sc(), size)
            elif k < 0.7:
                b.st(R[0], off, self.imm(), size)
            elif k < 0.85:
                asize = r.choice((4, 8))
                b.atomic_add(R[0], asize * r.randrange(vs // asize), self.sc(), asize,
                             fetch=r.random() < 0.3)
            else:  # variable offset, bounded by a mask
                mask = 1  # the largest power of two <= value_size: offsets 0..mask-1
                while mask << 1 <= vs:
                    mask <<= 1
                b.ldx(R[1], R[0], 0, 8)
                b.and_(R[1], mask - 1)
                b.mov(R[2], R[0])
                b.add(R[2], R[1])
                b.ldx(self.sc(), R[2], 0, 1)

    def map_lookup(self, mutation: str | None = None) -> None:
        b, r = self.b, self.rng
        # An array lookup with a constant in-range key is known non-NULL: use the hash map.
        m = self.maps[0] if mutation == "missing_null_check" else r.choice(self.maps)
        if mutation is None and r.random() < 0.3:
            self.map_update(m)
        self._key(m)
        if mutation == "wrong_helper_arg" and r.random() < 0.5:
            b.mov(R[1], 0)  # a scalar where the map pointer belongs
        else:
            b.ld_map_fd(R[1], m)
        if mutation == "wrong_helper_arg":
            if r.random() < 0.5 or b.insns[-1].opcode != op.LD_IMM64:
                b.mov(R[2], R[6])  # ctx is not a key
            else:
                b.stack_ptr(R[2], -2)  # 4-byte key runs past the frame
        else:
            b.stack_ptr(R[2], KEY)
        b.call("map_lookup_elem")
        vs = m.value_size
        if mutation == "missing_null_check":
            size = r.choice((1, 4, 8))
            b.ldx(self.sc(), R[0], size * r.randrange(vs // size), size)
            return
        with b.if_(R[0], "!=", 0):
            if mutation == "map_value_oob":
                size = r.choice((1, 2, 4, 8))
                off = vs - size + 1 if r.random() < 0.7 else -1
                if r.random() < 0.5:
                    b.ldx(self.sc(), R[0], off, size)
                else:
                    b.stx(R[0], off, self.sc(), size)
            elif mutation == "map_value_unbounded":
                b.ldx(R[1], R[0], 0, 8)
                if r.random() < 0.5:  # mask one bit too wide
                    mask = 1
                    while mask <= vs:
                        mask <<= 1
                    b.and_(R[1], mask - 1)
                b.mov(R[2], R[0])
                b.add(R[2], R[1])
                b.ldx(self.sc(), R[2], 0, 8)
            elif mutation is None:
                self._value_access(m, r.randint(1, 3))

    def map_update(self, m=None, mutation: str | None = None) -> None:
        b, r = self.b, self.rng
        m = m or r.choice(self.maps)
        self._key(m)
        for off in range(0, m.value_size, 8):
            if r.random() < 0.5:
                b.stx(FP, VALUE + off, self.sc(), 8)
            else:
                b.st(FP, VALUE + off, self.imm(), 8)
        b.ld_map_fd(R[1], m)
        b.stack_ptr(R[2], KEY)
        b.stack_ptr(R[3], -4 if mutation else VALUE)  # the value would run past the frame
        b.mov(R[4], r.choice((0, 0, 0, 1, 2)))
        b.call("map_update_elem")
        if r.random() < 0.5:
            b.xor(self.sc(), R[0])

    def map_delete(self) -> None:
        b, r = self.b, self.rng
        m = r.choice([m for m in self.maps if m.type.name != "ARRAY"] or self.maps)
        self._key(m)
        b.ld_map_fd(R[1], m)
        b.stack_ptr(R[2], KEY)
        b.call("map_delete_elem")

    def helper_scalar(self) -> None:
        b, r = self.b, self.rng
        b.call(r.choice(_NONDET_HELPERS))
        if r.random() < 0.5:
            b.mov(self.sc(), R[0])
        else:
            b.add(self.sc(), R[0])

    def helper_buf(self, mutation: str | None = None) -> None:
        b, r, t = self.b, self.rng, self.t
        buf = -8 if mutation else BUF
        n = r.randint(1, 8) if not mutation else r.randint(9, 16)
        # Deterministic runs load from inside the smallest frame (14 bytes), so the load
        # cannot fail and leave the buffer as it was (uninitialized stack differs per run).
        start = r.randint(0, 14 - n) if self.det and n <= 14 else r.randint(0, 32)
        if t in SKB:
            b.mov(R[1], R[6])
            b.mov(R[2], start)
            b.stack_ptr(R[3], buf)
            b.mov(R[4], n)
            b.call("skb_load_bytes")
        elif t == T.XDP:
            b.mov(R[1], R[6])
            b.mov(R[2], start)
            b.stack_ptr(R[3], buf)
            b.mov(R[4], n)
            b.call("xdp_load_bytes")
        elif r.random() < 0.5:
            b.stack_ptr(R[1], buf)
            b.mov(R[2], 16 if not mutation else 24)
            b.call("get_current_comm")
        else:
            b.stack_ptr(R[1], buf)
            b.mov(R[2], n)
            b.mov(R[3], self.sc())
            b.call("probe_read_kernel")
        if not mutation and r.random() < 0.5:  # read only bytes the helper wrote
            b.ldx(self.sc(), FP, BUF, r.choice([s for s in (1, 2, 4, 8) if s <= n]))
        elif r.random() < 0.5:
            b.add(self.sc(), R[0])

    def packet(self, mutation: str | None = None) -> None:
        b, r, t = self.b, self.rng, self.t
        d, de = PKT_FIELDS[t]
        b.ldx(R[2], R[6], d, 4)
        b.ldx(R[3], R[6], de, 4)
        n = r.randint(1, 64)
        if mutation == "packet_no_check":
            size = r.choice((1, 2, 4))
            b.ldx(self.sc(), R[2], r.randrange(n) // size * size, size)
            return
        b.mov(R[4], R[2])
        b.add(R[4], n)
        cond = (R[4], "<=", R[3]) if r.random() < 0.6 else (R[3], ">=", R[4])
        with b.if_(*cond):
            if mutation == "packet_oob":
                size = r.choice([s for s in (1, 2, 4, 8) if s <= n] or [1])
                b.ldx(self.sc(), R[2], n - size + 1, size)
                return
            if mutation == "packet_write_readonly":
                b.st(R[2], r.randrange(n), self.imm(), 1)
                return
            for _ in range(r.randint(1, 3)):
                size = r.choice([s for s in (1, 2, 4, 8) if s <= n])
                off = r.randint(0, n - size)
                if t in PKT_WRITE and r.random() < 0.35:
                    if r.random() < 0.5:
                        b.stx(R[2], off, self.sc(), size)
                    else:
                        b.st(R[2], off, self.imm(), size)
                else:
                    b.ldx(self.sc(), R[2], off, size)

    def ld_abs(self) -> None:
        b, r = self.b, self.rng
        size = r.choice((1, 2, 4))
        if r.random() < 0.7:
            b.ld_abs(size, r.randint(0, 40))
        else:
            b.ld_ind(size, self.sc(), r.randint(0, 40))
        getattr(b, r.choice(("add", "xor", "mov")))(self.sc(), R[0])

    def loop(self, mutation: str | None = None) -> None:
        b, r = self.b, self.rng
        n = r.randint(1, 12)
        if mutation == "unbounded_loop":
            top, end = b.new_label("loop"), b.new_label("endloop")
            b.mov(R[4], 0)
            b.label(top)
            b.jump_if(R[4], ">=", n, end)
            b.mov(R[2], self.imm())  # the counter never moves
            b.ja(top)
            b.label(end)
            return
        init = set(self.init)
        with b.for_range(R[4], 0, n, r.choice((1, 1, 2))):
            for _ in range(r.randint(1, 2)):
                r.choice((self.alu, self.stack, self.atomic_stack))()
        self.init = init

    def cond(self) -> None:
        b, r = self.b, self.rng
        a = self.sc()
        wide = r.random() < 0.7
        rhs = self.sc() if r.random() < 0.3 else self.imm()
        if not wide:
            a = a.w
            rhs = rhs.w if not isinstance(rhs, int) else rhs
        init = set(self.init)
        self.depth += 1
        with b.if_(a, r.choice(_CONDS), rhs):
            self._body()
        self.init = set(init)
        exits = b.insns[-1].opcode == op.EXIT_OP  # an else would follow an exit: unreachable
        if not exits and r.random() < 0.4:
            with b.else_():
                self._body()
            self.init = init
        self.depth -= 1

    def _body(self) -> None:
        # No early exits in mutated programs: a branch decided by a known value could
        # make the rest of the program, and with it the planted mutation, dead code.
        if self.early_exits and self.rng.random() < 0.15:
            self.epilogue()
            return
        for _ in range(self.rng.randint(1, 2)):
            self.block()

    def atomic_stack(self) -> None:
        b, r = self.b, self.rng
        size = r.choice((4, 8))
        off = -size * r.randint(1, GENERAL // size)
        b.stx(FP, off, self.sc(), size)
        self._mark(off, size)
        k = r.random()
        if k < 0.5:
            name = r.choice(("atomic_add", "atomic_or", "atomic_and", "atomic_xor"))
            getattr(b, name)(FP, off, self.sc(), size, fetch=r.random() < 0.5)
        elif k < 0.75:
            b.xchg(FP, off, self.sc(), size)
        else:
            b.mov(R[0], self.sc())
            b.cmpxchg(FP, off, self.sc(), size)
            b.add(self.sc(), R[0])

    def spill_ctx(self) -> None:
        b, r = self.b, self.rng
        b.stx(FP, SPILL, R[6], 8)
        b.ldx(R[1], FP, SPILL, 8)
        off, size = r.choice(CTX_READS[self.t])
        b.ldx(self.sc(), R[1], off, size)

    # ------------------------------------------------------------ mutations
    def mutation(self, name: str) -> None:
        """Emit the near-miss ``name`` (``bad_return`` is the epilogue's job)."""
        b, r = self.b, self.rng
        if name in ("missing_null_check", "map_value_oob", "map_value_unbounded"):
            self.map_lookup(name)
        elif name in ("packet_oob", "packet_no_check", "packet_write_readonly"):
            self.packet(name)
        elif name == "unbounded_loop":
            self.loop(name)
        elif name == "uninit_reg":
            b.call("get_prandom_u32")
            reg = R[r.randint(1, 5)]
            k = r.random()
            if k < 0.5:
                b.add(self.sc(), reg)
            elif k < 0.75:
                b.ldx(self.sc(), reg, 0, 8)
            else:
                b.jump_if(reg, "==", 0, 0)  # a comparison reads it too
        elif name == "stack_oob":
            k = r.random()
            if k < 0.4:
                b.stx(FP, -520, self.sc(), 8)
            elif k < 0.7:
                b.ldx(self.sc(), FP, 0, 8)
            else:
                b.st(FP, -516, self.imm(), 4)
        elif name == "stack_misaligned":
            size = r.choice((2, 4, 8))
            off = -size * r.randint(1, GENERAL // size) - r.randint(1, size - 1)
            b.stx(FP, off, self.sc(), size)
        elif name == "wrong_helper_arg":
            k = r.random()
            if k < 0.4:
                self.map_lookup(name)
            elif k < 0.7:
                self.map_update(mutation=name)
            else:
                self.helper_buf(mutation=name)
        elif name == "ctx_invalid":
            kind, off, size = r.choice(CTX_INVALID[self.t])
            if kind == "r":
                b.ldx(self.sc(), R[6], off, size)
            else:
                b.stx(R[6], off, self.sc(), size)
        elif name == "div_by_zero":
            d = self.sc()
            getattr(b, r.choice(("div", "mod")))(d if r.random() < 0.5 else d.w, 0)
        elif name == "shift_oob":
            d = self.sc()
            wide = r.random() < 0.5
            getattr(b, r.choice(("lsh", "rsh", "arsh")))(d if wide else d.w,
                                                         (64 if wide else 32) + r.randint(0, 2))
        elif name == "frame_pointer_write":
            k = r.random()
            code = op.ALU64 | (op.MOV if k < 0.5 else op.ADD) | op.K
            b.emit(Instruction(code, 10, 0, 0, r.choice((0, 8, -8))))
        elif name != "bad_return":
            raise ValueError(f"unknown mutation {name!r}")
