"""Conditional jumps: branch prediction, bounds refinement, null checks, packet ranges.

check_cond_jmp_op() and its helpers (is_branch_taken(), reg_set_min_max(),
mark_ptr_or_null_regs(), try_match_pkt_pointers(), sync_linked_regs()).
"""

from __future__ import annotations

from . import scalar as sc
from .errors import Reject
from .opcodes_ext import ADD, JEQ, JGE, JGT, JLE, JLT, JNE, X
from .state import (ADD_CONST, ADD_CONST32, CONST_PTR_TO_MAP, PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE, PTR_TO_MEM,
                    PTR_TO_SOCK_COMMON, PTR_TO_SOCKET, PTR_TO_TCP_SOCK, PTR_TO_BTF_ID, MAYBE_NULL, PTR_TO_PACKET, PTR_TO_PACKET_END, PTR_TO_PACKET_META, SCALAR,
                    Reg)

__all__ = ["check_cond_jmp"]

BEYOND_PKT_END, AT_PKT_END = -1, -2
MAX_PACKET_OFF = 0xFFFF


_NOT_NULL = {PTR_TO_SOCKET, PTR_TO_TCP_SOCK, PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY, PTR_TO_SOCK_COMMON,
             PTR_TO_MEM, CONST_PTR_TO_MAP}


def _not_null(r: Reg) -> bool:
    """reg_not_null(): pointers the verifier knows are not NULL (ctx and fp are not among them)."""
    return not r.type & MAYBE_NULL and (r.type & 0xFF) in _NOT_NULL


def _pkt_any(r: Reg) -> bool:
    return r.type in (PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_PACKET_END)


def _pkt_branch_taken(dst: Reg, src: Reg, op: int) -> int:
    if src.type == PTR_TO_PACKET_END:
        pkt = dst
    elif dst.type == PTR_TO_PACKET_END:
        pkt = src
        op = sc.flip_opcode(op)
    else:
        return -1
    if pkt.range >= 0:
        return -1
    if op in (JLE, JGT):
        if pkt.range == BEYOND_PKT_END:
            return int(op == JGT)
    elif op in (JLT, JGE):
        if pkt.range in (BEYOND_PKT_END, AT_PKT_END):
            return int(op == JGE)
    return -1


def is_branch_taken(r1: Reg, r2: Reg, op: int, is32: bool) -> int:
    if _pkt_any(r1) and _pkt_any(r2) and not is32:
        return _pkt_branch_taken(r1, r2, op)
    if r1.type != SCALAR or r2.type != SCALAR:
        if not (r2.type == SCALAR and sc.is_const(r2, is32)):
            op = sc.flip_opcode(op)
            r1, r2 = r2, r1
        if not (r2.type == SCALAR and sc.is_const(r2, is32)):
            return -1
        if not _not_null(r1):
            return -1
        if sc.const_value(r2, is32) != 0:
            return -1
        return {JEQ: 0, JNE: 1}.get(op, -1)
    return sc.branch_taken(r1, r2, op, is32)


def _mark_ptr_or_null(state, regno: int, is_null: bool) -> None:
    regs = state.regs
    rid = regs[regno].id
    ref_obj_id = regs[regno].ref_obj_id
    if ref_obj_id and ref_obj_id == rid and is_null:
        state.refs = [r for r in state.refs if r[0] != rid]
    for r in state.all_regs():
        if r.type & MAYBE_NULL and r.id == rid:
            if is_null:
                r.set_const(0)
            else:
                r.type &= ~MAYBE_NULL
                if not r.ref_obj_id:
                    r.id = 0


def _find_good_pkt(state, dst: Reg, ptype: int, right_open: bool) -> None:
    if dst.off < 0 or (dst.off == 0 and right_open):
        return
    if dst.umax > MAX_PACKET_OFF or dst.umax + dst.off > MAX_PACKET_OFF:
        return
    new_range = dst.off + (1 if right_open else 0)
    did = dst.id
    for r in state.all_regs():
        if r.type == ptype and r.id == did:
            r.range = max(r.range, new_range)


def _mark_pkt_end(state, regno: int, range_open: bool) -> None:
    r = state.regs[regno]
    if r.type != PTR_TO_PACKET:
        return
    r.range = BEYOND_PKT_END if range_open else AT_PKT_END


