"""Register, stack and frame state of one verification path.

Mirrors struct bpf_reg_state / bpf_func_state / bpf_verifier_state closely
enough that the checker can be read side by side with kernel/bpf/verifier.c.
Register types are ints with the kernel's flag bits (``MAYBE_NULL``...), and
print with the kernel's names (``map_value_or_null``, ``fp``...).
"""

from __future__ import annotations

from . import tnum as tn
from .scalar import S32_MAX, S32_MIN, S64_MAX, S64_MIN, U32, U64, mark_known, mark_unknown

__all__ = ["Reg", "Frame", "State", "NOT_INIT", "SCALAR", "PTR_TO_CTX", "CONST_PTR_TO_MAP",
           "PTR_TO_MAP_VALUE", "PTR_TO_MAP_KEY", "PTR_TO_STACK", "PTR_TO_PACKET",
           "PTR_TO_PACKET_META", "PTR_TO_PACKET_END", "PTR_TO_SOCKET", "PTR_TO_SOCK_COMMON",
           "PTR_TO_TCP_SOCK", "PTR_TO_MEM", "PTR_TO_BTF_ID", "PTR_TO_FUNC", "PTR_TO_TP_BUFFER",
           "PTR_TO_FLOW_KEYS", "PTR_TO_XDP_SOCK", "MAYBE_NULL", "MEM_RDONLY", "MEM_RINGBUF",
           "base_type", "type_str", "STACK_INVALID", "STACK_SPILL", "STACK_MISC", "STACK_ZERO",
           "MAX_BPF_STACK", "MAX_CALL_FRAMES", "ADD_CONST", "ADD_CONST32", "ADD_CONST64"]

MAX_BPF_STACK = 512
# Scalar id flags (BPF_ADD_CONST64/32): "this register is the id's value plus ``off``",
# set by ``rX += const`` on a linked scalar so a branch on either teaches the other.
ADD_CONST64 = 1 << 31
ADD_CONST32 = 1 << 30
ADD_CONST = ADD_CONST64 | ADD_CONST32
MAX_CALL_FRAMES = 8

# Base register types (the order is ours; the names are the kernel's).
(NOT_INIT, SCALAR, PTR_TO_CTX, CONST_PTR_TO_MAP, PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY, PTR_TO_STACK,
 PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_PACKET_END, PTR_TO_FLOW_KEYS, PTR_TO_SOCKET,
 PTR_TO_SOCK_COMMON, PTR_TO_TCP_SOCK, PTR_TO_TP_BUFFER, PTR_TO_XDP_SOCK, PTR_TO_BTF_ID,
 PTR_TO_MEM, PTR_TO_BUF, PTR_TO_FUNC) = range(20)
BASE_MASK = 0xFF
# Type flags.
MAYBE_NULL = 1 << 8
MEM_RDONLY = 1 << 9
MEM_RINGBUF = 1 << 10
MEM_ALLOC = 1 << 11

_NAMES = {
    NOT_INIT: "?", SCALAR: "scalar", PTR_TO_CTX: "ctx", CONST_PTR_TO_MAP: "map_ptr",
    PTR_TO_MAP_VALUE: "map_value", PTR_TO_MAP_KEY: "map_key", PTR_TO_STACK: "fp",
    PTR_TO_PACKET: "pkt", PTR_TO_PACKET_META: "pkt_meta", PTR_TO_PACKET_END: "pkt_end",
    PTR_TO_FLOW_KEYS: "flow_keys", PTR_TO_SOCKET: "sock", PTR_TO_SOCK_COMMON: "sock_common",
    PTR_TO_TCP_SOCK: "tcp_sock", PTR_TO_TP_BUFFER: "tp_buffer", PTR_TO_XDP_SOCK: "xdp_sock",
    PTR_TO_BTF_ID: "ptr_", PTR_TO_MEM: "mem", PTR_TO_BUF: "buf", PTR_TO_FUNC: "func",
}

# Stack slot byte types, as the kernel prints them.
STACK_INVALID, STACK_SPILL, STACK_MISC, STACK_ZERO = "?", "r", "m", "0"


def base_type(t: int) -> int:
    return t & BASE_MASK


def type_str(t: int) -> str:
    """reg_type_str(): prefixes for memory flags, ``_or_null`` postfix."""
    prefix = ""
    if t & MEM_RDONLY:
        prefix += "rdonly_"
    if t & MEM_RINGBUF:
        prefix += "ringbuf_"
    if t & MEM_ALLOC:
        prefix += "alloc_"
    post = "_or_null" if t & MAYBE_NULL else ""
    if t & BASE_MASK == CONST_PTR_TO_MAP and post:
        # a map-in-map lookup is a map_value_or_null until the NULL check makes it the inner map
        return prefix + "map_value" + post
    return prefix + _NAMES[t & BASE_MASK] + post


