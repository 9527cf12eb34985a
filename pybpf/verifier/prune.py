"""State equivalence for pruning: states_equal(), regsafe() and stacksafe() of
kernel/bpf/verifier.c.

A path is cut when a finished checkpoint at the same instruction covers the
current state: every live register and stack slot of the old state is at
least as general as the current one (ranges within, tnum containing, ids
mapping one to one). Imprecise scalars match anything, which is why precision
tracking (cfg.py, branch.py) decides how much pruning happens. ``exact``
comparison (loop detection) wants identical states instead.
"""

from __future__ import annotations

from . import tnum as tn
from .state import (ADD_CONST, NOT_INIT, PTR_TO_MAP_VALUE, PTR_TO_PACKET, PTR_TO_PACKET_META,
                    PTR_TO_STACK, SCALAR, STACK_INVALID, STACK_MISC, STACK_SPILL, Frame, Reg, State)

__all__ = ["exact_key", "states_equal"]


def exact_key(st: State) -> tuple:
    out = []
    for f in st.frames:
        out.append(f.callsite)
        out.extend(r.key() for r in f.regs)
        if f.stack:
            out.append(tuple(sorted((k, v.types, v.reg.key() if v.reg is not None else None)
                                    for k, v in f.stack.items())))
    out.append(tuple(r[0] for r in st.refs))
    return tuple(out)


def _range_within(o: Reg, c: Reg) -> bool:
    return (o.umin <= c.umin and o.umax >= c.umax and o.smin <= c.smin and o.smax >= c.smax
            and o.u32min <= c.u32min and o.u32max >= c.u32max and o.s32min <= c.s32min
            and o.s32max >= c.s32max)


def _check_ids(a: int, b: int, idmap: dict) -> bool:
    if not a and not b:
        return True
    if not a or not b:
        return False
    m = idmap.get(("o", a))
    n = idmap.get(("c", b))
    if m is None and n is None:
        idmap[("o", a)] = b
        idmap[("c", b)] = a
        return True
    return m == b and n == a


def _regs_exact(o: Reg, c: Reg, idmap: dict) -> bool:
    return (o.type == c.type and o.off == c.off and o.var_off == c.var_off and o.map is c.map
            and o.range == c.range and o.mem_size == c.mem_size and _range_within(o, c)
            and _range_within(c, o) and _check_ids(o.id, c.id, idmap)
            and _check_ids(o.ref_obj_id, c.ref_obj_id, idmap))


def _regsafe(o: Reg, c: Reg, idmap: dict, exact: bool, precise: bool = True) -> bool:
    if o.type == NOT_INIT:
        return not exact or c.type == NOT_INIT
    if o.type != c.type:
        return False
    if exact:
        return _regs_exact(o, c, idmap)
    b = o.type & 0xFF
    if o.type == SCALAR:
        if not precise:
            return True
        if (o.id & ADD_CONST) != (c.id & ADD_CONST) or (o.id & ADD_CONST and o.off != c.off):
            return False
        if o.id and not _check_ids(o.id, c.id, idmap):
            return False
        return _range_within(o, c) and tn.contains(o.var_off, c.var_off)
    if b in (PTR_TO_MAP_VALUE, 5, 17, 18, 14):  # map value/key, mem, buf, tp buffer
        return (o.off == c.off and o.map is c.map and o.mem_size == c.mem_size
                and _range_within(o, c) and tn.contains(o.var_off, c.var_off)
                and _check_ids(o.id, c.id, idmap) and _check_ids(o.ref_obj_id, c.ref_obj_id, idmap))
    if o.type in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        if c.range < o.range or o.off != c.off or not _check_ids(o.id, c.id, idmap):
            return False
        if (o.range < 0) != (c.range < 0) or (o.range < 0 and o.range != c.range):
            return False
        return _range_within(o, c) and tn.contains(o.var_off, c.var_off)
    if o.type == PTR_TO_STACK:
        return _regs_exact(o, c, idmap) and o.frameno == c.frameno
    return _regs_exact(o, c, idmap)


def _stacksafe(fo: Frame, fc: Frame, idmap: dict, exact: bool, need: int = -1) -> bool:
    for spi, so in fo.stack.items():
        sc_ = fc.stack.get(spi)
        ct = sc_.types if sc_ is not None else STACK_INVALID * 8
        for i in range(8):
            ot = so.types[i]
            if ot == STACK_INVALID and not exact:
                continue
            if ot == STACK_MISC and not exact:
                continue
            if ot == STACK_SPILL or ct[i] == STACK_SPILL:
                break
            if ot != ct[i]:
                return False
        if so.types[7] == STACK_SPILL or ct[7] == STACK_SPILL:
            if so.types != ct:
                if not exact and all(t in (STACK_MISC, STACK_INVALID) for t in so.types):
                    continue
                return False
            if so.reg is None or sc_ is None or sc_.reg is None:
                return False
            if not _regsafe(so.reg, sc_.reg, idmap, exact, bool(need >> (16 + spi) & 1)):
                return False
    if exact:
        for spi in fc.stack:
            if spi not in fo.stack and any(t != STACK_INVALID for t in fc.stack[spi].types):
                return False
    return True


def states_equal(old: State, cur: State, live: list[int], exact: bool, need=None) -> bool:
    if len(old.frames) != len(cur.frames):
        return False
    idmap: dict = {}
    if len(old.refs) != len(cur.refs):
        return False
    for (a, _), (b, _) in zip(old.refs, cur.refs):
        if not _check_ids(a, b, idmap):
            return False
    n = len(cur.frames)
    for i in range(n):
        fo, fc = old.frames[i], cur.frames[i]
        if fo.callsite != fc.callsite:
            return False
        if i == n - 1:
            mask = live[old.insn_idx] if not exact else 0x7FF
        else:
            nxt = cur.frames[i + 1].callsite + 1
            mask = (live[nxt] if nxt < len(live) and not exact else 0x7FF) & ~1
            mask |= 0x7C0 if not exact else 0x7FF
        nmask = need[old.insn_idx] if (need and i == n - 1) else -1
        for r in range(11):
            if not (mask >> r) & 1:
                continue
            if not _regsafe(fo.regs[r], fc.regs[r], idmap, exact, bool(nmask >> r & 1)):
                return False
        if not _stacksafe(fo, fc, idmap, exact, nmask):
            return False
    return True
