"""ALU instructions: scalar transfer functions and the pointer arithmetic rules.

check_alu_op(), adjust_reg_min_max_vals() and adjust_ptr_min_max_vals() from
kernel/bpf/verifier.c, for a privileged loader (pointer leaks allowed, so
``ptr - ptr`` and 32-bit ``ptr -= x`` give unknown scalars instead of errors).
"""

from __future__ import annotations

from . import scalar as sc
from . import tnum as tn
from .errors import Reject
from .mem import MAX_VAR_OFF
from .sanitize import sanitize_check_bounds, sanitize_commit, sanitize_ptr_alu
from .opcodes_ext import (ADD, ALU64, AND, ARSH, DIV, END, LSH, MOD, MOV, NEG, OR, RSH, SUB, X, XOR)
from .state import (ADD_CONST, ADD_CONST32, ADD_CONST64, CONST_PTR_TO_MAP, MAYBE_NULL, PTR_TO_CTX, PTR_TO_FLOW_KEYS,
                    PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE, PTR_TO_MEM, PTR_TO_PACKET,
                    PTR_TO_PACKET_META, PTR_TO_STACK, PTR_TO_TP_BUFFER, PTR_TO_BTF_ID,
                    PTR_TO_BUF, PTR_TO_FUNC, SCALAR, Reg, type_str)

__all__ = ["check_alu"]

BPF_ADDR_SPACE_CAST = 1  # the ``off`` of ALU64 MOV X that marks an arena address-space cast

ALU_STR = {0x00: "+=", 0x10: "-=", 0x20: "*=", 0x30: "/=", 0x40: "|=", 0x50: "&=", 0x60: "<<=",
           0x70: ">>=", 0x80: "neg", 0x90: "%=", 0xA0: "^=", 0xB0: "=", 0xC0: "s>>=", 0xD0: "endian"}
_ARITH_OK = {PTR_TO_CTX, PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY, PTR_TO_STACK, PTR_TO_PACKET_META,
             PTR_TO_PACKET, PTR_TO_TP_BUFFER, PTR_TO_BTF_ID, PTR_TO_MEM, PTR_TO_BUF, PTR_TO_FUNC}


def _dst(regno: int) -> None:
    if regno > 10:
        raise Reject(f"R{regno} is invalid")
    if regno == 10:
        raise Reject("frame pointer is read only")


def check_alu(env, ins) -> None:
    code = ins.opcode
    op = code & 0xF0
    alu64 = (code & 7) == ALU64
    regs = env.state.regs
    if op in (END, NEG):
        if op == NEG:
            if (code & X) or ins.src or ins.off or ins.imm:
                raise Reject("BPF_NEG uses reserved fields", errno=22)
        else:
            if ins.src or ins.off or ins.imm not in (16, 32, 64) or (alu64 and code & X):
                raise Reject("BPF_END uses reserved fields", errno=22)
        env.read_reg(ins.dst)
        if env.leaks(ins.dst):
            raise Reject(f"R{ins.dst} pointer arithmetic prohibited")
        _dst(ins.dst)
        d = regs[ins.dst]
        if op == NEG and d.type == SCALAR and (env.profile is None or env.profile.has("neg_range")):
            sc.alu(d, d, NEG, not alu64)
            d.id = 0
        elif op == END and d.type == SCALAR and (env.profile is None or env.profile.has("end_range")):
            _byte_swap(d, ins.imm, swap=alu64 or bool(code & X))
        else:
            d.set_unknown()
        return
    if op == MOV:
        _check_mov(env, ins, alu64)
        return
    if op > 0xD0 or op == END:
        raise Reject(f"invalid BPF_ALU opcode {op:#x}", errno=22)
    if code & X:
        if ins.imm or (ins.off not in (0, 1) if op in (DIV, MOD) else ins.off):
            raise Reject("BPF_ALU uses reserved fields", errno=22)
        env.read_reg(ins.src)
    else:
        if ins.src or (ins.off not in (0, 1) if op in (DIV, MOD) else ins.off):
            raise Reject("BPF_ALU uses reserved fields", errno=22)
    env.read_reg(ins.dst)
    if op in (DIV, MOD) and not code & X and ins.imm == 0:
        raise Reject("div by zero", errno=22)
    if op in (LSH, RSH, ARSH) and not code & X:
        size = 64 if alu64 else 32
        if ins.imm < 0 or ins.imm >= size:
            raise Reject(f"invalid shift {ins.imm}", errno=22)
    _dst(ins.dst)
    _adjust(env, ins, alu64, op)


