"""Memory access checks: stack, map values and keys, packets, ctx, sockets, helper memory.

check_mem_access() and its helpers from kernel/bpf/verifier.c, for a privileged
loader (CAP_BPF + CAP_PERFMON, as root): uninitialised stack may be read and
pointers may be spilled or stored anywhere, but every access must stay inside
the object the pointer points to.
"""

from __future__ import annotations

from . import scalar as sc
from . import tnum as tn
from .context import ctx_access, supported as ctx_supported
from .errors import Reject
from .state import (ADD_CONST, CONST_PTR_TO_MAP, MAX_BPF_STACK, MAYBE_NULL, MEM_RDONLY, PTR_TO_CTX,
                    PTR_TO_FLOW_KEYS, PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE, PTR_TO_MEM,
                    PTR_TO_PACKET, PTR_TO_PACKET_END, PTR_TO_PACKET_META, PTR_TO_SOCK_COMMON,
                    PTR_TO_SOCKET, PTR_TO_STACK, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK, SCALAR,
                    STACK_INVALID, STACK_MISC, STACK_SPILL, STACK_ZERO, Reg, Slot, type_str)

__all__ = ["check_mem_access", "check_mem_region", "stack_range_initialized", "MAX_VAR_OFF"]

MAX_VAR_OFF = 1 << 29
MAX_PACKET_OFF = 0xFFFF
SK_TYPES = (PTR_TO_SOCKET, PTR_TO_SOCK_COMMON, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK)
# Program types that may write into packets directly (may_access_direct_pkt_data()):
# lwt_in, lwt_out, lwt_seg6local, cgroup_skb and others may only read.
_PKT_WRITE = {3, 4, 6, 12, 14, 16}


# The struct behind each map type's CONST_PTR_TO_MAP (map_btf_id), named in unprivileged errors.
_MAP_STRUCT = {1: "bpf_htab", 5: "bpf_htab", 9: "bpf_htab", 10: "bpf_htab", 2: "bpf_array",
               6: "bpf_array", 3: "bpf_array", 4: "bpf_array", 8: "bpf_array", 13: "bpf_array",
               7: "bpf_stack_map", 22: "bpf_queue_stack", 23: "bpf_queue_stack",
               27: "bpf_ringbuf_map", 11: "lpm_trie", 12: "bpf_htab"}


def _tstr(v: tn.Tnum) -> str:
    return str(v.value) if not v.mask else tn.to_str(v)


def _err(msg: str) -> Reject:
    return Reject(msg)


def check_alignment(env, reg: Reg, off: int, size: int, strict: bool) -> None:
    t = reg.type
    strict = strict or env.strict_alignment
    if t in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        # check_pkt_ptr_alignment(): x86-64 has efficient unaligned access, so only
        # BPF_F_STRICT_ALIGNMENT checks packets, and then as if NET_IP_ALIGN were 2.
        if not strict or size == 1:
            return
        if not tn.is_aligned(tn.add(reg.var_off, tn.const(2 + reg.off + off)), size):
            raise _err(f"misaligned packet access off 2+{_tstr(reg.var_off)}+{reg.off}+{off} size {size}")
        return
    desc = {PTR_TO_FLOW_KEYS: "flow keys ", PTR_TO_MAP_KEY: "key ", PTR_TO_MAP_VALUE: "value ",
            PTR_TO_CTX: "context ", PTR_TO_STACK: "stack ", PTR_TO_SOCKET: "sock ",
            PTR_TO_SOCK_COMMON: "sock_common ", PTR_TO_TCP_SOCK: "tcp_sock ",
            PTR_TO_XDP_SOCK: "xdp_sock "}.get(t, "")
    if t == PTR_TO_STACK:
        strict = True
    if not strict or size == 1:
        return
    reg_off = tn.add(reg.var_off, tn.const(reg.off + off))
    if not tn.is_aligned(reg_off, size):
        raise _err(f"misaligned {desc}access off {_tstr(reg.var_off)}+{reg.off}+{off} size {size}")


