"""Program-wide checks before path exploration: subprograms, jump ranges, reachability.

Mirrors the kernel's check_subprogs() and check_cfg(): every message names the
*slot* index, as the kernel counts instructions (ld_imm64 takes two). Also
computes which registers are live before each instruction, so that state
pruning can ignore dead registers as the kernel does (compute_live_registers()).
"""

from __future__ import annotations

from pybpf.asm import opcodes as op

from .errors import Reject

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["Program", "build", "check_cfg", "live_regs"]


class Program:
    """Instructions by slot index: ``insns[i]`` is None for the second slot of an ld_imm64."""

    __slots__ = ("insns", "subprogs", "live", "prune_points", "logical", "need")

    def __init__(self, insns, logical):
        self.insns = insns
        self.logical = logical  # slot index -> logical index
        self.subprogs: list[int] = [0]
        self.live: list[int] = []
        self.need: list[int] = []
        self.prune_points: set[int] = set()

    def __len__(self) -> int:
        return len(self.insns)

    def has_back_edge(self) -> bool:
        """True when some jump goes backwards (a loop, bounded or not)."""
        for i, ins in enumerate(self.insns):
            if ins is None:
                continue
            code = ins.opcode
            if code & 7 in (op.JMP, op.JMP32) and code & 0xF0 not in (op.EXIT, op.CALL):
                if _jump_target(i, ins) <= i:
                    return True
        return False


def build(logical_insns) -> Program:
    insns, logical = [], []
    for i, ins in enumerate(logical_insns):
        insns.append(ins)
        logical.append(i)
        if ins.opcode == op.LD_IMM64:
            insns.append(None)
            logical.append(i)
    return Program(insns, logical)


def _is_pseudo_call(ins) -> bool:
    return ins.opcode == op.CALL_OP and ins.src == op.PSEUDO_CALL


def _is_pseudo_func(ins) -> bool:
    return ins.opcode == op.LD_IMM64 and ins.src == op.PSEUDO_FUNC


def _jump_target(i: int, ins) -> int:
    if ins.opcode == (op.JMP32 | op.JA):
        return i + ins.imm + 1
    return i + ins.off + 1


def check_subprogs(prog: Program) -> None:
    n = len(prog)
    starts = {0}
    for i, ins in enumerate(prog.insns):
        if ins is None:
            continue
        if _is_pseudo_call(ins) or _is_pseudo_func(ins):
            t = i + ins.imm + 1 if _is_pseudo_call(ins) else i + (ins.imm & 0xFFFFFFFF) + 1
            if _is_pseudo_func(ins):
                t = i + _s32(ins.imm & 0xFFFFFFFF) + 1
            else:
                t = i + ins.imm + 1
            if t < 0 or t >= n:
                raise Reject("call to invalid destination" if _is_pseudo_call(ins)
                             else "function offset out of range", i)
            starts.add(t)
    prog.subprogs = sorted(starts)
    bounds = prog.subprogs + [n]
    cur = 0
    for i, ins in enumerate(prog.insns):
        start, end = bounds[cur], bounds[cur + 1]
        if ins is not None:
            cls = ins.opcode & 7
            if cls in (op.JMP, op.JMP32) and (ins.opcode & 0xF0) not in (op.EXIT, op.CALL):
                t = _jump_target(i, ins)
                if t < start or t >= end:
                    raise Reject(f"jump out of range from insn {i} to {t}", i)
        if i == end - 1:
            last = prog.insns[i]
            if last is None or last.opcode not in (op.EXIT_OP, op.JA_OP, op.JMP32 | op.JA):
                raise Reject("last insn is not an exit or jmp", i)
            cur += 1


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def successors(prog: Program, i: int) -> list[int]:
    ins = prog.insns[i]
    code = ins.opcode
    cls = code & 7
    nxt = i + (2 if code == op.LD_IMM64 else 1)
    if _is_pseudo_func(ins):
        # visit_func_call_insn(): a callback's address makes its body reachable
        return [nxt, i + _s32(ins.imm) + 1]
    if cls in (op.JMP, op.JMP32):
        jop = code & 0xF0
        if jop == op.EXIT:
            return []
        if jop == op.CALL:
            if _is_pseudo_call(ins):
                return [nxt, i + ins.imm + 1]
            return [nxt]
        if jop == op.JA:
            return [_jump_target(i, ins)]
        return [nxt, _jump_target(i, ins)]
    return [nxt]