def _bswap(v: int, nbytes: int) -> int:
    return int.from_bytes((v & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


def _byte_swap(d: Reg, bits: int, swap: bool) -> None:
    """BPF_END on a scalar: the tnum is truncated (to_le on x86-64) or byte-swapped, bounds redone."""
    n = bits // 8
    v = d.var_off
    if swap:
        t = tn.Tnum(_bswap(v.value, n), _bswap(v.mask, n))
    else:
        t = tn.cast(v, n) if n < 8 else v
    d.id = 0
    sc.mark_unknown(d)
    d.var_off = t
    sc.bounds_sync(d)


def _check_mov(env, ins, alu64: bool) -> None:
    regs = env.state.regs
    code = ins.opcode
    if code & X:
        if alu64 and ins.off == BPF_ADDR_SPACE_CAST:
            # addr_space_cast (off=1): imm picks the direction; the simulator models no arena maps
            if ins.imm not in (1, 1 << 16):
                raise Reject("addr_space_cast insn can only convert between address space 1 and 0",
                             errno=22)
            raise Reject("addr_space_cast insn can only be used in a program that has an associated arena",
                         errno=22)
        if ins.imm or (ins.off not in (0, 8, 16, 32) if alu64 else ins.off not in (0, 8, 16)):
            raise Reject("BPF_MOV uses reserved fields", errno=22)
        src = env.read_reg(ins.src)
        _dst(ins.dst)
        if alu64:
            if ins.off == 0:
                if src.type == SCALAR and src.id & ADD_CONST and ins.dst != ins.src:
                    src.id = src.off = 0  # assign_scalar_id_before_mov(): one offset per link
                if src.type == SCALAR and not src.id and ins.dst != ins.src:
                    src.id = env.new_id()
                regs[ins.dst] = src.copy()
            else:
                if src.type != SCALAR:
                    # is_pointer_value(): only a loader without CAP_PERFMON may not leak pointers;
                    # for the others the sign-extended pointer bits are an unknown scalar
                    if env.leaks(ins.src):
                        raise Reject(f"R{ins.src} sign-extension part of pointer", errno=13)
                    regs[ins.dst] = Reg.scalar_unknown()
                    return
                d = src.copy()
                if d.id and _width(src) > ins.off:
                    d.id = 0
                elif d.id:
                    pass
                sc.coerce_sx(d, ins.off // 8)
                if not (d.id and _width(src) < ins.off):
                    d.id = 0
                regs[ins.dst] = d
                sc.bounds_sync(d)
        else:
            if src.type != SCALAR:
                if env.leaks(ins.src):
                    raise Reject(f"R{ins.src} partial copy of pointer")
                d = Reg.scalar_unknown()
                regs[ins.dst] = d
                d.var_off = tn.subreg(tn.UNKNOWN)
                sc.zext_32_to_64(d)
                sc.bounds_sync(d)
                return
            if ins.off == 0:
                fits = src.umax <= sc.U32
                if fits and src.id & ADD_CONST and ins.dst != ins.src:
                    src.id = src.off = 0
                if fits and not src.id and ins.dst != ins.src:
                    src.id = env.new_id()
                d = src.copy()
                if not fits:  # the link ends here, and with it src's constant delta
                    d.id = d.off = 0
            else:
                d = src.copy()
                d.id = 0
                sc.coerce_subreg_sx(d, ins.off // 8)
            sc.zext_32_to_64(d)
            sc.bounds_sync(d)
            regs[ins.dst] = d
    else:
        if ins.src or ins.off:
            raise Reject("BPF_MOV uses reserved fields", errno=22)
        _dst(ins.dst)
        d = Reg.scalar_const(ins.imm if alu64 else ins.imm & sc.U32)
        regs[ins.dst] = d


def _width(r: Reg) -> int:
    return r.umax.bit_length()


def _sane_offset(reg: Reg, ptype: int) -> None:
    """check_reg_sane_offset()."""
    name = type_str(ptype)
    known = not reg.var_off.mask
    val = sc.s64(reg.var_off.value)
    if known and (val >= MAX_VAR_OFF or val <= -MAX_VAR_OFF):
        raise Reject(f"math between {name} pointer and {val} is not allowed")
    if reg.off >= MAX_VAR_OFF or reg.off <= -MAX_VAR_OFF:
        raise Reject(f"{name} pointer offset {reg.off} is not allowed")
    if reg.smin == sc.S64_MIN:
        raise Reject(f"math between {name} pointer and register with unbounded min value is not allowed")
    if reg.smin >= MAX_VAR_OFF or reg.smin <= -MAX_VAR_OFF:
        raise Reject(f"value {reg.smin} makes {name} pointer be out of bounds")


def _adjust(env, ins, alu64: bool, op: int) -> None:
    regs = env.state.regs
    dst = regs[ins.dst]
    if ins.opcode & X:
        src = regs[ins.src]
        if src.type != SCALAR:
            if dst.type != SCALAR:
                if op == SUB and env.caps.allow_ptr_leaks:
                    dst.set_unknown()
                    return
                raise Reject(f"R{ins.dst} pointer {ALU_STR[op]} pointer prohibited")
            _ptr_alu(env, ins, alu64, op, src, dst, ins.dst)
            return
        if dst.type != SCALAR:
            _ptr_alu(env, ins, alu64, op, dst, src, ins.dst)
            return
    else:
        src = Reg.scalar_const(ins.imm)
        if dst.type != SCALAR:
            _ptr_alu(env, ins, alu64, op, dst, src, ins.dst)
            return
    if op in (AND, OR) and not src.var_off.mask and dst.var_off.mask and _is_zero_or_minus_one(dst, alu64):
        # 6.18 splits a {-1, 0} scalar (the ``s>>= 63`` idiom) before and/or: the
        # current path continues with -1, the value 0 is verified later.
        other = env.push_state(env.insn_idx, env.insn_idx)
        other.regs[ins.dst].set_const(0)
        dst.set_const(-1)
    did, dst_umax = dst.id, dst.umax
    sconst = (op in (ADD, SUB) and sc.is_const(src, not alu64)
              and not (ins.opcode & X and ins.src == ins.dst))
    val = sc.const_value(src, not alu64) if sconst else 0
    sc.alu(dst, src, op, not alu64)
    _link_add_const(env, dst, did, op, alu64, val if sconst else None, dst_umax)


def _link_add_const(env, dst: Reg, did: int, op: int, alu64: bool, val: int | None,
                    dst_umax: int) -> None:
    """adjust_reg_min_max_vals(): ``r1 = r2; r1 += 8`` keeps r1 linked to r2 with offset 8
    (BPF_ADD_CONST64/32), so that a branch on r2 also bounds r1. Any other op breaks the link."""
    if not (env.caps.bpf and did and val is not None):
        dst.id = 0
        return
    if alu64:
        off = sc.s64(val)
        bad = not sc.S32_MIN <= off <= sc.S32_MAX
    else:
        off = sc.s32(val)
        bad = dst_umax > sc.U32
    if not bad and op == SUB:
        bad = off == sc.S32_MIN
        off = -off
    if bad or did & ADD_CONST:
        dst.off = 0  # rX += val twice: the offsets cannot accumulate
        dst.id = 0
    else:
        dst.id = did | (ADD_CONST64 if alu64 else ADD_CONST32)
        dst.off = off


def _is_zero_or_minus_one(r: Reg, alu64: bool) -> bool:
    if alu64:
        return r.smin == -1 and r.smax == 0
    return r.s32min == -1 and r.s32max == 0


def _ptr_alu(env, ins, alu64: bool, op: int, ptr: Reg, off: Reg, dstno: int) -> None:
    """adjust_ptr_min_max_vals(): ``ptr op off`` where ``off`` is a scalar."""
    regs = env.state.regs
    if not alu64:
        if op == SUB and env.caps.allow_ptr_leaks:
            regs[dstno].set_unknown()
            return
        raise Reject(f"R{dstno} 32-bit pointer arithmetic prohibited")
    if ptr.type & MAYBE_NULL:
        raise Reject(f"R{dstno} pointer arithmetic on {type_str(ptr.type)} prohibited, null-check it first")
    known = (not off.var_off.mask and off.smin == off.smax and off.umin == off.umax)
    b = ptr.type & 0xFF
    if b == PTR_TO_FLOW_KEYS and known:
        pass
    elif b == CONST_PTR_TO_MAP and known and off.smin == 0 and op == ADD:
        pass
    elif b not in _ARITH_OK:
        raise Reject(f"R{dstno} pointer arithmetic on {type_str(ptr.type)} prohibited")
    _sane_offset(off, ptr.type)
    _sane_offset(ptr, ptr.type)
    spec = None
    if op in (ADD, SUB) and not env.caps.bypass_spec_v1 and ins.opcode & X:
        spec = sanitize_ptr_alu(env, ins, op, ptr, off, dstno, off is regs[dstno])
    d = ptr.copy()
    smin_val, smax_val, umin_val, umax_val = off.smin, off.smax, off.umin, off.umax
    if op == ADD:
        if known and sc.s32(ptr.off + smin_val) == ptr.off + smin_val:
            d.off = ptr.off + smin_val
        else:
            a, bb = ptr.smin + smin_val, ptr.smax + smax_val
            if a < sc.S64_MIN or a > sc.S64_MAX or bb < sc.S64_MIN or bb > sc.S64_MAX:
                d.smin, d.smax = sc.S64_MIN, sc.S64_MAX
            else:
                d.smin, d.smax = a, bb
            a, bb = ptr.umin + umin_val, ptr.umax + umax_val
            if a > sc.U64 or bb > sc.U64:
                d.umin, d.umax = 0, sc.U64
            else:
                d.umin, d.umax = a, bb
            d.var_off = tn.add(ptr.var_off, off.var_off)
            if ptr.type in (PTR_TO_PACKET, PTR_TO_PACKET_META):
                d.id = env.new_id()
                d.range = 0
    elif op == SUB:
        if off is regs[dstno]:
            raise Reject(f"R{dstno} tried to subtract pointer from scalar")
        if ptr.type == PTR_TO_STACK:
            raise Reject(f"R{dstno} subtraction from stack pointer prohibited")
        if known and sc.s32(ptr.off - smin_val) == ptr.off - smin_val:
            d.off = ptr.off - smin_val
        else:
            a, bb = ptr.smin - smax_val, ptr.smax - smin_val
            if a < sc.S64_MIN or a > sc.S64_MAX or bb < sc.S64_MIN or bb > sc.S64_MAX:
                d.smin, d.smax = sc.S64_MIN, sc.S64_MAX
            else:
                d.smin, d.smax = a, bb
            if ptr.umin < umax_val:
                d.umin, d.umax = 0, sc.U64
            else:
                d.umin, d.umax = ptr.umin - umax_val, ptr.umax - umin_val
            d.var_off = tn.sub(ptr.var_off, off.var_off)
            if ptr.type in (PTR_TO_PACKET, PTR_TO_PACKET_META):
                d.id = env.new_id()
                if smin_val < 0:
                    d.range = 0
    elif op in (AND, OR, XOR):
        raise Reject(f"R{dstno} bitwise operator {ALU_STR[op]} on pointer prohibited")
    else:
        raise Reject(f"R{dstno} pointer arithmetic with {ALU_STR[op]} operator prohibited")
    sc.mark32_unbounded(d)
    _sane_offset(d, ptr.type)
    sc.bounds_sync(d)
    if op in (ADD, SUB) and not env.caps.bypass_spec_v1:
        sanitize_check_bounds(env, d, dstno)
    if spec is not None:
        sanitize_commit(env, ins, op, d, spec)
    regs[dstno] = d