def _mem_err(reg: Reg, regno: int, off: int, size: int, mem_size: int) -> str:
    b = reg.type & 0xFF
    if b == PTR_TO_MAP_KEY:
        return f"invalid access to map key, key_size={mem_size} off={off} size={size}"
    if b == PTR_TO_MAP_VALUE:
        return f"invalid access to map value, value_size={mem_size} off={off} size={size}"
    if b in (PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_PACKET_END):
        return (f"invalid access to packet, off={off} size={size}, "
                f"R{regno}(id={reg.id},off={reg.off},r={reg.range})")
    return f"invalid access to memory, mem_size={mem_size} off={off} size={size}"


def _mem_ok(off: int, size: int, mem_size: int, zero_ok: bool) -> bool:
    return off >= 0 and (size > 0 or (size == 0 and zero_ok)) and off + size <= mem_size


def check_mem_region(env, reg: Reg, regno: int, off: int, size: int, mem_size: int,
                     zero_ok: bool = False) -> None:
    """check_mem_region_access(): [off + min, off + max + size) inside [0, mem_size)."""
    if reg.smin < 0 and (reg.smin == sc.S64_MIN or sc.s32(off + reg.smin) != off + reg.smin
                         or reg.smin + off < 0):
        raise _err(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
    lo = reg.smin + off
    if not _mem_ok(lo, size, mem_size, zero_ok):
        raise _err(_mem_err(reg, regno, lo, size, mem_size)
                   + f"\nR{regno} min value is outside of the allowed memory range")
    if reg.umax >= MAX_VAR_OFF:
        raise _err(f"R{regno} unbounded memory access, make sure to bounds check any such access")
    hi = reg.umax + off
    if not _mem_ok(hi, size, mem_size, zero_ok):
        raise _err(_mem_err(reg, regno, hi, size, mem_size)
                   + f"\nR{regno} max value is outside of the allowed memory range")


def check_packet_access(env, reg: Reg, regno: int, off: int, size: int, zero_ok: bool = False) -> None:
    if reg.smin < 0:
        raise _err(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
    if reg.range < 0 or not _mem_ok(off, size, reg.range, zero_ok):
        msg = "" if reg.range < 0 else _mem_err(reg, regno, off, size, reg.range) + "\n"
        raise _err(msg + f"R{regno} offset is outside of the packet")


def _check_ptr_off(reg: Reg, regno: int, fixed_off_ok: bool = False) -> None:
    """__check_ptr_off_reg(): pointers used in their original, unmodified form."""
    if reg.off < 0:
        raise _err(f"negative offset {type_str(reg.type)} ptr R{regno} off={reg.off} disallowed")
    if not fixed_off_ok and reg.off:
        raise _err(f"dereference of modified {type_str(reg.type)} ptr R{regno} off={reg.off} disallowed")
    if reg.var_off.mask or reg.var_off.value:
        raise _err(f"variable {type_str(reg.type)} access var_off={tn.to_str(reg.var_off)} disallowed")


# ---- stack -----------------------------------------------------------------------------------

def stack_bounds(env, reg: Reg, regno: int, off: int, size: int, write: bool,
                 extra: str | None = None, zero_ok: bool = False) -> tuple[int, int]:
    """check_stack_access_within_bounds(): returns (min_off, max_off).

    ``zero_ok``: a helper's zero-size buffer (``ARG_CONST_SIZE_OR_ZERO``) anywhere
    in the stack is accepted without touching it.
    """
    err_extra = extra if extra is not None else (" write to" if write else " read from")
    if not reg.var_off.mask:
        min_off = sc.s64(reg.var_off.value) + off
        max_off = min_off + size
    else:
        if reg.smax >= MAX_VAR_OFF or reg.smin <= -MAX_VAR_OFF:
            raise _err(f"invalid unbounded variable-offset{err_extra} stack R{regno}")
        min_off = reg.smin + off
        max_off = reg.smax + off + size
    if size == 0 and zero_ok and -MAX_BPF_STACK <= min_off <= 0:
        return min_off, min_off
    frame = env.state.frames[reg.frameno]
    # check_stack_slot_within_bounds(): without CAP_PERFMON only what was written may be read
    lo = -MAX_BPF_STACK if write or env.caps.allow_uninit_stack else -frame.allocated
    bad = min_off < lo or min_off > -1 or max_off > 0 or size < 0
    if bad:
        if not reg.var_off.mask:
            raise _err(f"invalid{err_extra} stack R{regno} off={off} size={size}")
        raise _err(f"invalid variable-offset{err_extra} stack R{regno} var_off={tn.to_str(reg.var_off)} "
                   f"off={off} size={size}")
    need = -min_off
    if need > frame.allocated:
        frame.allocated = (need + 7) // 8 * 8
    return min_off, max_off


def _set_bytes(types: str, slot: int, size: int, t: str) -> str:
    lst = list(types)
    for i in range(size):
        lst[(slot - i) % 8] = t
    return "".join(lst)


def _width(r: Reg) -> int:
    return r.umax.bit_length()


def stack_write_fixed(env, frame, off: int, size: int, value: Reg | None, imm: int | None) -> None:
    slot = -off - 1
    spi = slot // 8
    old = frame.stack.get(spi)
    types = old.types if old is not None else STACK_INVALID * 8
    if (size != 8 and not env.caps.allow_ptr_leaks and types[7] == STACK_SPILL
            and old.reg is not None and old.reg.type != SCALAR):
        raise _err("attempt to corrupt spilled pointer on stack")
    if value is not None and off % 8 == 0 and value.type == SCALAR:
        fits = _width(value) <= 8 * size
        if fits and value.id & ADD_CONST:
            value.id = value.off = 0
        if fits and not value.id and value.var_off.mask:
            value.id = env.new_id()  # assign_scalar_id_before_mov(): fills stay linked to the register
        spilled = value.copy()
        if not fits:
            spilled.id = 0
        _save_spill(frame, spi, spilled, size, types)
    elif value is None and imm is not None and off % 8 == 0:
        _save_spill(frame, spi, Reg.scalar_const(imm), size, types)
    elif value is not None and value.type != SCALAR:
        if size != 8:
            raise _err("invalid size of register spill")
        if frame is not env.state.cur and value.type == PTR_TO_STACK:
            raise _err("cannot spill pointers to stack into stack frame of the caller")
        _save_spill(frame, spi, value.copy(), size, types)
    else:
        if types[7] == STACK_SPILL or STACK_SPILL in types:
            types = types.replace(STACK_SPILL, STACK_MISC)
        zero = (value is not None and value.is_const and value.var_off.value == 0) or \
               (value is None and imm == 0)
        types = _set_bytes(types, slot, size, STACK_ZERO if zero else STACK_MISC)
        frame.stack[spi] = Slot(types, None)


def _save_spill(frame, spi: int, reg: Reg, size: int, types: str) -> None:
    lst = list(types)
    for i in range(8, 8 - size, -1):
        lst[i - 1] = STACK_SPILL
    for i in range(8 - size, 0, -1):
        if lst[i - 1] not in (STACK_ZERO, STACK_INVALID):
            lst[i - 1] = STACK_MISC
    frame.stack[spi] = Slot("".join(lst), reg)


def stack_write_var(env, frame, min_off: int, max_off: int, value: Reg | None, imm: int | None) -> None:
    zero = (value is not None and value.is_const and value.var_off.value == 0) or (value is None and imm == 0)
    for i in range(min_off, max_off):
        slot = -i - 1
        spi = slot // 8
        s = frame.stack.get(spi)
        if (zero and s is not None and s.reg is not None and s.types[slot % 8] == STACK_SPILL
                and s.reg.type == SCALAR and s.reg.is_const and s.reg.var_off.value == 0):
            continue  # writing zero over a spilled constant zero keeps the spill
        types = list(s.types if s is not None else STACK_INVALID * 8)
        cur = types[slot % 8]
        types[slot % 8] = STACK_ZERO if (zero and cur == STACK_ZERO) else STACK_MISC
        if s is not None and s.reg is not None:
            types = [STACK_MISC if t == STACK_SPILL else t for t in types]
        frame.stack[spi] = Slot("".join(types), None)


def stack_read_fixed(env, frame, off: int, size: int, dst: int) -> Reg | None:
    slot = -off - 1
    spi = slot // 8
    s = frame.stack.get(spi)
    types = s.types if s is not None else STACK_INVALID * 8
    if types[7] == STACK_SPILL and s.reg is not None:
        spilled = s.reg
        spill_size = 1
        i = 7
        while i > 0 and types[i - 1] == STACK_SPILL:
            spill_size += 1
            i -= 1
        if size != 8 or spill_size != 8:
            if spilled.type != SCALAR:
                raise _err("invalid size of register fill")
            if dst < 0:
                return None
            if size <= spill_size and off % 8 == 0:
                r = spilled.copy()
                if _width(spilled) > size * 8:
                    r.id = 0
                return r
            spill_cnt = zero_cnt = 0
            for i in range(size):
                t = types[(slot - i) % 8]
                if t == STACK_SPILL:
                    spill_cnt += 1
                elif t == STACK_ZERO:
                    zero_cnt += 1
                elif t == STACK_INVALID and not env.caps.allow_uninit_stack:
                    raise _err(f"invalid read from stack off {off}+{i} size {size}")
            if (spill_cnt == size and spilled.is_const and spilled.var_off.value == 0) or zero_cnt == size:
                return Reg.scalar_const(0)
            return Reg.scalar_unknown()
        if dst >= 0:
            return spilled.copy()
        return None
    if not env.caps.allow_uninit_stack:
        for i in range(size):
            if types[(slot - i) % 8] not in (STACK_MISC, STACK_ZERO):
                raise _err(f"invalid read from stack off {off}+{i} size {size}")
    if dst < 0:
        return None
    zero = all(types[(slot - i) % 8] == STACK_ZERO for i in range(size))
    return Reg.scalar_const(0) if zero else Reg.scalar_unknown()


def stack_range_initialized(env, reg: Reg, regno: int, off: int, size: int, zero_ok: bool,
                            clobber: bool, *, write: bool = False, raw: bool = False) -> None:
    """check_stack_range_initialized() for helper memory arguments.

    ``raw``: the helper only writes (ARG_PTR_TO_UNINIT_MEM), nothing need be initialised.
    """
    min_off, max_off = stack_bounds(env, reg, regno, off, size, write or clobber, zero_ok=zero_ok)
    frame = env.state.frames[reg.frameno]
    if not raw and not (env.caps.allow_uninit_stack and env.caps.allow_ptr_leaks):
        for i in range(min_off, max_off):
            slot = -i - 1
            s = frame.stack.get(slot // 8)
            t = s.types[slot % 8] if s is not None else STACK_INVALID
            if t == STACK_MISC or t == STACK_ZERO or (t == STACK_INVALID and env.caps.allow_uninit_stack):
                continue
            if s is not None and s.types[7] == STACK_SPILL and s.reg is not None and \
                    (s.reg.type == SCALAR or env.caps.allow_ptr_leaks):
                continue
            raise _err(f"invalid read from stack R{regno} off {min_off}+{i - min_off} size {max_off - min_off}")
    if clobber:
        for i in range(min_off, max_off):
            slot = -i - 1
            spi = slot // 8
            s = frame.stack.get(spi)
            types = list(s.types if s is not None else STACK_INVALID * 8)
            if s is not None and s.reg is not None:
                types = [STACK_MISC] * 8
            elif types[slot % 8] != STACK_ZERO:
                types[slot % 8] = STACK_MISC
            else:
                types[slot % 8] = STACK_MISC
            frame.stack[spi] = Slot("".join(types), None)


# ---- the dispatcher ------------------------------------------------------------------------

def check_map_access_type(m, t: int, off: int, size: int, write: bool) -> None:
    """check_map_access_type(): BPF_F_RDONLY_PROG / BPF_F_WRONLY_PROG maps refuse the other direction."""
    flags = getattr(m, "flags", 0)
    if write and (flags & 0x80 or t & MEM_RDONLY):  # BPF_F_RDONLY_PROG
        raise _err(f"write into map forbidden, value_size={m.value_size} off={off} size={size}")
    if not write and flags & 0x100:  # BPF_F_WRONLY_PROG
        raise _err(f"read from map forbidden, value_size={m.value_size} off={off} size={size}")


def check_mem_access(env, regno: int, off: int, size: int, write: bool, value_regno: int,
                     strict: bool = False, sx: bool = False, imm: int | None = None) -> None:
    """check_mem_access(): validate ``*(size *)(R[regno] + off)`` and set R[value_regno] on reads."""
    regs = env.state.regs
    reg = regs[regno]
    check_alignment(env, reg, off, size, strict)
    off += reg.off
    t = reg.type
    result: Reg | None = None
    if t == PTR_TO_MAP_KEY:
        if write:
            raise _err(f"write to change key R{regno} not allowed")
        check_mem_region(env, reg, regno, off, size, reg.map.key_size)
        result = Reg.scalar_unknown()
    elif t == PTR_TO_MAP_VALUE or t == PTR_TO_MAP_VALUE | MEM_RDONLY:
        m = reg.map
        if write and value_regno >= 0 and env.leaks(value_regno):
            raise _err(f"R{value_regno} leaks addr into map")
        check_map_access_type(m, t, off + reg.smin, size, write)
        check_mem_region(env, reg, regno, off, size, m.value_size)
        result = Reg.scalar_unknown()
    elif t & 0xFF == PTR_TO_MEM:
        if t & MAYBE_NULL:
            raise _err(f"R{regno} invalid mem access '{type_str(t)}'")
        if write and t & MEM_RDONLY:
            raise _err(f"R{regno} cannot write into {type_str(t)}")
        if write and value_regno >= 0 and env.leaks(value_regno):
            raise _err(f"R{value_regno} leaks addr into mem")
        check_mem_region(env, reg, regno, off, size, reg.mem_size)
        result = Reg.scalar_unknown()
    elif t == PTR_TO_CTX:
        if write and value_regno >= 0 and env.leaks(value_regno):
            raise _err(f"R{value_regno} leaks addr into ctx")
        if reg.off < 0 or reg.off or reg.var_off.mask or reg.var_off.value:
            _check_ptr_off(reg, regno)
        if not ctx_supported(env.prog_type):
            raise Reject(f"ctx access for program type {env.prog_type} is not modelled",
                         errno=Reject.UNSUPPORTED)
        rtype = ctx_access(env.prog_type, off, size, write, env.attach)
        if sx and rtype in (PTR_TO_PACKET, PTR_TO_PACKET_END, PTR_TO_PACKET_META):
            rtype = None  # bpf_skb/xdp_is_valid_access(): info->is_ldsx refuses the packet pointers
        if rtype is None:
            raise _err(f"invalid bpf_context access off={off} size={size}")
        if rtype == SCALAR:
            result = Reg.scalar_unknown()
        else:
            result = Reg.pointer(rtype)
            if rtype & MAYBE_NULL:
                result.id = env.new_id()
    elif t == PTR_TO_STACK:
        min_off, max_off = stack_bounds(env, reg, regno, off, size, write)
        frame = env.state.frames[reg.frameno]
        if not reg.var_off.mask:
            o = sc.s64(reg.var_off.value) + off
            if write:
                stack_write_fixed(env, frame, o, size, regs[value_regno] if value_regno >= 0 else None, imm)
            else:
                result = stack_read_fixed(env, frame, o, size, value_regno)
        else:
            if write:
                stack_write_var(env, frame, min_off, max_off, regs[value_regno] if value_regno >= 0 else None, imm)
            else:
                zero = True
                for i in range(min_off, max_off):
                    slot = -i - 1
                    if frame.slot_types(slot // 8)[slot % 8] != STACK_ZERO:
                        zero = False
                result = Reg.scalar_const(0) if zero else Reg.scalar_unknown()
    elif t in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        if write and env.prog_type not in _PKT_WRITE:
            raise _err("cannot write into packet")
        if write and value_regno >= 0 and env.leaks(value_regno):
            raise _err(f"R{value_regno} leaks addr into packet")
        check_packet_access(env, reg, regno, off, size)
        result = Reg.scalar_unknown()
    elif t == CONST_PTR_TO_MAP:
        # check_ptr_to_map_access(): reads of the map's kernel struct, by BTF
        tname = _MAP_STRUCT.get(reg.map.type, "bpf_map")
        if not env.caps.allow_ptr_leaks:
            raise Reject(f"'struct {tname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN",
                         errno=1)
        if off < 0:
            raise _err(f"R{regno} is {tname} invalid negative access: off={off}")
        if write:
            raise _err(f"only read from {tname} is supported")
        if reg.var_off.mask:
            raise _err(f"R{regno} invalid mem access '{type_str(t)}'")
        result = Reg.scalar_unknown()
    elif t in SK_TYPES:
        if write:
            raise _err(f"R{regno} cannot write into {type_str(t)}")
        if reg.smin < 0:
            raise _err(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
        if not _sock_access_ok(t, off, size):
            raise _err(f"R{regno} invalid {type_str(t)} access off={off} size={size}")
        result = Reg.scalar_unknown()
    else:
        raise _err(f"R{regno} invalid mem access '{type_str(t)}'")
    if write or value_regno < 0:
        return
    if result is None:
        result = Reg.scalar_unknown()
    if result.type == SCALAR and size < 8:
        if sx:
            sc.coerce_sx(result, size)
        else:
            sc.coerce_to_size(result, size)
    regs[value_regno] = result


def _narrow_ok(size: int, field: int) -> bool:
    """bpf_ctx_narrow_access_ok(): a power-of-two load no wider than the field."""
    return size <= field and not size & (size - 1)


# struct bpf_sock: 4-byte fields, dst_port a 2-byte one at 48 followed by 2 bytes of padding.
_SOCK_SIZE, _SOCK_TYPE, _SOCK_PRIORITY_END, _SOCK_DST_PORT = 80, 8, 24, 48
# family, type, protocol, src_port, state, rx_queue_mapping may be read narrowly at their start;
# the addresses (src_ip4, src_ip6, dst_ip4, dst_ip6) at any offset inside.
_SOCK_NARROW_AT = (4, 8, 12, 44, 72, 76)
# struct bpf_tcp_sock: u32 fields but for the u64 bytes_received and bytes_acked.
_TCP_SOCK_END, _TCP_SOCK_U64 = 112, (80, 88)


def _sock_access_ok(t: int, off: int, size: int) -> bool:
    """bpf_sock_common/bpf_sock/bpf_tcp_sock/bpf_xdp_sock_is_valid_access()."""
    if t == PTR_TO_TCP_SOCK:
        if off < 0 or off >= _TCP_SOCK_END or off % size:
            return False
        return size == (8 if off in _TCP_SOCK_U64 else 4)
    if t == PTR_TO_XDP_SOCK:
        return off == 0 and size == 4  # queue_id
    if t == PTR_TO_SOCK_COMMON and _SOCK_TYPE <= off < _SOCK_PRIORITY_END:
        return False  # type, protocol, mark, priority need a full socket
    if off < 0 or off >= _SOCK_SIZE or off % size:
        return False
    if off in (_SOCK_DST_PORT, _SOCK_DST_PORT + 1):
        return _narrow_ok(size, 4 if size == 4 else 2)
    if off in (_SOCK_DST_PORT + 2, _SOCK_DST_PORT + 3):
        return False
    if off in _SOCK_NARROW_AT or 24 <= off < 44 or 52 <= off < 72:
        return _narrow_ok(size, 4)
    return size == 4
