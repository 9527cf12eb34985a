"""Calls: helper prototypes and arguments, reference tracking, bpf-to-bpf calls and exits.

check_helper_call(), check_func_arg(), check_func_call(), prepare_func_exit()
and check_return_code() from kernel/bpf/verifier.c.
"""

from __future__ import annotations

import os

from . import scalar as sc
from .caps import PERFMON_HELPERS
from .errors import Reject
from .helper_names import MAX_FUNC_ID, allowed_helpers
from .helpers_proto import (ACQUIRE, MAP_TYPES_CGROUP_STORAGE, PKT_ACCESS, PTR_CAST, MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_ARRAY,
                            MAP_TYPE_PERF_EVENT_ARRAY, MAP_TYPE_PROG_ARRAY, MAP_TYPE_QUEUE,
                            MAP_TYPE_RINGBUF, MAP_TYPE_STACK, MAP_TYPE_STACK_TRACE, PROTOS, PROTOS_BY_TYPE,
                            RET_BOUNDED_BY_SIZE, helper_name)
from .mem import (MAX_VAR_OFF, _check_ptr_off, check_alignment, check_map_access_type, check_mem_access, check_mem_region,
                  check_packet_access, stack_range_initialized)
from .state import (CONST_PTR_TO_MAP, MAX_CALL_FRAMES, MAYBE_NULL, MEM_RDONLY, MEM_RINGBUF,
                    NOT_INIT, PTR_TO_BUF, PTR_TO_CTX, PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE,
                    PTR_TO_MEM, PTR_TO_PACKET, PTR_TO_PACKET_END, PTR_TO_PACKET_META, PTR_TO_SOCK_COMMON,
                    PTR_TO_SOCKET, PTR_TO_STACK, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK, SCALAR,
                    STACK_INVALID, STACK_SPILL, STACK_ZERO, Frame, Reg, Slot, type_str)

__all__ = ["check_helper_call", "check_subprog_call", "check_exit", "nr_cpu_ids"]

_MEM_TYPES = (PTR_TO_STACK, PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE,
              PTR_TO_MEM, PTR_TO_MEM | MEM_RINGBUF, PTR_TO_BUF)
_MEM_NAMES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
_KEY_NAMES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf"
_SOCK_TYPES = (PTR_TO_SOCK_COMMON, PTR_TO_SOCKET, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK)
_PKT_READ_TYPES = {3, 4, 6, 8, 10, 11, 12, 14, 16, 19, 22}