_FIELDS = ("type", "off", "var_off", "smin", "smax", "umin", "umax", "s32min", "s32max",
           "u32min", "u32max", "id", "ref_obj_id", "range", "map", "mem_size", "frameno")


class Reg:
    """One register (or spilled register): type, fixed offset and scalar bounds."""

    __slots__ = _FIELDS

    def __init__(self):
        self.type = NOT_INIT
        self.off = 0
        self.var_off = tn.UNKNOWN
        self.smin, self.smax, self.umin, self.umax = S64_MIN, S64_MAX, 0, U64
        self.s32min, self.s32max, self.u32min, self.u32max = S32_MIN, S32_MAX, 0, U32
        self.id = 0
        self.ref_obj_id = 0
        self.range = 0
        self.map = None
        self.mem_size = 0
        self.frameno = 0

    def copy(self) -> "Reg":
        r = Reg.__new__(Reg)
        r.type, r.off, r.var_off = self.type, self.off, self.var_off
        r.smin, r.smax, r.umin, r.umax = self.smin, self.smax, self.umin, self.umax
        r.s32min, r.s32max, r.u32min, r.u32max = self.s32min, self.s32max, self.u32min, self.u32max
        r.id, r.ref_obj_id, r.range, r.map = self.id, self.ref_obj_id, self.range, self.map
        r.mem_size, r.frameno = self.mem_size, self.frameno
        return r

    def key(self) -> tuple:
        """Everything that makes two registers identical (for exact state comparison)."""
        return (self.type, self.off, self.var_off, self.smin, self.smax, self.umin, self.umax,
                self.s32min, self.s32max, self.u32min, self.u32max, self.id, self.ref_obj_id,
                self.range, id(self.map), self.mem_size, self.frameno)

    # -- constructors --
    @classmethod
    def scalar_unknown(cls) -> "Reg":
        r = cls()
        r.type = SCALAR
        return r

    @classmethod
    def scalar_const(cls, v: int) -> "Reg":
        r = cls()
        r.type = SCALAR
        mark_known(r, v)
        return r

    @classmethod
    def pointer(cls, t: int, off: int = 0, **kw) -> "Reg":
        r = cls()
        r.type = t
        mark_known(r, 0)
        r.off = off
        for k, v in kw.items():
            setattr(r, k, v)
        return r

    def set_unknown(self) -> None:
        """__mark_reg_unknown(): an unbounded scalar, all pointer info dropped."""
        self.type = SCALAR
        self.off = self.id = self.ref_obj_id = self.range = self.mem_size = self.frameno = 0
        self.map = None
        mark_unknown(self)

    def set_const(self, v: int) -> None:
        self.set_unknown()
        mark_known(self, v)

    def set_not_init(self) -> None:
        self.set_unknown()
        self.type = NOT_INIT

    @property
    def is_pointer(self) -> bool:
        return self.type not in (SCALAR, NOT_INIT)

    @property
    def is_const(self) -> bool:
        return self.type == SCALAR and not self.var_off.mask

    @property
    def base(self) -> int:
        return self.type & BASE_MASK

    def is_pkt(self) -> bool:
        return self.type in (PTR_TO_PACKET, PTR_TO_PACKET_META)

    def __repr__(self) -> str:
        return f"Reg({fmt_reg(self)})"


def _unum(v: int) -> str:
    """verbose_unum(): decimal up to U16_MAX, hex beyond."""
    return str(v) if v <= 0xFFFF else f"{v:#x}"


def _snum(v: int) -> str:
    """verbose_snum(): decimal within S16 range, else the u64 in hex."""
    return str(v) if -0x8000 <= v <= 0x7FFF else f"{v & U64:#x}"


def fmt_scalar_bounds(r: Reg) -> str:
    """print_scalar_ranges(): ``smin=..,smax=umax=..`` (equal values share one ``=``) and var_off."""
    mm = [["smin", r.smin, r.smin == S64_MIN], ["smax", r.smax, r.smax == S64_MAX],
          ["umin", r.umin, r.umin == 0], ["umax", r.umax, r.umax == U64],
          ["smin32", r.s32min, r.s32min == S32_MIN], ["smax32", r.s32max, r.s32max == S32_MAX],
          ["umin32", r.u32min, r.u32min == 0], ["umax32", r.u32max, r.u32max == U32]]
    parts = []
    for i, (name, val, omit) in enumerate(mm):
        if omit:
            continue
        neg1 = name[0] == "s" and val < 0
        text = name + "="
        for m2 in mm[i + 2::2]:
            if m2[2] or (m2[1] & U64) != (val & U64):
                continue
            if (m2[0][0] == "s" and m2[1] < 0) != neg1:
                continue
            m2[2] = True
            text += m2[0] + "="
        parts.append(text + (_snum(val) if name[0] == "s" else _unum(val)))
    if not tn.is_unknown(r.var_off):
        parts.append(f"var_off={tn.to_str(r.var_off)}")
    return ",".join(parts)


