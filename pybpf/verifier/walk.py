"""Path exploration: the main loop, the branch worklist and checkpoints (their equivalence
test, which decides pruning, is in prune.py).

do_check(), push_stack()/pop_stack() and is_state_visited() from
kernel/bpf/verifier.c. Paths are explored depth-first, fall-through first,
the pushed branch later, as the kernel does, so the first error found is the
kernel's. States are checkpointed at prune points; a path is cut when an
already fully explored state covers it, and a loop that comes back to an
identical state is an infinite loop.

Without CAP_PERFMON the kernel also walks speculative paths (branch.py pushes
the direction a mispredicted branch would take). Such a path ends where the
kernel fences speculation: an insn it failed at with EPERM/EACCES/EINVAL (the
kernel patches a barrier there instead of refusing, 6.17+) and a stack store it
sanitizes for Spectre v4. A speculative checkpoint never prunes, nor counts as
a loop of, a non-speculative state.
"""

from __future__ import annotations

from pybpf.asm import opcodes as op

from . import scalar as sc
from .alu import check_alu
from .branch import check_cond_jmp
from .caps import PRIVILEGED
from .calls import check_exit, check_helper_call, check_subprog_call
from .errors import Reject
from .mem import check_mem_access
from .prune import exact_key, states_equal
from .sanitize import spec_v4_store
from .state import (CONST_PTR_TO_MAP, NOT_INIT, PTR_TO_CTX, PTR_TO_FLOW_KEYS, PTR_TO_MAP_VALUE,
                    PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_SOCK_COMMON, PTR_TO_SOCKET,
                    PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK, SCALAR, Frame, Reg, State, fmt_reg,
                    type_str)

__all__ = ["Env", "INSN_LIMIT"]

INSN_LIMIT = 1_000_000
JMP_SEQ_LIMIT = 8192
_NOSPEC_RECOVERABLE = (1, 13, 22)  # EPERM, EACCES, EINVAL
_MISMATCH_STRICT = {PTR_TO_CTX, PTR_TO_SOCKET, PTR_TO_SOCK_COMMON, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK}