def nr_cpu_ids() -> int:
    """The kernel's nr_cpu_ids (possible CPUs): bounds bpf_get_smp_processor_id()."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
        return int(text.split(",")[-1].split("-")[-1]) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def _type_err(regno: int, reg: Reg, expected: str) -> Reject:
    return Reject(f"R{regno} type={type_str(reg.type)} expected={expected}")


class _Meta:
    __slots__ = ("map", "mem_size", "raw_regno", "raw_size", "release_regno", "ref_obj_id",
                 "msize_max", "const_key", "func_id")

    def __init__(self):
        self.map = None
        self.mem_size = 0
        self.raw_regno = -1
        self.raw_size = 0
        self.release_regno = 0
        self.func_id = -1
        self.ref_obj_id = 0
        self.msize_max = 0
        self.const_key = -1


def _is_null(r: Reg) -> bool:
    return r.type == SCALAR and not r.var_off.mask and r.var_off.value == 0


def _helper_mem(env, regno: int, size: int, write: bool, zero_ok: bool, meta: _Meta | None) -> None:
    """check_helper_mem_access()."""
    reg = env.state.regs[regno]
    b = reg.type & 0xFF
    if size == 0 and not zero_ok:
        raise Reject("invalid zero-sized read")
    if reg.type in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        check_packet_access(env, reg, regno, reg.off, size, zero_ok)
    elif reg.type == PTR_TO_MAP_KEY:
        if write:
            raise Reject(f"R{regno} cannot write into {type_str(reg.type)}")
        check_mem_region(env, reg, regno, reg.off, size, reg.map.key_size)
    elif reg.type == PTR_TO_MAP_VALUE:
        check_map_access_type(reg.map, reg.type, reg.off + reg.smin, size, write)
        check_mem_region(env, reg, regno, reg.off, size, reg.map.value_size, zero_ok)
    elif b == PTR_TO_MEM and not reg.type & MAYBE_NULL:
        if reg.type & MEM_RDONLY and write:
            raise Reject(f"R{regno} cannot write into {type_str(reg.type)}")
        check_mem_region(env, reg, regno, reg.off, size, reg.mem_size, zero_ok)
    elif reg.type == PTR_TO_STACK:
        if meta is not None and meta.raw_regno == regno and not reg.var_off.mask:
            stack_range_initialized(env, reg, regno, reg.off, size, zero_ok, False, write=write, raw=True)
            meta.raw_size = size
            return
        stack_range_initialized(env, reg, regno, reg.off, size, zero_ok, write, write=write)
    else:
        if zero_ok and size == 0 and _is_null(reg):
            return
        raise Reject(f"R{regno} type={type_str(reg.type)} expected=fp")


def _size_arg(env, regno: int, zero_ok: bool, write: bool, meta: _Meta) -> None:
    """check_mem_size_reg()."""
    reg = env.state.regs[regno]
    meta.msize_max = reg.umax
    raw = meta.raw_regno == regno - 1 and not reg.var_off.mask
    if reg.smin < 0:
        raise Reject(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
    if reg.umin == 0 and not zero_ok:
        raise Reject(f"R{regno} invalid zero-sized read: u64=[{reg.umin},{reg.umax}]")
    if reg.umax >= MAX_VAR_OFF:
        raise Reject(f"R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")
    if not raw:
        meta.raw_regno = -1 if meta.raw_regno == regno - 1 else meta.raw_regno
    _helper_mem(env, regno - 1, reg.umax, write, zero_ok, meta if raw else None)


def _const_map_key(env, reg: Reg, key_size: int) -> int:
    """get_constant_map_key(): the key's value when it is a known constant on the stack."""
    if reg.type != PTR_TO_STACK or reg.var_off.mask:
        return -1
    stack_off = reg.off + sc.s64(reg.var_off.value)
    slot = -stack_off - 1
    spi, off = slot // 8, slot % 8
    frame = env.state.frames[reg.frameno]
    s = frame.stack.get(spi)
    types = s.types if s is not None else STACK_INVALID * 8
    zero = 0
    i = off
    while i >= 0 and types[i] == STACK_ZERO:
        zero += 1
        i -= 1
    if zero >= key_size:
        return 0
    if s is None or s.reg is None or types[7] != STACK_SPILL or s.reg.type != SCALAR:
        return -1
    spill = 0
    i = off
    while i >= 0 and types[i] == STACK_SPILL:
        spill += 1
        i -= 1
    if spill != key_size or s.reg.var_off.mask:
        return -1
    return s.reg.var_off.value


def _check_arg(env, i: int, kind: str, meta: _Meta, proto) -> None:
    regno = i + 1
    regs = env.state.regs
    reg = regs[regno]
    if reg.type == NOT_INIT:
        raise Reject(f"R{regno} !read_ok")
    if kind == "any":
        if env.leaks(regno):
            raise Reject(f"R{regno} leaks addr into helper function")
        return
    if kind == "map":
        if reg.type != CONST_PTR_TO_MAP:
            raise _type_err(regno, reg, "map_ptr")
        meta.map = reg.map
        return
    if kind in ("size", "size0"):
        if reg.type != SCALAR:
            raise _type_err(regno, reg, "scalar")
        prev = proto.args[i - 1]
        _size_arg(env, regno, kind == "size0", prev == "umem", meta)
        return
    if kind == "alloc0":
        if reg.type != SCALAR:
            raise _type_err(regno, reg, "scalar")
        if reg.var_off.mask:
            raise Reject(f"R{regno} is not a known constant'")
        meta.mem_size = reg.var_off.value
        return
    if kind == "ctx?" and _is_null(reg):
        return
    if kind in ("ctx", "ctx?"):
        if reg.type != PTR_TO_CTX:
            raise _type_err(regno, reg, "ctx")
        _check_ptr_off(reg, regno)
        return
    if kind == "sk_rel":
        if reg.type not in _SOCK_TYPES:
            raise _type_err(regno, reg, "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_")
        _release_arg(env, regno, reg, meta)
        return
    if kind == "rb_rel":
        if reg.type != PTR_TO_MEM | MEM_RINGBUF:
            raise _type_err(regno, reg, "ringbuf_mem")
        _release_arg(env, regno, reg, meta)
        return
    if kind == "sock?":
        if _is_null(reg):
            return
        if reg.type != PTR_TO_SOCKET:
            raise _type_err(regno, reg, "sock")
        if reg.ref_obj_id:
            meta.ref_obj_id = reg.ref_obj_id
        return
    if kind == "sockc":
        if reg.type not in _SOCK_TYPES:
            raise _type_err(regno, reg, "sock_common, sock, tcp_sock, xdp_sock")
        if reg.ref_obj_id:
            meta.ref_obj_id = reg.ref_obj_id
        return
    # memory-like arguments
    if kind == "mem?" and _is_null(reg):
        return
    t = reg.type
    if kind in ("mem", "mem?"):
        t &= ~MEM_RDONLY
    if t not in _MEM_TYPES:
        raise _type_err(regno, reg, _MEM_NAMES)
    if reg.type in (PTR_TO_PACKET, PTR_TO_PACKET_META) and (
            env.prog_type not in _PKT_READ_TYPES or meta.func_id not in PKT_ACCESS):
        raise Reject("helper access to the packet is not allowed")
    if reg.ref_obj_id:
        meta.ref_obj_id = reg.ref_obj_id
    if kind == "key":
        if meta.map is None:
            raise Reject("invalid map_ptr to access map->key")
        _helper_mem(env, regno, meta.map.key_size, False, False, None)
        if meta.map.type in (MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_ARRAY):
            meta.const_key = _const_map_key(env, reg, meta.map.key_size)
    elif kind in ("value", "uvalue"):
        if meta.map is None:
            raise Reject("invalid map_ptr to access map->value")
        if kind == "uvalue":
            meta.raw_regno = regno
        _helper_mem(env, regno, meta.map.value_size, kind == "uvalue", False,
                    meta if kind == "uvalue" else None)
    elif kind == "umem":
        meta.raw_regno = regno
    elif kind == "long":  # a fixed 8 bytes the helper writes; MEM_ALIGNED: then strictly aligned
        meta.raw_regno = regno
        _helper_mem(env, regno, 8, True, False, meta)
        check_alignment(env, reg, 0, 8, True)