def check_cfg(prog: Program) -> None:
    """Depth-first walk from insn 0: out-of-range jumps, unreachable insns, ldimm64 middles."""
    n = len(prog)
    seen = [False] * n
    stack = [0]
    seen[0] = True
    prune = prog.prune_points
    while stack:
        t = stack.pop()
        ins = prog.insns[t]
        if ins is None:
            continue  # reported below as a jump into the middle of an ldimm64
        succ = successors(prog, t)
        cls = ins.opcode & 7
        # visit_insn(): prune points are jump targets, conditional jumps themselves,
        # and the instruction after any call (helper or subprogram)
        if cls in (op.JMP, op.JMP32) and (ins.opcode & 0xF0) not in (op.EXIT, op.CALL):
            prune.add(succ[-1])
            if (ins.opcode & 0xF0) != op.JA:
                prune.add(t)
        elif cls == op.JMP and (ins.opcode & 0xF0) == op.CALL:
            prune.add(succ[0])
            if _is_pseudo_call(ins):
                prune.add(t)
        for w in reversed(succ):
            if w < 0 or w >= n:
                raise Reject(f"jump out of range from insn {t} to {w}", t)
            if not seen[w]:
                seen[w] = True
                stack.append(w)
    i = 0
    while i < n:
        ins = prog.insns[i]
        if ins is None:
            raise Reject(f"jump into the middle of ldimm64 insn {i - 1}", i - 1)
        if not seen[i]:
            raise Reject(f"unreachable insn {i}", i)
        if ins.opcode == op.LD_IMM64 and seen[i + 1]:
            raise Reject(f"jump into the middle of ldimm64 insn {i}", i)
        i += 2 if ins.opcode == op.LD_IMM64 else 1


def _uses_defs(ins) -> tuple[int, int]:
    """Register bitmasks read and written by one instruction (for liveness)."""
    code = ins.opcode
    cls = code & 7
    d, s = 1 << ins.dst, 1 << ins.src
    if cls in (op.ALU, op.ALU64):
        aop = code & 0xF0
        if aop == op.MOV:
            return (s if code & op.X else 0), d
        if aop in (op.NEG, op.END):
            return d, d
        return d | (s if code & op.X else 0), d
    if cls == op.LDX:
        return s, d
    if cls == op.ST:
        return d, 0
    if cls == op.STX:
        if (code & 0xE0) == op.ATOMIC:
            imm = ins.imm
            w = 0
            if imm & op.FETCH:
                w = (1 << 0) if imm == op.CMPXCHG else s
            return d | s | (1 if imm == op.CMPXCHG else 0), w
        return d | s, 0
    if cls == op.LD:
        if code == op.LD_IMM64:
            return 0, d
        return (1 << 6) | (s if (code & 0xE0) == op.IND else 0), 0x3F
    if cls in (op.JMP, op.JMP32):
        jop = code & 0xF0
        if jop == op.EXIT:
            return 1, 0
        if jop == op.CALL:
            # A helper reads only its parameters (the kernel's get_call_summary());
            # subprogram and kfunc calls, and unknown helpers, count as reading r1-r5.
            return (_helper_reads(ins.imm) if ins.src == 0 else 0x3E), 0x3F
        if jop == op.JA:
            return 0, 0
        return d | (s if code & op.X else 0), 0
    return 0x7FF, 0


_HELPER_PARAMS: dict[int, int] = {}


def _helper_reads(func_id: int) -> int:
    """r1..rN for a helper of N parameters (the most any program type's prototype has)."""
    if not _HELPER_PARAMS:
        from .helpers_proto import PROTOS, PROTOS_BY_TYPE
        for fid, proto in PROTOS.items():
            _HELPER_PARAMS[fid] = len(proto.args)
        for (_, fid), proto in PROTOS_BY_TYPE.items():
            _HELPER_PARAMS[fid] = max(_HELPER_PARAMS.get(fid, 0), len(proto.args))
    n = _HELPER_PARAMS.get(func_id)
    return 0x3E if n is None else (1 << (n + 1)) - 2