class Env:
    """One verification run (struct bpf_verifier_env)."""

    def __init__(self, prog, prog_type: int, attach: int, maps_for, log_level: int):
        self.prog = prog
        self.prog_type = prog_type
        self.attach = attach
        self.maps_for = maps_for  # slot index -> map spec for map-loading ld_imm64
        self.log_level = log_level
        self.log: list[str] = []
        self.id_gen = 0
        self.insn_processed = 0
        self.jmps_processed = 0
        self.prev_insn_processed = 0
        self.prev_jmps_processed = 0
        self.total_states = 0
        self.max_states_per_insn = 0
        self.print_state = False
        self.peak_states = 0
        self.cur_states = 0
        self.inprog: dict[int, dict] = {}
        self.done: dict[int, list[State]] = {}
        self.stack: list[State] = []
        self.state: State | None = None
        self.aux_ptr_type: dict[int, int] = {}
        self.stack_depth: dict[int, int] = {}
        self.insn_idx = 0
        self.caps = PRIVILEGED  # verify() sets the loader's capabilities
        self.strict_alignment = False  # BPF_F_STRICT_ALIGNMENT: verify() sets it from prog_flags
        self.alu_aux: dict[int, tuple] = {}  # insn -> (alu_state, alu_limit), Spectre v1 sanitation
        self.nospec: set[int] = set()  # insns a speculative path failed at (a barrier is patched in)
        self.nospec_result: set[int] = set()  # stack stores sanitized for Spectre v4
        self.profile = None  # a profiles.KernelProfile when verifying for another kernel
        self.decided: dict[int, int] = {}  # jump insn -> operands a decided outcome made precise
        self.linked: dict[int, set[int]] = {}  # jump insn -> sets of regs/slots sharing an id
        self._need_graph = None

    def mark_precise(self, idx: int, mask: int) -> None:
        """mark_chain_precision(): the walk found ``mask`` (need bits) must be exact at insn idx."""
        old = self.decided.get(idx, 0)
        if mask & ~old:
            self.decided[idx] = old | mask
            self._grow_need(idx)

    def note_linked(self, idx: int, mask: int) -> None:
        """collect_linked_regs(): scalars sharing an id at a jump become precise together."""
        s = self.linked.setdefault(idx, set())
        if mask not in s and len(s) < 64:
            s.add(mask)
            self._grow_need(idx)

    def _grow_need(self, idx: int) -> None:
        from .cfg import precision_graph, precision_grow
        need = self.prog.need
        if not need:
            return
        if self._need_graph is None:
            self._need_graph = precision_graph(self.prog)
        precision_grow(self.prog, need, self.decided, self.linked, idx, self._need_graph)

    def leaks(self, regno: int) -> bool:
        """is_pointer_value(): a pointer the loader may not see (no CAP_PERFMON)."""
        return not self.caps.allow_ptr_leaks and self.state.regs[regno].type != SCALAR

    def new_id(self) -> int:
        self.id_gen += 1
        return self.id_gen

    # -- worklist --
    def push_state(self, insn_idx: int, prev_idx: int) -> State:
        st = self.state.copy()
        st.insn_idx = insn_idx
        st.from_idx = prev_idx
        st.log_pos = len(self.log)
        if st.parent is not None:
            st.parent.branches += 1
        self.stack.append(st)
        if len(self.stack) > JMP_SEQ_LIMIT:
            raise Reject(f"The sequence of {len(self.stack)} jumps is too complex.", errno=7)
        return st

    def check_dead(self, st: State) -> None:
        """Reset scalars whose bounds a branch made contradictory (kernel marks them unbounded)."""
        for r in st.regs:
            if r.type == SCALAR and not sc.bounds_valid(r):
                r.set_unknown()
        for r in self.state.regs:
            if r.type == SCALAR and not sc.bounds_valid(r):
                r.set_unknown()

    def note_stack_depth(self, frame: Frame) -> None:
        d = self.stack_depth.get(frame.subprog, 0)
        if frame.allocated > d:
            self.stack_depth[frame.subprog] = frame.allocated

    def verbose(self, text: str) -> None:
        if self.log_level:
            self.log.append(text)

    # -- main loop --
    def run(self) -> None:
        st = State()
        f = Frame(0, -1, 0)
        f.regs[1] = Reg.pointer(PTR_TO_CTX)
        st.frames.append(f)
        self.state = st
        insns = self.prog.insns
        n = len(insns)
        prune = self.prog.prune_points
        if self.log_level:
            self.verbose(f"0: {_fmt_regs(st)}")
        self.print_state = False
        while True:
            st = self.state
            idx = st.insn_idx
            self.insn_idx = idx
            if idx >= n or insns[idx] is None:
                raise Reject(f"invalid insn idx {idx} insn_cnt {n}", idx, errno=14)
            self.insn_processed += 1
            if self.insn_processed > INSN_LIMIT:
                raise Reject(f"BPF program is too large. Processed {self.insn_processed} insn", idx, errno=7)
            if idx in prune:
                if self._visited(idx):
                    if self.log_level:
                        self.verbose(f"\nfrom {st.from_idx} to {idx}: safe" if self.print_state
                                     else f"{idx}: safe")
                    if not self._pop():
                        return
                    continue
            if self.print_state:
                spec = " (speculative execution)" if st.speculative else ""
                self.verbose(f"\nfrom {st.from_idx} to {idx}{spec}: {_fmt_regs(st)}")
                self.print_state = False
            ins = insns[idx]
            if self.log_level:
                self.verbose(f"{idx}: {_insn_text(ins)}")
            if st.speculative and idx in self.nospec:  # the barrier ends the mispredicted path
                if not self._pop():
                    return
                continue
            try:
                if self.profile is not None:  # another kernel's differences (verify(kernel=))
                    self.profile.check_insn(self, ins, idx)
                nxt = self._step(ins, idx)
            except Reject as r:
                if st.speculative and r.errno in _NOSPEC_RECOVERABLE:
                    # error_recoverable_with_nospec(): the kernel patches a speculation barrier
                    # before this insn instead of refusing the program (6.17+).
                    self.nospec.add(idx)
                    self.alu_aux.pop(idx, None)
                    if not self._pop():
                        return
                    continue
                if r.insn is None:
                    r.insn = idx
                raise
            if st.speculative and idx in self.nospec_result:  # the store's barrier ends the path
                if not self._pop():
                    return
                continue
            if self.log_level and self.state is st:
                shown = _scratched(ins, st)
                if shown:
                    self.log[-1] = f"{self.log[-1]:<38}; {shown}"
            if nxt is None:
                if not self._pop():
                    return
                continue
            st.insn_idx = nxt

    def _pop(self) -> bool:
        """Path done: update branch counts, continue with the latest pushed branch."""
        self._update_branches(self.state)
        if not self.stack:
            return False
        self.state = self.stack.pop()
        if self.log_level == 1:  # pop_stack(): level 1 keeps only the path being explored
            del self.log[self.state.log_pos:]
        self.print_state = bool(self.log_level)
        return True

    def _update_branches(self, st: State | None) -> None:
        first = True
        while st is not None:
            st.branches -= 1
            if st.branches:
                break
            if not first:
                self._finished(st)
            first = False
            st = st.parent

    def _step(self, ins, idx: int):
        code = ins.opcode
        cls = code & 7
        if cls in (op.ALU, op.ALU64):
            if code & op.X and ins.dst < 10 and ins.src < 11 and code & 0xF0 not in (op.MOV, op.END, op.NEG):
                # adjust_reg_min_max_vals(): pointer +/- scalar needs the scalar's exact range
                d, s = self.state.regs[ins.dst].type, self.state.regs[ins.src].type
                if d == SCALAR and s not in (SCALAR, NOT_INIT):
                    self.mark_precise(idx, 1 << ins.dst)
                elif s == SCALAR and d not in (SCALAR, NOT_INIT):
                    self.mark_precise(idx, 1 << ins.src)
            check_alu(self, ins)
            return idx + 1
        if cls == op.LDX:
            mode = code & 0xE0
            if mode not in (op.MEM, op.MEMSX) or ins.imm:
                raise Reject("BPF_LDX uses reserved fields", errno=22)
            src = self.read_reg(ins.src)
            if ins.dst == 10:
                raise Reject("frame pointer is read only")
            if ins.dst > 10:
                raise Reject(f"R{ins.dst} is invalid", errno=22)
            t = src.type
            check_mem_access(self, ins.src, ins.off, op.SIZE_BYTES[code & 0x18], False, ins.dst,
                             sx=mode == op.MEMSX)
            self._aux_type(idx, t)
            return idx + 1
        if cls == op.STX:
            mode = code & 0xE0
            if mode == op.ATOMIC:
                self._atomic(ins, idx)
                return idx + 1
            if mode != op.MEM or ins.imm:
                raise Reject("BPF_STX uses reserved fields", errno=22)
            self.read_reg(ins.src)
            dst = self.read_reg(ins.dst)
            t = dst.type
            spec_v4_store(self, ins, idx, self.state.regs[ins.src])
            check_mem_access(self, ins.dst, ins.off, op.SIZE_BYTES[code & 0x18], True, ins.src)
            self._aux_type(idx, t)
            return idx + 1
        if cls == op.ST:
            if (code & 0xE0) != op.MEM or ins.src:
                raise Reject("BPF_ST uses reserved fields", errno=22)
            dst = self.read_reg(ins.dst)
            t = dst.type
            spec_v4_store(self, ins, idx, None)
            check_mem_access(self, ins.dst, ins.off, op.SIZE_BYTES[code & 0x18], True, -1, imm=ins.imm)
            self._aux_type(idx, t)
            return idx + 1
        if cls == op.LD:
            if code == op.LD_IMM64:
                self._ld_imm64(ins, idx)
                return idx + 2
            mode = code & 0xE0
            if mode in (op.ABS, op.IND):
                self._ld_abs(ins)
                return idx + 1
            raise Reject(f"unknown opcode {code:02x}", errno=22)
        # JMP / JMP32
        self.jmps_processed += 1
        jop = code & 0xF0
        if jop == op.CALL:
            if cls == op.JMP32:
                raise Reject(f"unknown opcode {code:02x}", errno=22)
            if ins.src == op.PSEUDO_CALL:
                if ins.off or ins.dst:
                    raise Reject("BPF_CALL uses reserved fields", errno=22)
                return check_subprog_call(self, ins, idx)
            if ins.src == op.PSEUDO_KFUNC_CALL:
                raise Reject("kfunc calls are not modelled", errno=Reject.UNSUPPORTED)
            if ins.off or ins.dst or ins.src:
                raise Reject("BPF_CALL uses reserved fields", errno=22)
            check_helper_call(self, ins, idx)
            return idx + 1
        if jop == op.JA:
            if cls == op.JMP:
                if ins.imm or ins.src or ins.dst:
                    raise Reject("BPF_JA uses reserved fields", errno=22)
                return idx + ins.off + 1
            if ins.off or ins.src or ins.dst:
                raise Reject("BPF_JA uses reserved fields", errno=22)
            return idx + ins.imm + 1
        if jop == op.EXIT:
            return check_exit(self, ins, idx)
        nxt = check_cond_jmp(self, ins, idx)
        return idx + 1 if nxt is None else nxt

    def read_reg(self, regno: int) -> Reg:
        """check_reg_arg(SRC_OP): ``regno`` must be a register that holds a value."""
        if regno > 10:
            raise Reject(f"R{regno} is invalid", errno=22)
        r = self.state.regs[regno]
        if r.type == NOT_INIT:
            raise Reject(f"R{regno} !read_ok")
        return r

    def _aux_type(self, idx: int, t: int) -> None:
        prev = self.aux_ptr_type.get(idx)
        if prev is None:
            self.aux_ptr_type[idx] = t
        elif prev != t and ((prev & 0xFF) in _MISMATCH_STRICT or (t & 0xFF) in _MISMATCH_STRICT):
            raise Reject("same insn cannot be used with different pointers", errno=22)

    def _atomic(self, ins, idx: int) -> None:
        size = op.SIZE_BYTES[ins.opcode & 0x18]
        imm = ins.imm
        if imm in (op.LOAD_ACQ, op.STORE_REL):
            raise Reject("load-acquire/store-release are not modelled", errno=Reject.UNSUPPORTED)
        if imm not in (op.ATOMIC_ADD, op.ATOMIC_OR, op.ATOMIC_AND, op.ATOMIC_XOR,
                       op.ATOMIC_ADD | op.FETCH, op.ATOMIC_OR | op.FETCH, op.ATOMIC_AND | op.FETCH,
                       op.ATOMIC_XOR | op.FETCH, op.XCHG, op.CMPXCHG):
            raise Reject(f"BPF_ATOMIC uses invalid atomic opcode {imm & 0xFFFFFFFF:02x}", errno=22)
        if size not in (4, 8):
            raise Reject("invalid atomic operand size", errno=22)
        self.read_reg(ins.src)
        dst = self.read_reg(ins.dst)
        if imm == op.CMPXCHG:
            self.read_reg(0)
            if self.leaks(0):
                raise Reject("R0 leaks addr into mem")
        if self.leaks(ins.src):
            raise Reject(f"R{ins.src} leaks addr into mem")
        t = dst.type
        if t in (PTR_TO_CTX, PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_FLOW_KEYS) or \
                (t & 0xFF) in (PTR_TO_SOCKET, PTR_TO_SOCK_COMMON, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK):
            raise Reject(f"BPF_ATOMIC stores into R{ins.dst} {type_str(t)} is not allowed")
        load = -1
        if imm & op.FETCH:
            load = 0 if imm == op.CMPXCHG else ins.src
            if load == 10:
                raise Reject("frame pointer is read only")
        check_mem_access(self, ins.dst, ins.off, size, False, -1, strict=True)
        if load >= 0:
            check_mem_access(self, ins.dst, ins.off, size, False, load, strict=True)
        check_mem_access(self, ins.dst, ins.off, size, True, -1, strict=True)
        self._aux_type(idx, t)

    def _ld_imm64(self, ins, idx: int) -> None:
        if ins.off:  # check_ld_imm(): reserved fields before the destination register
            raise Reject("BPF_LD_IMM64 uses reserved fields", errno=22)
        if ins.dst > 10:  # check_reg_arg(DST_OP): dst is a 4-bit field, R11-R15 do not exist
            raise Reject(f"R{ins.dst} is invalid", errno=22)
        if ins.dst == 10:
            raise Reject("frame pointer is read only")
        regs = self.state.regs
        if ins.src == 0:
            regs[ins.dst] = Reg.scalar_const(ins.imm)
            return
        if ins.src == op.PSEUDO_FUNC:
            # the kernel needs the program's BTF func_info here ("missing btf func_info") and
            # then verifies the callback when a helper such as bpf_loop calls it: not modelled
            raise Reject("ld_imm64 of a callback (src_reg 4) is not modelled", errno=Reject.UNSUPPORTED)
        m = self.maps_for(idx, ins)
        if ins.src in (op.PSEUDO_MAP_FD, op.PSEUDO_MAP_IDX):
            regs[ins.dst] = Reg.pointer(CONST_PTR_TO_MAP, map=m)
        elif ins.src in (op.PSEUDO_MAP_VALUE, op.PSEUDO_MAP_IDX_VALUE):
            off = (ins.imm >> 32) & 0xFFFFFFFF
            if off >= 1 << 29:
                raise Reject(f"direct value offset of {off} is not allowed", errno=22)
            if m.type != 2:  # only array maps have map_direct_value_addr
                raise Reject("no direct value access support for this map type", errno=22)
            if m.max_entries != 1 or off >= m.value_size:
                raise Reject(f"invalid access to map value pointer, value_size={m.value_size} off={off}",
                             errno=22)
            regs[ins.dst] = Reg.pointer(PTR_TO_MAP_VALUE, off, map=m)
        else:
            raise Reject(f"ld_imm64 with src_reg {ins.src} is not modelled", errno=Reject.UNSUPPORTED)

    def _ld_abs(self, ins) -> None:
        if self.prog_type not in (1, 3, 4):
            raise Reject("BPF_LD_[ABS|IND] instructions not allowed for this program type", errno=22)
        ind = (ins.opcode & 0xE0) == op.IND
        if ins.dst or ins.off or (ins.src and not ind):
            raise Reject("BPF_LD_[ABS|IND] uses reserved fields", errno=22)
        regs = self.state.regs
        self.read_reg(6)  # the implicit skb operand: "R6 !read_ok" when never written
        if self.state.refs:
            raise Reject("BPF_LD_[ABS|IND] would lead to reference leak", errno=22)
        if regs[6].type != PTR_TO_CTX:
            raise Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb", errno=22)
        if ind:
            self.read_reg(ins.src)
        for r in range(6):
            regs[r] = Reg()
        regs[0] = Reg.scalar_unknown()

    # -- pruning --
    def _visited(self, idx: int) -> bool:
        """is_state_visited(): True to cut the current path.

        Checkpoints still being explored (``branches`` > 0) only serve loop
        detection, indexed by their exact contents; finished ones serve pruning
        and are evicted when they keep missing, as the kernel does.
        """
        cur = self.state
        live = self.prog.live
        # a new checkpoint only after at least 2 jumps AND 8 instructions (is_state_visited())
        add = (self.jmps_processed - self.prev_jmps_processed >= 2
               and self.insn_processed - self.prev_insn_processed >= 8)
        inprog = self.inprog.get(idx)
        key = None
        if inprog:
            key = (cur.speculative, exact_key(cur))
            # a speculative state never matches a non-speculative one (states_equal())
            for k in ((False, key[1]), key) if cur.speculative else (key,):
                old = inprog.get(k)
                if old is not None and old.branches:
                    raise Reject(f"infinite loop detected at insn {idx}", idx, errno=22)
            if self.jmps_processed - self.prev_jmps_processed < 20 and \
                    self.insn_processed - self.prev_insn_processed < 100:
                add = False
        done = self.done.get(idx)
        if done:
            keep = []
            hit = False
            for old in done:
                if not hit and (cur.speculative or not old.speculative) and \
                        states_equal(old, cur, live, exact=False, need=self.prog.need):
                    old.hits += 1
                    hit = True
                else:
                    if not hit:
                        old.misses += 1
                if old.misses <= old.hits * 3 + 3:
                    keep.append(old)
            self.done[idx] = keep
            if hit:
                return True
        if not add:
            return False
        self.total_states += 1
        self.cur_states += 1
        self.peak_states = max(self.peak_states, self.cur_states)
        self.prev_jmps_processed = self.jmps_processed
        self.prev_insn_processed = self.insn_processed
        new = cur.copy()
        new.insn_idx = idx
        new.branches = 1
        new.parent = cur.parent
        new.checkpoint = key if key is not None else (cur.speculative, exact_key(cur))
        cur.parent = new
        self.inprog.setdefault(idx, {})[new.checkpoint] = new
        n = len(self.inprog[idx]) + len(self.done.get(idx, ()))
        if n > self.max_states_per_insn:
            self.max_states_per_insn = n
        return False

    def _finished(self, st: State) -> None:
        """A checkpoint whose paths are all explored becomes usable for pruning."""
        d = self.inprog.get(st.insn_idx)
        if d is not None and d.get(st.checkpoint) is st:
            del d[st.checkpoint]
        self.done.setdefault(st.insn_idx, []).append(st)