def _release_arg(env, regno: int, reg: Reg, meta: _Meta) -> None:
    if not reg.ref_obj_id:
        raise Reject(f"R{regno} must be referenced when passed to release function")
    if reg.off:
        raise Reject(f"R{regno} must have zero offset when passed to release func or trusted arg to kfunc")
    _check_ptr_off(reg, regno)
    meta.release_regno = regno
    meta.ref_obj_id = reg.ref_obj_id


def release_reference(env, ref_id: int) -> None:
    st = env.state
    st.refs = [r for r in st.refs if r[0] != ref_id]
    for r in st.all_regs():
        if r.ref_obj_id == ref_id:
            r.set_unknown()


def _map_compat(env, m, func_id: int) -> None:
    if m is None:
        return
    mt = m.type
    ok = True
    if mt == MAP_TYPE_RINGBUF:
        ok = func_id in (130, 131, 134, 1)
        ok = func_id in (130, 131, 134)
    elif mt == MAP_TYPE_PROG_ARRAY:
        ok = func_id == 12
    elif mt == MAP_TYPE_PERF_EVENT_ARRAY:
        ok = func_id in (22, 25, 55, 171)
    elif mt == MAP_TYPE_STACK_TRACE:
        ok = func_id == 27
    elif mt in (MAP_TYPE_QUEUE, MAP_TYPE_STACK):
        ok = func_id in (87, 88, 89, 195)
    elif mt in MAP_TYPES_CGROUP_STORAGE:
        ok = func_id == 81
    if ok:
        need = {130: (MAP_TYPE_RINGBUF,), 131: (MAP_TYPE_RINGBUF,), 134: (MAP_TYPE_RINGBUF,),
                12: (MAP_TYPE_PROG_ARRAY,), 22: (MAP_TYPE_PERF_EVENT_ARRAY,),
                25: (MAP_TYPE_PERF_EVENT_ARRAY,), 27: (MAP_TYPE_STACK_TRACE,),
                87: (MAP_TYPE_QUEUE, MAP_TYPE_STACK), 88: (MAP_TYPE_QUEUE, MAP_TYPE_STACK),
                89: (MAP_TYPE_QUEUE, MAP_TYPE_STACK), 81: MAP_TYPES_CGROUP_STORAGE}.get(func_id)
        if need is not None and mt not in need:
            ok = False
    if not ok and func_id == 12:
        raise Reject("expected prog array map for tail call")
    if not ok:
        raise Reject(f"cannot pass map_type {mt} into func {helper_name(func_id)}#{func_id}")


# bpf_helper_changes_pkt_data(): helpers that may move or resize the packet
PKT_CHANGING = frozenset({9, 10, 11, 13, 18, 19, 31, 38, 39, 43, 44, 50, 54, 63, 65, 73, 74, 75, 76,
                          90, 91})


