"""Helper functions of the interpreter, by the kernel's helper ids.

Each helper reads its arguments from r1..r5 and returns r0, with the
kernel's return conventions (negative errno, NULL pointers as 0), so the
program under test takes the same branches it would in the kernel. Memory
arguments go through :class:`~pybpf.vm.memory.Memory`, so a bad pointer or
size is a :class:`VMError`, not a Python crash.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Callable

from ..asm.helpers import HELPER_IDS, helper_name
from . import maps as m
from .errors import VMError
from .printk import format_printk

if TYPE_CHECKING:  # pragma: no cover
    from .machine import VM

M64 = (1 << 64) - 1
BPF_F_CURRENT_CPU = 0xFFFF_FFFF
ETH_HLEN = 14

_TABLE: dict[str, Callable[["VM", list], int]] = {}


def helper(name: str):
    def register(fn):
        _TABLE[name] = fn
        return fn
    return register


def build_table() -> dict[int, Callable]:
    return {HELPER_IDS[name]: fn for name, fn in _TABLE.items()}


def unknown(hid: int) -> VMError:
    name = helper_name(hid)
    if name is None:
        return VMError(f"invalid func unknown#{hid}")
    return VMError(f"helper bpf_{name}#{hid} is not implemented by the VM")


def _s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - ((v >> 31) << 32)


# -- maps ---------------------------------------------------------------------------
@helper("map_lookup_elem")
def map_lookup_elem(vm: "VM", r: list) -> int:
    mp = vm.map_arg(r[1], "map_lookup_elem")
    if isinstance(mp, (m.QueueMap, m.RingBuf, m.PerfEventArray, m.ProgArray)):
        raise VMError(f"cannot pass map_type {mp.map_type} into func bpf_map_lookup_elem#1")
    value = mp.bpf_lookup(vm.mem.read(r[2], mp.key_size))
    return 0 if value is None else vm.mem.addr_of(value, "map_value")


@helper("map_update_elem")
def map_update_elem(vm, r):
    mp = vm.map_arg(r[1], "map_update_elem")
    if isinstance(mp, (m.QueueMap, m.RingBuf, m.PerfEventArray, m.ProgArray)):
        raise VMError(f"cannot pass map_type {mp.map_type} into func bpf_map_update_elem#2")
    key = vm.mem.read(r[2], mp.key_size)
    return mp.bpf_update(key, vm.mem.read(r[3], mp.value_size), r[4])


@helper("map_delete_elem")
def map_delete_elem(vm, r):
    mp = vm.map_arg(r[1], "map_delete_elem")
    return mp.bpf_delete(vm.mem.read(r[2], mp.key_size))


def _queue(vm, r, name) -> m.QueueMap:
    mp = vm.map_arg(r[1], name)
    if not isinstance(mp, m.QueueMap):
        raise VMError(f"cannot pass map_type {mp.map_type} into func bpf_{name}")
    return mp


@helper("map_push_elem")
def map_push_elem(vm, r):
    mp = _queue(vm, r, "map_push_elem")
    return mp.bpf_push(vm.mem.read(r[2], mp.value_size), r[3])


def _pop_or_peek(vm, r, pop):
    mp = _queue(vm, r, "map_pop_elem" if pop else "map_peek_elem")
    value = mp.bpf_peek(pop)
    if value is None:
        return -errno.ENOENT
    vm.mem.write(r[2], value)
    return 0


@helper("map_pop_elem")
def map_pop_elem(vm, r):
    return _pop_or_peek(vm, r, True)


@helper("map_peek_elem")
def map_peek_elem(vm, r):
    return _pop_or_peek(vm, r, False)


# -- time, randomness, identity -----------------------------------------------------
@helper("ktime_get_ns")
def ktime_get_ns(vm, r):
    return vm.tick()


@helper("ktime_get_boot_ns")
def ktime_get_boot_ns(vm, r):
    return vm.tick() + vm.boot_offset_ns


@helper("get_prandom_u32")
def get_prandom_u32(vm, r):
    return vm.random.getrandbits(32)


@helper("get_smp_processor_id")
def get_smp_processor_id(vm, r):
    return vm.cpu


@helper("get_current_pid_tgid")
def get_current_pid_tgid(vm, r):
    return (vm.tgid << 32) | vm.pid


@helper("get_current_uid_gid")
def get_current_uid_gid(vm, r):
    return (vm.gid << 32) | vm.uid


@helper("get_current_comm")
def get_current_comm(vm, r):
    size = r[2]
    if size == 0:
        return -errno.EINVAL
    comm = vm.comm[:15][:size - 1]
    vm.mem.write(r[1], comm + bytes(size - len(comm)))
    return 0


# -- trace_printk -------------------------------------------------------------------
@helper("trace_printk")
def trace_printk(vm, r):
    size = r[2]
    raw = vm.mem.read(r[1], size) if size else b""
    nul = raw.find(b"\0")
    if nul < 0:
        return -errno.EINVAL  # the kernel requires the NUL within fmt_size
    text = format_printk(raw[:nul], [r[3], r[4], r[5]], lambda a: _read_str(vm, a, 4096))
    if isinstance(text, int):
        return text
    vm.trace.append(text)
    return len(text)


def _read_str(vm, addr: int, limit: int) -> bytes | None:
    s = vm.mem.read_str(addr, limit)
    if s is not None:
        return s
    data = vm.probe(addr, 1)
    if data is None:
        return None
    out = bytearray()
    while len(out) < limit:
        b = vm.probe(addr + len(out), 1)
        if not b or b == b"\0":
            break
        out += b
    return bytes(out)


# -- probe_read ---------------------------------------------------------------------
def _probe_read(vm, r):
    dst, size, src = r[1], r[2], r[3]
    data = vm.probe(src, size)
    if data is None:
        vm.mem.write(dst, bytes(size))
        return -errno.EFAULT
    vm.mem.write(dst, data)
    return 0


def _probe_read_str(vm, r):
    dst, size, src = r[1], r[2], r[3]
    if size == 0:
        return 0
    text = _read_str(vm, src, size - 1)
    if text is None:
        vm.mem.write(dst, bytes(size))
        return -errno.EFAULT
    vm.mem.write(dst, text + b"\0")
    return len(text) + 1


for _name in ("probe_read", "probe_read_user", "probe_read_kernel"):
    helper(_name)(_probe_read)
for _name in ("probe_read_str", "probe_read_user_str", "probe_read_kernel_str"):
    helper(_name)(_probe_read_str)


# -- ring buffer and perf output ----------------------------------------------------
def _ringbuf(vm, addr, name) -> m.RingBuf:
    mp = vm.map_arg(addr, name)
    if not isinstance(mp, m.RingBuf):
        raise VMError(f"cannot pass map_type {mp.map_type} into func bpf_{name}")
    return mp


@helper("ringbuf_output")
def ringbuf_output(vm, r):
    rb = _ringbuf(vm, r[1], "ringbuf_output")
    data = vm.mem.read(r[2], r[3])
    if r[4] & ~3:
        return -errno.EINVAL
    if not rb.reserve(len(data)):
        return -errno.EAGAIN
    rb.commit(data, len(data))
    return 0


@helper("ringbuf_reserve")
def ringbuf_reserve(vm, r):
    rb = _ringbuf(vm, r[1], "ringbuf_reserve")
    size = r[2]
    if r[3] or not rb.reserve(size):
        return 0
    buf = bytearray(size)
    addr = vm.mem.add("ringbuf_mem", buf)
    vm.reservations[addr] = (rb, buf)
    return addr


def _release(vm, r, submit: bool) -> int:
    name = "ringbuf_submit" if submit else "ringbuf_discard"
    entry = vm.reservations.pop(r[1], None)
    if entry is None:
        raise VMError(f"R1 type=scalar expected=ringbuf_mem: bpf_{name} needs a pointer "
                      f"returned by bpf_ringbuf_reserve, got {r[1]:#x}", address=r[1])
    rb, buf = entry
    vm.mem.regions.pop(r[1] >> 32)  # the record may no longer be written
    rb.commit(bytes(buf) if submit else None, len(buf))
    return 0


@helper("ringbuf_submit")
def ringbuf_submit(vm, r):
    return _release(vm, r, True)


@helper("ringbuf_discard")
def ringbuf_discard(vm, r):
    return _release(vm, r, False)


@helper("ringbuf_query")
def ringbuf_query(vm, r):
    rb = _ringbuf(vm, r[1], "ringbuf_query")
    return {0: rb.producer_pos - rb.consumer_pos, 1: rb.max_entries, 2: rb.consumer_pos,
            3: rb.producer_pos}.get(r[2], 0)


@helper("perf_event_output")
def perf_event_output(vm, r):
    mp = vm.map_arg(r[2], "perf_event_output")
    if not isinstance(mp, m.PerfEventArray):
        raise VMError(f"cannot pass map_type {mp.map_type} into func bpf_perf_event_output#25")
    flags = r[3]
    index = flags & 0xFFFF_FFFF
    if flags >> 52:
        return -errno.EINVAL
    if index == BPF_F_CURRENT_CPU:
        index = vm.cpu
    if index >= mp.max_entries:
        return -errno.E2BIG
    data = vm.mem.read(r[4], r[5])
    ctxlen = (flags >> 32) & 0xFFFFF  # BPF_F_CTXLEN_MASK: packet bytes to append
    if ctxlen:
        packet = vm.packet_bytes()
        if ctxlen > len(packet):
            return -errno.EFAULT
        data += packet[:ctxlen]
    mp.records.append((index, data))
    return 0


# -- packets ------------------------------------------------------------------------
@helper("skb_load_bytes")
def skb_load_bytes(vm, r):
    pkt = vm.need_packet("skb_load_bytes")
    off, to, size = _s32(r[2]), r[3], r[4] & 0xFFFF_FFFF
    data = pkt.payload()
    if off < 0 or size == 0 or off + size > len(data):
        vm.mem.write(to, bytes(size))
        return -errno.EFAULT
    vm.mem.write(to, data[off:off + size])
    return 0


@helper("xdp_load_bytes")
def xdp_load_bytes(vm, r):
    # The kernel's bpf_xdp_pointer() checks: offset/len above 0xffff is -EFAULT, past
    # the end of the frame -EINVAL; on failure the buffer is left as it was.
    pkt = vm.need_packet("xdp_load_bytes")
    off, to, size = r[2] & 0xFFFF_FFFF, r[3], r[4] & 0xFFFF_FFFF
    data = pkt.payload()
    if off > 0xFFFF or size > 0xFFFF:
        return -errno.EFAULT
    if off + size > len(data):
        return -errno.EINVAL
    vm.mem.write(to, data[off:off + size])
    return 0


@helper("skb_store_bytes")
def skb_store_bytes(vm, r):
    pkt = vm.need_packet("skb_store_bytes")
    off, size = r[2] & 0xFFFF_FFFF, r[4] & 0xFFFF_FFFF
    if r[5] & ~3:
        return -errno.EINVAL
    data = vm.mem.read(r[3], size)
    if off + size > pkt.end - pkt.data:
        return -errno.EFAULT
    pkt.buf[pkt.data + off:pkt.data + off + size] = data
    return 0


@helper("xdp_adjust_head")
def xdp_adjust_head(vm, r):
    return vm.need_packet("xdp_adjust_head").adjust_head(_s32(r[2]))


@helper("xdp_adjust_meta")
def xdp_adjust_meta(vm, r):
    return vm.need_packet("xdp_adjust_meta").adjust_meta(_s32(r[2]))


@helper("xdp_adjust_tail")
def xdp_adjust_tail(vm, r):
    return vm.need_packet("xdp_adjust_tail").adjust_tail(_s32(r[2]))