def _fmt_regs(st: State) -> str:
    parts = []
    for i, r in enumerate(st.regs):
        if r.type != NOT_INIT:
            parts.append(f"R{i}={fmt_reg(r)}")
    return " ".join(parts)


def _scratched(ins, st: State) -> str:
    """The registers an instruction touched, as the kernel prints them after it (``R1=ctx() R6=ctx()``)."""
    from .cfg import _uses_defs
    code = ins.opcode
    if code & 7 in (op.JMP, op.JMP32) and code & 0xF0 in (op.CALL, op.EXIT, op.JA):
        mask = 1 if code & 0xF0 == op.CALL and st.regs[0].type != NOT_INIT else 0
    else:
        uses, defs = _uses_defs(ins)
        mask = uses | defs
    regs = st.regs
    return " ".join(f"R{i}={fmt_reg(regs[i])}" for i in range(11)
                    if mask >> i & 1 and regs[i].type != NOT_INIT)


def _insn_text(ins) -> str:
    """``(b7) r0 = 0``: the verifier log's instruction text, from the project's disassembler."""
    try:
        from pybpf.asm.disasm import disassemble_insn
        return f"({ins.opcode:02x}) {disassemble_insn(ins)}"
    except Exception:  # noqa: BLE001 - the log must not fail on an odd encoding
        return f"({ins.opcode:02x}) {ins!r}"