def clear_all_pkt_pointers(env) -> None:
    """After a packet-changing helper every packet pointer, in every frame and stack slot, is
    invalid: an unknown scalar, or NOT_INIT for a loader that may not leak pointers."""
    def bad(r):
        return r is not None and r.type in (PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_PACKET_END)

    def fresh():
        r = Reg()
        if env.caps.perfmon:
            r.set_unknown()
        return r
    for f in env.state.frames:
        for i, r in enumerate(f.regs):
            if bad(r):
                f.regs[i] = fresh()
        for spi, slot in list(f.stack.items()):
            if bad(slot.reg):
                f.stack[spi] = Slot(slot.types, fresh())


def check_helper_call(env, ins, idx: int) -> None:
    func_id = ins.imm
    if func_id < 0 or func_id >= MAX_FUNC_ID:
        raise Reject(f"invalid func {helper_name(func_id)}#{func_id}", errno=22)
    if env.profile is not None:  # does the helper exist / may this type call it, on that kernel
        env.profile.check_helper(env.prog_type, func_id)
    allowed = allowed_helpers(env.prog_type, env.attach)
    if allowed is None:
        raise Reject(f"helpers of program type {env.prog_type} are not modelled", errno=Reject.UNSUPPORTED)
    if func_id not in allowed or (func_id in PERFMON_HELPERS and not env.caps.perfmon):
        raise Reject(f"program of this type cannot use helper {helper_name(func_id)}#{func_id}", errno=22)
    proto = PROTOS_BY_TYPE.get((env.prog_type, func_id)) or PROTOS.get(func_id)
    if proto is None:
        raise Reject(f"no prototype for helper {helper_name(func_id)}#{func_id}", errno=Reject.UNSUPPORTED)
    meta = _Meta()
    meta.func_id = func_id
    for i, kind in enumerate(proto.args):
        _check_arg(env, i, kind, meta, proto)
    st = env.state
    regs = st.regs
    if meta.raw_regno >= 0 and meta.raw_size:
        base = regs[meta.raw_regno]
        if base.type == PTR_TO_STACK:
            for k in range(meta.raw_size):
                check_mem_access(env, meta.raw_regno, k, 1, True, -1)
    if meta.release_regno:
        rid = regs[meta.release_regno].ref_obj_id
        if not any(r[0] == rid for r in st.refs):
            raise Reject(f"R{meta.release_regno} must be referenced when passed to release function")
        release_reference(env, rid)
    if func_id == 12 and st.refs:
        raise Reject("tail_call would lead to reference leak")
    _map_compat(env, meta.map, func_id)
    if func_id == 81 and not (regs[2].type == SCALAR and regs[2].is_const and regs[2].var_off.value == 0):
        raise Reject("get_local_storage() doesn't support non-zero flags", errno=22)
    for r in range(6):
        regs[r] = Reg()
    r0 = regs[0]
    ret = proto.ret
    if ret == "int":
        r0.set_unknown()
        if func_id == 8:
            r0.umax = nr_cpu_ids() - 1
            r0.smax = r0.umax
            r0.u32max = r0.umax
            r0.s32max = r0.umax
            r0.umin = r0.smin = r0.u32min = r0.s32min = 0
            sc.bounds_sync(r0)
        elif func_id in RET_BOUNDED_BY_SIZE:
            r0.smax = r0.s32max = sc.s32(meta.msize_max) if meta.msize_max <= sc.S32_MAX else meta.msize_max
            r0.smin = r0.s32min = -4095
            sc.bounds_sync(r0)
    elif ret == "void":
        pass
    else:
        r0.set_const(0)
        if ret == "map_value?":
            if meta.map is None:
                raise Reject("kernel subsystem misconfigured verifier")
            r0.type = PTR_TO_MAP_VALUE | MAYBE_NULL
            r0.map = meta.map
            if meta.map.type in (12, 13):  # array/hash of maps: the inner map's pointer
                if getattr(meta.map, "inner", None) is None:
                    raise Reject("map-in-map without an inner map spec", errno=Reject.UNSUPPORTED)
                r0.type = CONST_PTR_TO_MAP | MAYBE_NULL
                r0.map = meta.map.inner
            elif meta.map.type in (15, 18):  # sockmap/sockhash: a referenced socket
                r0.type = PTR_TO_SOCKET | MAYBE_NULL
                r0.map = None
            elif meta.map.type == 17:  # xskmap: PTR_TO_XDP_SOCK
                raise Reject("xskmap lookups are not modelled", errno=Reject.UNSUPPORTED)
            elif func_id == 1 and meta.map.type in (MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_ARRAY) \
                    and 0 <= meta.const_key < meta.map.max_entries \
                    and (env.profile is None or env.profile.has("map_lookup_nonnull_const_key")):
                r0.type = PTR_TO_MAP_VALUE
        elif ret == "map_value":  # bpf_get_local_storage(): the cgroup storage, never NULL
            r0.type = PTR_TO_MAP_VALUE
            r0.map = meta.map
        elif ret == "sock?":
            r0.type = PTR_TO_SOCKET | MAYBE_NULL
        elif ret == "sock_common?":
            r0.type = PTR_TO_SOCK_COMMON | MAYBE_NULL
        elif ret == "tcp_sock?":
            r0.type = PTR_TO_TCP_SOCK | MAYBE_NULL
        elif ret == "ringbuf_mem?":
            r0.type = PTR_TO_MEM | MEM_RINGBUF | MAYBE_NULL
            r0.mem_size = meta.mem_size
        if r0.type & MAYBE_NULL:
            r0.id = env.new_id()
        if func_id in PTR_CAST:  # the same object seen as another type: same reference
            r0.ref_obj_id = meta.ref_obj_id
        elif func_id in ACQUIRE or (func_id == 1 and r0.type == PTR_TO_SOCKET | MAYBE_NULL):
            rid = env.new_id()
            st.refs.append((rid, idx))
            r0.id = rid
            r0.ref_obj_id = rid
    if func_id in PKT_CHANGING:
        clear_all_pkt_pointers(env)