_PRECISE_ARGS: dict[int, int] = {}
_TAIL_CALL = 12


def _helper_precise_args(func_id: int) -> int:
    """The argument registers a helper call makes precise: its size arguments (the kernel's
    check_mem_size_reg() and ARG_CONST_ALLOC_SIZE_OR_ZERO) and tail_call's index
    (record_func_key()); the others are only type-checked. Unknown helpers: all of r1-r5."""
    if not _PRECISE_ARGS:
        from .helpers_proto import PROTOS, PROTOS_BY_TYPE
        for (_, fid), proto in [((0, k), v) for k, v in PROTOS.items()] + list(PROTOS_BY_TYPE.items()):
            bits = 0
            for n, kind in enumerate(proto.args, start=1):
                if kind in ("size", "size0", "alloc0"):
                    bits |= 1 << n
            _PRECISE_ARGS[fid] = _PRECISE_ARGS.get(fid, 0) | bits
        _PRECISE_ARGS[_TAIL_CALL] |= 1 << 3
    return _PRECISE_ARGS.get(func_id, 0x3E)


def _backward_fixpoint(prog: Program, transfer: Callable[[int, Any, int, list[int]], int]) -> list[int]:
    """Solve a backward may-analysis: per insn, a bit set from the union of its successors'.

    ``transfer(i, ins, out, facts)`` gives insn i's set from ``out`` (the union over
    its successors; ``facts`` is the solution so far); holes in ``prog.insns``
    (ld_imm64 second slots) stay 0.
    """
    n = len(prog)
    facts = [0] * n
    succs = [successors(prog, i) if ins is not None else [] for i, ins in enumerate(prog.insns)]
    changed = True
    while changed:
        changed = False
        for i in range(n - 1, -1, -1):
            ins = prog.insns[i]
            if ins is None:
                continue
            out = 0
            for w in succs[i]:
                if 0 <= w < n:
                    out |= facts[w]
            new = transfer(i, ins, out, facts)
            if new != facts[i]:
                facts[i] = new
                changed = True
    return facts


def live_regs(prog: Program) -> list[int]:
    """Backward may-live analysis: bit r set in live[i] if ri may be read from insn i on."""
    ud = [(_uses_defs(ins) if ins is not None else (0, 0)) for ins in prog.insns]
    n = len(prog)

    def transfer(i: int, ins: Any, out: int, live: list[int]) -> int:
        use, dfn = ud[i]
        if _is_pseudo_call(ins):  # the callee's reads are its own: live after the return
            out = live[i + 1] if i + 1 < n else 0
            use, dfn = 0x3E, 0x3F
        return use | (out & ~dfn)

    prog.live = _backward_fixpoint(prog, transfer)
    return prog.live


SLOT0 = 16
ALL_SLOTS = ((1 << 64) - 1) << SLOT0
ALL = ALL_SLOTS | 0x7FF
_KEY_HELPERS = {1, 2, 3, 12, 87, 88, 89}


