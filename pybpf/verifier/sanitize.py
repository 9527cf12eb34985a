"""Spectre v1 rules for pointer arithmetic, applied when the loader lacks CAP_PERFMON.

sanitize_ptr_alu(), retrieve_ptr_limit(), update_alu_sanitation_state() and
sanitize_check_bounds() from kernel/bpf/verifier.c. The kernel masks the
offset of ``ptr += reg`` at run time so that a mispredicted branch cannot move
the pointer out of its object; to do so it needs one masking window per
instruction. The verifier therefore refuses offsets of mixed sign, pointer
types it cannot bound (only stack and map values), and an instruction that
different paths reach with different windows. Afterwards the pointer itself
must stay in bounds.
"""

from __future__ import annotations

from pybpf.asm import opcodes as op

from . import scalar as sc
from . import tnum as tn
from .errors import Reject
from .state import (MAX_BPF_STACK, NOT_INIT, PTR_TO_MAP_VALUE, PTR_TO_STACK, SCALAR,
                    STACK_INVALID, STACK_MISC, STACK_ZERO, Reg)

__all__ = ["sanitize_ptr_alu", "sanitize_commit", "sanitize_check_bounds", "spec_v4_store"]

_ERR = "pointer arithmetic with it prohibited for !root"
_NEG_VALUE, _IMMEDIATE, _SANITIZE_SRC, _SANITIZE_DST = 1 << 2, 1 << 3, 1, 2
_U32 = 0xFFFFFFFF


class _Info:
    __slots__ = ("state", "limit", "mask_to_left", "off_regno")


def _opname(op_: int) -> str:
    return "add" if op_ == 0x00 else "sub"


def _limit(env, ptr: Reg, mask_to_left: bool, ins, op_: int, info: _Info) -> int:
    """retrieve_ptr_limit(): how far the pointer may move in the masked direction."""
    if ptr.type == PTR_TO_STACK:
        hi = MAX_BPF_STACK + int(mask_to_left)
        lim = (-(sc.s64(ptr.var_off.value) + ptr.off)) & _U32
    elif ptr.type == PTR_TO_MAP_VALUE:
        hi = ptr.map.value_size
        lim = ((ptr.smin if mask_to_left else ptr.umax) + ptr.off) & _U32
    else:
        regno = ins.src if info.off_regno == ins.dst else ins.dst
        raise Reject(f"R{regno} has pointer with unsupported alu operation, {_ERR}")
    if lim >= hi:
        raise Reject(f"R{ins.dst} tried to {_opname(op_)} beyond pointer bounds, {_ERR}")
    return lim


def sanitize_ptr_alu(env, ins, op_: int, ptr: Reg, off: Reg, dstno: int,
                     off_is_dst: bool) -> _Info | None:
    """The check before the operation: returns what the commit step needs.

    None when a speculation barrier already guards the insn (can_skip_alu_sanitation()).
    A variable offset is masked at run time; a mispredicted path may see it masked to zero,
    so the kernel also walks the next insn speculatively with the pointer unmoved.
    """
    if env.insn_idx in env.nospec:
        return None
    info = _Info()
    info.off_regno = dstno if off_is_dst else ins.src
    off_is_imm = not off.var_off.mask
    off_is_neg = off.smin < 0
    if not off_is_imm and (off.smin < 0) != (off.smax < 0):
        raise Reject(f"R{info.off_regno} has unknown scalar with mixed signed bounds, {_ERR}")
    info.mask_to_left = (op_ == 0x00 and off_is_neg) or (op_ == 0x10 and not off_is_neg)
    info.limit = _limit(env, ptr, info.mask_to_left, ins, op_, info)
    info.state = ((_NEG_VALUE if off_is_neg else 0) | (_IMMEDIATE if off_is_imm else 0)
                  | (_SANITIZE_DST if off_is_dst else _SANITIZE_SRC))
    if not off_is_imm:  # sanitize_speculative_path(env, NULL, ...): dst is the unmoved pointer
        spec = env.push_state(env.insn_idx + 1, env.insn_idx)
        spec.speculative = True
        spec.regs[dstno] = ptr.copy()
    return info


def sanitize_commit(env, ins, op_: int, dst: Reg, info: _Info) -> None:
    """The check after the operation: one masking window per instruction on every path."""
    after = _limit(env, dst, info.mask_to_left, ins, op_, info)
    window = (info.state, abs(info.limit - after))
    prev = env.alu_aux.get(env.insn_idx)
    if prev is not None and prev != window:
        raise Reject(f"R{ins.dst} tried to {_opname(op_)} from different maps, paths or scalars, {_ERR}")
    env.alu_aux[env.insn_idx] = window


def sanitize_check_bounds(env, dst: Reg, regno: int) -> None:
    """The moved pointer must itself be in bounds (stack and map values)."""
    if dst.type == PTR_TO_STACK:
        if dst.var_off.mask:
            raise Reject(f"R{regno} variable stack access prohibited for !root, "
                         f"var_off={tn.to_str(dst.var_off)} off={dst.off}")
        off = dst.off + sc.s64(dst.var_off.value)
        if off >= 0 or off < -MAX_BPF_STACK:
            raise Reject(f"R{regno} stack pointer arithmetic goes out of range, "
                         f"prohibited for !root; off={off}")
    elif dst.type == PTR_TO_MAP_VALUE:
        from .mem import check_mem_region
        try:
            check_mem_region(env, dst, regno, dst.off, 1, dst.map.value_size)
        except Reject:
            raise Reject(f"R{regno} pointer arithmetic of map value goes out of range, "
                         f"prohibited for !root") from None


def spec_v4_store(env, ins, idx: int, value: Reg | None) -> None:
    """check_stack_write_fixed_off(): without CAP_PERFMON a stack store that overwrites anything
    but data (a spill, uninitialised bytes) or spills a pointer is followed by a speculation
    barrier (Spectre v4). Its insn is remembered: a speculative path ends once past it.

    The bytes looked at are the ones the store overwrites (measured on 6.18: a u32 store over
    a u32 spill is fenced, a u32 zero store over zeroed bytes is not).
    """
    if env.caps.bypass_spec_v4:
        return
    dst = env.state.regs[ins.dst]
    if dst.type != PTR_TO_STACK or dst.var_off.mask:
        return
    off = dst.off + sc.s64(dst.var_off.value) + ins.off
    if not -MAX_BPF_STACK <= off < 0 or dst.frameno >= len(env.state.frames):
        return
    slot = -off - 1
    old = env.state.frames[dst.frameno].stack.get(slot // 8)
    types = old.types if old is not None else STACK_INVALID * 8
    size = op.SIZE_BYTES[ins.opcode & 0x18]
    if (value is not None and value.type not in (SCALAR, NOT_INIT)) or \
            any(types[(slot - i) % 8] not in (STACK_MISC, STACK_ZERO) for i in range(size)):
        env.nospec_result.add(idx)