def _init_pkt(r: Reg, t: int) -> bool:
    return r.type == t and r.off == 0 and not r.var_off.mask and r.var_off.value == 0


def _match_pkt(ins, dst: Reg, src: Reg, this, other) -> bool:
    """try_match_pkt_pointers(): ``this`` continues at fall-through, ``other`` at the target."""
    if ins.opcode & 7 != 5 or not ins.opcode & X:  # only 64-bit register compares
        return False
    op = ins.opcode & 0xF0
    a = (dst.type == PTR_TO_PACKET and src.type == PTR_TO_PACKET_END) or \
        (dst.type == PTR_TO_PACKET_META and _init_pkt(src, PTR_TO_PACKET))
    b = (dst.type == PTR_TO_PACKET_END and src.type == PTR_TO_PACKET) or \
        (_init_pkt(dst, PTR_TO_PACKET) and src.type == PTR_TO_PACKET_META)
    if not (a or b) or op not in (JGT, JLT, JGE, JLE):
        return False
    if b:  # pkt_end > pkt is pkt < pkt_end: the same test with the operands swapped
        op, pkt, regno = sc.flip_opcode(op), src, ins.src
    else:
        pkt, regno = dst, ins.dst
    # The path where pkt <= end (or pkt < end) learns the packet reaches pkt, the other that
    # pkt is past the end: the fall-through for JGT/JGE, the target for JLT/JLE. When that
    # path's test is strict (pkt < end: JGE, JLT), the byte at pkt is in range too.
    good, end = (this, other) if op in (JGT, JGE) else (other, this)
    right_open = op in (JLT, JGE)
    _find_good_pkt(good, pkt, pkt.type, right_open)
    _mark_pkt_end(end, regno, not right_open)
    return True


_BOUNDS = ("var_off", "smin", "smax", "umin", "umax", "s32min", "s32max", "u32min", "u32max")


def _sync_linked(state, known: Reg) -> None:
    """sync_linked_regs(): copies of a scalar (same id) learn what the branch taught it;
    a copy that went through ``+= const`` (BPF_ADD_CONST) learns it shifted by the delta."""
    kid = known.id & ~ADD_CONST
    for r in state.all_regs():
        if r is known or r.type != SCALAR or (r.id & ~ADD_CONST) != kid:
            continue
        if not ((r.id | known.id) & ADD_CONST) or r.off == known.off:
            for f in _BOUNDS:
                setattr(r, f, getattr(known, f))
            r.id, r.off = known.id, known.off
            continue
        rid, roff = r.id, r.off
        for f in _BOUNDS:
            setattr(r, f, getattr(known, f))
        sc.alu(r, Reg.scalar_const(roff - known.off), ADD, False)
        r.id, r.off = rid, roff
        if known.id & ADD_CONST32:
            sc.zext_32_to_64(r)
        sc.bounds_sync(r)


def _speculative_path(env, ins, next_idx: int, idx: int) -> None:
    """sanitize_speculative_path(): a CPU may mispredict a branch the verifier knows the outcome of.

    Without CAP_PERFMON the kernel also walks the direction that cannot happen, as a speculative
    state whose compared registers are unknown scalars (nothing the comparison taught holds there).
    """
    st = env.push_state(next_idx, idx)
    st.speculative = True
    st.regs[ins.dst].set_unknown()
    if ins.opcode & X:
        st.regs[ins.src].set_unknown()


def _note_linked(env, st, dst: Reg | None, src: Reg | None, idx: int) -> None:
    """collect_linked_regs(): the registers and spills sharing the operands' scalar ids."""
    ids = {r.id & ~ADD_CONST for r in (dst, src) if r is not None and r.id}
    if not ids:
        return
    f = st.cur
    mask = cnt = 0
    for i, r in enumerate(f.regs):
        if r.type == SCALAR and r.id & ~ADD_CONST in ids:
            mask |= 1 << i
            cnt += 1
    for spi, slot in f.stack.items():
        r = slot.reg
        if r is not None and r.type == SCALAR and r.id & ~ADD_CONST in ids and 0 <= spi < 64:
            mask |= 1 << (16 + spi)
            cnt += 1
    if cnt > 1:
        env.note_linked(idx, mask)