def _slots(off: int, size: int) -> int:
    """Bits of the stack slots an access at fp+off of ``size`` bytes touches."""
    bits = 0
    for b in (off, off + size - 1):
        if -512 <= b < 0:
            bits |= 1 << (SLOT0 + (-b - 1) // 8)
    return bits


def precision_needs(prog: Program, decided: dict[int, int] | None = None,
                    linked: dict[int, set[int]] | None = None) -> list[int]:
    """Which scalars' exact values may matter from each insn on (a superset of the
    registers and stack slots the kernel's mark_chain_precision() would mark).

    Scalars outside this set are compared loosely when pruning, as the kernel
    does for imprecise scalars. Programs with bpf-to-bpf calls get no trimming.

    A conditional jump makes its operands precise only when the walk found its
    outcome decided by known values (check_cond_jmp_op()); the walk reports those
    in ``decided`` (insn -> register bits) and re-solves. ``linked`` holds, per
    jump, the sets of registers/stack slots sharing a scalar id there: the
    kernel's jump history makes all of a set precise once one of them is.
    """
    n = len(prog)
    if len(prog.subprogs) > 1:
        return [ALL] * n
    decided = decided or {}
    linked = linked or {}

    def transfer(i: int, ins: Any, out: int, need: list[int]) -> int:
        return _linked_transfer(i, ins, out, decided, linked)

    return _backward_fixpoint(prog, transfer)


def _linked_transfer(i: int, ins: Any, out: int, decided: dict[int, int],
                     linked: dict[int, set[int]]) -> int:
    """The need before insn ``i`` from the need after it: registers and slots linked at
    ``i`` (one scalar id) are needed together, on both sides of the instruction."""
    for m in linked.get(i, ()):
        if out & m:
            out |= m
    out = _need_transfer(ins, out) | decided.get(i, 0)
    for m in linked.get(i, ()):
        if out & m:
            out |= m
    return out


def precision_graph(prog: Program) -> tuple[list[list[int]], list[list[int]]]:
    """(successors, predecessors) per insn, for precision_grow()."""
    n = len(prog)
    succs = [[w for w in successors(prog, i) if 0 <= w < n] if ins is not None else []
             for i, ins in enumerate(prog.insns)]
    preds: list[list[int]] = [[] for _ in range(n)]
    for i, ws in enumerate(succs):
        for w in ws:
            preds[w].append(i)
    return succs, preds


def precision_grow(prog: Program, need: list[int], decided: dict[int, int],
                   linked: dict[int, set[int]], start: int, graph) -> None:
    """Re-solve ``need`` in place after the walk added facts at insn ``start``.

    Facts only grow, so a worklist over predecessors reaches the same least
    fixpoint as precision_needs() without re-solving the whole program.
    """
    if len(prog.subprogs) > 1:
        return
    succs, preds = graph
    work = [start]
    while work:
        i = work.pop()
        ins = prog.insns[i]
        if ins is None:
            continue
        out = 0
        for w in succs[i]:
            out |= need[w]
        new = _linked_transfer(i, ins, out, decided, linked) | need[i]
        if new != need[i]:
            need[i] = new
            work.extend(preds[i])


def _need_transfer(ins, out: int) -> int:
    code = ins.opcode
    cls = code & 7
    d, s = 1 << ins.dst, 1 << ins.src
    if cls in (op.ALU, op.ALU64):
        aop = code & 0xF0
        x = bool(code & op.X)
        if aop == op.MOV:
            if out & d:
                out &= ~d
                if x:
                    out |= s
            return out
        if x and out & d:  # ptr += scalar: the walk marks the scalar (Env.mark_precise())
            out |= s
        return out
    if cls == op.LDX:
        if out & d:
            out &= ~d
            if ins.src == 10:
                out |= _slots(ins.off, op.SIZE_BYTES[code & 0x18])
            else:
                out |= ALL_SLOTS
        return out
    if cls in (op.ST, op.STX):
        size = op.SIZE_BYTES[code & 0x18]
        atomic = cls == op.STX and (code & 0xE0) == op.ATOMIC
        if ins.dst == 10:
            sl = _slots(ins.off, size)
            hit = out & sl
            if size == 8 and not atomic and not ins.off % 8:
                out &= ~sl
            if hit and cls == op.STX:
                out |= s
        elif cls == op.STX and out & ALL_SLOTS:
            out |= s
        if atomic:
            out |= s | (1 if ins.imm == op.CMPXCHG else 0)
        return out
    if cls == op.LD:
        if code == op.LD_IMM64:
            return out & ~d
        return (out & ~0x3F) | (1 << 6) | (s if (code & 0xE0) == op.IND else 0)
    jop = code & 0xF0
    if jop == op.EXIT:
        return out | 1
    if jop == op.CALL:
        out = (out & ~0x3F) | (_helper_precise_args(ins.imm) if ins.src == 0 else 0x3E)
        if ins.src != 0 or ins.imm in _KEY_HELPERS:
            out |= ALL_SLOTS
        return out
    if jop == op.JA:
        return out
    if code & op.X and out & (d | s):
        out |= d | s  # dreg <cond> sreg: both or neither (backtrack_insn())
    return out