def fmt_reg(r: Reg) -> str:
    """print_reg_state(): ``scalar(smin=0,smax=umax=0xffffffff,...)``, ``fp-8``, ``map_value(ks=4,vs=48)``."""
    if r.type == SCALAR:
        if not r.var_off.mask:
            return _snum(sc_s64(r.var_off.value))
    if r.type == NOT_INIT:
        return "?"
    if r.type == PTR_TO_STACK and not r.var_off.mask and not r.var_off.value:
        return f"fp{r.off}"
    parts = []
    if r.id:
        ident = f"id={r.id & ~ADD_CONST}"
        if r.id & ADD_CONST:
            ident += f"{r.off:+d}"
        parts.append(ident)
    if r.ref_obj_id:
        parts.append(f"ref_obj_id={r.ref_obj_id}")
    if r.type != SCALAR and r.off:
        parts.append(f"off={r.off}")
    if r.base in (PTR_TO_PACKET, PTR_TO_PACKET_META):
        parts.append(f"r={r.range}")
    if r.map is not None and r.base in (CONST_PTR_TO_MAP, PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY):
        name = getattr(r.map, "name", "") or ""
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        parts.append((f"map={name}," if name else "") + f"ks={r.map.key_size},vs={r.map.value_size}")
    if r.base == PTR_TO_MEM and r.mem_size:
        parts.append(f"sz={r.mem_size}")
    if not r.var_off.mask:
        if r.var_off.value:
            parts.append(f"imm={_snum(sc_s64(r.var_off.value))}")
    else:
        b = fmt_scalar_bounds(r)
        if b:
            parts.append(b)
    return f"{type_str(r.type)}({','.join(parts)})"


def sc_s64(v: int) -> int:
    v &= U64
    return v - (1 << 64) if v >> 63 else v


class Slot:
    """One 8-byte stack slot: per-byte types (kernel's '?', 'r', 'm', '0') and a spilled register.

    Treated as immutable so frames can share slots between copies of a state.
    """

    __slots__ = ("types", "reg")

    def __init__(self, types: str, reg: Reg | None = None):
        self.types = types
        self.reg = reg

    def key(self) -> tuple:
        return (self.types, self.reg.key() if self.reg is not None else None)


class Frame:
    """One function frame: r0-r10 and its stack (slot index spi covers fp-8*(spi+1)...)."""

    __slots__ = ("regs", "stack", "allocated", "frameno", "callsite", "subprog")

    def __init__(self, frameno: int, callsite: int, subprog: int):
        self.regs = [Reg() for _ in range(11)]
        self.stack: dict[int, Slot] = {}
        self.allocated = 0
        self.frameno = frameno
        self.callsite = callsite
        self.subprog = subprog
        fp = self.regs[10]
        fp.type = PTR_TO_STACK
        mark_known(fp, 0)
        fp.frameno = frameno

    def copy(self) -> "Frame":
        f = Frame.__new__(Frame)
        f.regs = [r.copy() for r in self.regs]
        f.stack = dict(self.stack)
        f.allocated = self.allocated
        f.frameno, f.callsite, f.subprog = self.frameno, self.callsite, self.subprog
        return f

    def slot_types(self, spi: int) -> str:
        s = self.stack.get(spi)
        return s.types if s is not None else STACK_INVALID * 8


class State:
    """A verifier state: call frames, acquired references and pruning bookkeeping."""

    __slots__ = ("frames", "refs", "parent", "branches", "insn_idx", "speculative", "active_rcu",
                 "checkpoint", "hits", "misses", "from_idx", "log_pos")

    def __init__(self):
        self.frames: list[Frame] = []
        self.refs: list[tuple[int, int]] = []  # (ref id, alloc insn)
        self.parent: State | None = None
        self.branches = 1
        self.insn_idx = 0
        self.speculative = False
        self.active_rcu = False
        self.checkpoint = None
        self.hits = self.misses = 0
        self.from_idx = 0
        self.log_pos = 0

    @property
    def cur(self) -> Frame:
        return self.frames[-1]

    @property
    def regs(self) -> list[Reg]:
        return self.frames[-1].regs

    def copy(self) -> "State":
        s = State.__new__(State)
        s.frames = [f.copy() for f in self.frames]
        s.refs = list(self.refs)
        s.parent = self.parent
        s.branches = 1
        s.insn_idx = self.insn_idx
        s.speculative = self.speculative
        s.active_rcu = self.active_rcu
        s.checkpoint = None
        s.hits = s.misses = 0
        s.from_idx = self.from_idx
        s.log_pos = self.log_pos
        return s

    def all_regs(self):
        """Every register and spilled register in every frame (bpf_for_each_reg_in_vstate)."""
        for f in self.frames:
            yield from f.regs
            for spi, slot in list(f.stack.items()):
                if slot.reg is not None:
                    fresh = Slot(slot.types, slot.reg.copy())  # slots are shared: copy on write
                    f.stack[spi] = fresh
                    yield fresh.reg