def check_cond_jmp(env, ins, idx: int) -> int | None:
    """Returns the next insn for the current path; may push the other branch.

    Returns None when the current path continues at fall-through.
    """
    code = ins.opcode
    op = code & 0xF0
    is32 = (code & 7) == 6
    if op == 0xE0 and not is32:  # may_goto (6.9+): its loop budget is not modelled
        raise NotImplementedError("may_goto is not modelled by the verifier simulator")
    if op > 0xD0:
        raise Reject(f"invalid BPF_JMP/JMP32 opcode {op:x}", errno=22)
    st = env.state
    if code & X:
        if ins.imm:
            raise Reject("BPF_JMP/JMP32 uses reserved fields", errno=22)
        env.read_reg(ins.src)
    elif ins.src:
        raise Reject("BPF_JMP/JMP32 uses reserved fields", errno=22)
    dst = env.read_reg(ins.dst)
    if code & X and env.leaks(ins.src) and not (_pkt_any(dst) and _pkt_any(st.regs[ins.src])):
        raise Reject(f"R{ins.src} pointer comparison prohibited")
    src = st.regs[ins.src] if code & X else Reg.scalar_const(ins.imm)
    pred = is_branch_taken(dst, src, op, is32)
    target = idx + ins.off + 1
    if pred >= 0:
        mask = 1 << ins.dst if dst.type == SCALAR else 0
        if code & X and src.type == SCALAR:
            mask |= 1 << ins.src
        if mask:
            env.mark_precise(idx, mask)
    else:
        _note_linked(env, st, dst if dst.type == SCALAR else None,
                     src if code & X and src.type == SCALAR else None, idx)
    if pred == 1:
        if not env.caps.bypass_spec_v1:
            _speculative_path(env, ins, idx + 1, idx)
        return target
    if pred == 0:
        if not env.caps.bypass_spec_v1:
            _speculative_path(env, ins, target, idx)
        return idx + 1
    other = env.push_state(target, idx)
    oregs = other.regs
    regs = st.regs
    if dst.type == SCALAR and src.type == SCALAR:
        if code & X:
            t1, t2 = oregs[ins.dst], oregs[ins.src]
            f1, f2 = regs[ins.dst], regs[ins.src]
        else:
            t1, t2 = oregs[ins.dst], src.copy()
            f1, f2 = regs[ins.dst], src.copy()
        sc.refine_cond(f1, f2, sc.rev_opcode(op), is32)
        sc.bounds_sync(f1)
        sc.bounds_sync(f2)
        sc.refine_cond(t1, t2, op, is32)
        sc.bounds_sync(t1)
        sc.bounds_sync(t2)
        if code & X and src.id:
            _sync_linked(st, regs[ins.src])
            _sync_linked(other, oregs[ins.src])
        if dst.id:
            _sync_linked(st, regs[ins.dst])
            _sync_linked(other, oregs[ins.dst])
        env.check_dead(other)
    if (not is32 and code & X and dst.type != SCALAR and src.type != SCALAR
            and bool(dst.type & MAYBE_NULL) != bool(src.type & MAYBE_NULL)
            and dst.type & 0xFF != PTR_TO_BTF_ID and src.type & 0xFF != PTR_TO_BTF_ID
            and op in (JEQ, JNE)):
        # equal to a pointer known not to be NULL: not NULL either (on the equal branch only)
        eq = oregs if op == JEQ else regs
        eq[ins.src if src.type & MAYBE_NULL else ins.dst].type &= ~MAYBE_NULL
    if (not is32 and not code & X and ins.imm == 0 and op in (JEQ, JNE)
            and dst.type & MAYBE_NULL):
        _mark_ptr_or_null(st, ins.dst, op == JNE)  # fall-through of jne: the pointer is NULL
        _mark_ptr_or_null(other, ins.dst, op == JEQ)
    elif not (code & X and _match_pkt(ins, regs[ins.dst], regs[ins.src], st, other)) \
            and env.leaks(ins.dst):
        raise Reject(f"R{ins.dst} pointer comparison prohibited")
    return None