def check_subprog_call(env, ins, idx: int) -> int:
    """check_func_call() for a static subprogram: push a frame, return the callee's first insn."""
    st = env.state
    if len(st.frames) >= MAX_CALL_FRAMES:
        raise Reject(f"the call stack of {len(st.frames) + 1} frames is too deep", errno=7)
    target = idx + ins.imm + 1
    caller = st.cur
    callee = Frame(len(st.frames), idx, env.prog.subprogs.index(target))
    for r in range(1, 6):
        callee.regs[r] = caller.regs[r].copy()
    for r in range(6):
        caller.regs[r] = Reg()
    st.frames.append(callee)
    return target


def check_exit(env, ins, idx: int):
    """BPF_EXIT: returns the caller's next insn for a subprogram, None at program exit."""
    # The kernel does not check off on exit (6.18 accepts a non-zero one).
    if ins.src or ins.dst or ins.imm or (ins.opcode & 7) != 5 or ins.opcode & 0x08:
        raise Reject("BPF_EXIT uses reserved fields", errno=22)
    st = env.state
    r0 = st.regs[0]
    if len(st.frames) > 1:
        # 6.18 does not require R0 at a subprogram's exit: the caller gets it as is
        if r0.type == PTR_TO_STACK:
            raise Reject("cannot return stack pointer to the caller", errno=22)
        callee = st.frames.pop()
        st.cur.regs[0] = r0
        env.note_stack_depth(callee)
        return callee.callsite + 1
    if st.refs:
        lines = [f"Unreleased reference id={rid} alloc_insn={ins_}" for rid, ins_ in st.refs]
        lines.append("BPF_EXIT instruction in main prog would lead to reference leak")
        raise Reject("\n".join(lines), errno=22)
    if r0.type == NOT_INIT:
        raise Reject("R0 !read_ok")
    if env.leaks(0):
        raise Reject("R0 leaks addr as return value")
    env.note_stack_depth(st.cur)
    _check_return_range(env, r0)
    return None


def _check_return_range(env, r0: Reg) -> None:
    pt = env.prog_type
    if pt == 8:  # cgroup_skb
        lo, hi = (0, 3) if env.attach == 1 else (0, 1)
    elif pt in (9, 13, 15, 23, 25):
        lo, hi = 0, 1
    elif pt == 18:  # cgroup_sock_addr: bind may ask for no port reuse check; getters must allow
        lo, hi = (0, 3) if env.attach in (8, 9) else (
            (1, 1) if env.attach in (19, 20, 29, 30, 31, 32, 51, 52, 53) else (0, 1))
    elif pt == 30:
        lo, hi = 0, 1
    else:
        return
    if r0.type != SCALAR:
        raise Reject(f"At program exit the register R0 is not a known value ({type_str(r0.type)})",
                     errno=22)
    if r0.smin >= lo and r0.smax <= hi:
        return
    desc = ""
    if r0.var_off.mask == 0:
        desc = f"={sc.s64(r0.var_off.value)}" if False else f" smin={r0.smin} smax={r0.smax}"
    else:
        parts = []
        if r0.smin != sc.S64_MIN:
            parts.append(f"smin={r0.smin}")
        if r0.smax != sc.S64_MAX:
            parts.append(f"smax={r0.smax}")
        desc = (" " + " ".join(parts)) if parts else " unknown scalar value"
    raise Reject(f"At program exit the register R0 has{desc} should have been in [{lo}, {hi}]", errno=22)
