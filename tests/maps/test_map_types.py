"""Every map type against the real kernel: create, write, read back, the kernel's answers."""

from __future__ import annotations

import ctypes
import ipaddress
import mmap
import struct

import pytest

from mapkit import RAW_TRACEPOINT, load_prog, needs_root
from pybpf.maps import BPF_EXIST, BPF_NOEXIST, Map, MapFlags, MapSpec, MapType, possible_cpus
from pybpf.syscall import FD, perf_event_open
from pybpf.syscall import (BadFD, BPFPermissionError, InvalidArgument, KeyExists, KeyNotFound, MapFull,
                           NotSupported)

pytestmark = [pytest.mark.kernel, needs_root]


class Flow(ctypes.Structure):
    _fields_ = [("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint32), ("port", ctypes.c_uint16)]


@pytest.mark.parametrize("ctor", [MapSpec.hash, MapSpec.lru_hash])
def test_hash_dict_semantics(ctor):
    with ctor("I", "Q", 64, name="h").create() as m:
        assert len(m) == 0 and list(m) == [] and 1 not in m
        m[1] = 100
        m[2] = 200
        m.update(3, 300)
        assert m[1] == 100 and m.get(9) is None and m.get(9, "d") == "d"
        assert 2 in m and 9 not in m
        assert sorted(m) == [1, 2, 3] and sorted(m.values()) == [100, 200, 300]
        assert dict(m.items()) == {1: 100, 2: 200, 3: 300} and len(m) == 3
        del m[2]
        assert 2 not in m
        with pytest.raises(KeyError):
            m[2]
        with pytest.raises(KeyNotFound, match="key 2"):
            del m[2]
        assert m.pop(3) == 300 and m.pop(3, None) is None
        m.clear()
        assert len(m) == 0


def test_update_flags_and_full_map():
    with MapSpec.hash("I", "I", 2).create() as m:
        m[1] = 1
        with pytest.raises(KeyExists):
            m.update(1, 2, BPF_NOEXIST)
        with pytest.raises(KeyNotFound):
            m.update(5, 2, BPF_EXIST)
        m.update(1, 3, BPF_EXIST)
        m[2] = 2
        with pytest.raises(MapFull):
            m[3] = 3
        assert dict(m.items()) == {1: 3, 2: 2}
        assert m.setdefault(1, 9) == 3


def test_structured_keys_and_values():
    spec = MapSpec.hash(Flow, "<QQ", 16, name="flows")
    assert spec.key_size == ctypes.sizeof(Flow) == 12
    with spec.create() as m:
        m[Flow(1, 2, 80)] = (10, 20)
        m[{"saddr": 3, "daddr": 4, "port": 443}] = (1, 2)
        got = {(k.saddr, k.daddr, k.port): v for k, v in m.items()}
        assert got == {(1, 2, 80): (10, 20), (3, 4, 443): (1, 2)}
        # raw bytes work for any layout
        assert m[bytes(Flow(1, 2, 80))] == (10, 20)


def test_array():
    with MapSpec.array("Q", 8, name="arr").create() as m:
        assert len(m) == 8 and list(m) == list(range(8)) and m[7] == 0
        m[3] = 33
        assert m[3] == 33
        with pytest.raises(KeyNotFound):
            m[8]
        with pytest.raises(InvalidArgument):
            del m[3]  # arrays cannot delete
        with pytest.raises(KeyExists):
            m.update(3, 1, BPF_NOEXIST)
        m.clear()
        assert list(m.values()) == [0] * 8


@pytest.mark.parametrize("ctor", [MapSpec.percpu_hash, MapSpec.lru_percpu_hash,
                                  lambda k, v, n: MapSpec.percpu_array(v, n)])
def test_percpu(ctor):
    ncpu = possible_cpus()
    with ctor("I", "I", 8).create() as m:  # 4-byte values: padded to 8 per CPU in the kernel
        m[1] = 7
        assert m[1] == [7] * ncpu
        per = list(range(10, 10 + ncpu))
        m[2] = per
        assert m[2] == per
        keys, values = m.lookup_batch()
        assert dict(zip(keys, values))[2] == per
        with pytest.raises(ValueError, match="one per possible CPU"):
            m[3] = [1] * (ncpu + 1)


def test_lpm_trie_longest_prefix_match():
    with MapSpec.lpm_trie("ipv4", "I", 16, name="routes").create() as m:
        m["10.0.0.0/8"] = 8
        m[ipaddress.ip_network("10.1.0.0/16")] = 16
        m[(24, "10.1.2.0")] = 24
        assert m["10.1.2.3/32"] == 24
        assert m["10.1.9.9/32"] == 16
        assert m["10.200.0.1/32"] == 8
        with pytest.raises(KeyError):
            m["11.0.0.1/32"]
        assert set(m) == {ipaddress.ip_network(n) for n in ("10.0.0.0/8", "10.1.0.0/16",
                                                              "10.1.2.0/24")}
        keys, values = m.lookup_batch()  # tries refuse batches: per-element fallback
        assert dict(zip(keys, values)) == dict(m.items())


@pytest.mark.parametrize("kind,order", [(MapSpec.queue, [1, 2, 3]), (MapSpec.stack, [3, 2, 1])])
def test_queue_and_stack(kind, order):
    with kind("Q", 3).create() as m:
        for v in (1, 2, 3):
            m.push(v)
        with pytest.raises(MapFull):
            m.push(4)
        assert m.peek() == order[0]
        assert [m.pop() for _ in range(3)] == order
        with pytest.raises(KeyNotFound):
            m.pop()
        assert m.pop(default=None) is None
        with pytest.raises(TypeError, match="no keys"):
            list(m)
        m.push(7)
        for keyed in (lambda: m[0], lambda: 0 in m, lambda: m.pop(0), lambda: m.update(1, 2)):
            with pytest.raises(TypeError, match="no keys, not [01]"):
                keyed()  # the kernel would ignore the key and answer about the head
        assert m.peek() == 7


def test_queue_overwrite_oldest_with_bpf_exist():
    with MapSpec.queue("I", 2).create() as m:
        m.push(1), m.push(2), m.push(3, BPF_EXIST)
        assert [m.pop(), m.pop()] == [2, 3]


def test_ringbuf_mmap_layout():
    size = 4 * mmap.PAGESIZE
    with MapSpec.ringbuf(size, name="rb").create() as m:
        assert (m.type, m.max_entries) == (MapType.RINGBUF, size)
        # consumer page: read-write; producer page + data (mapped twice): read-only
        cons = mmap.mmap(m.fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        prod = mmap.mmap(m.fd, mmap.PAGESIZE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                         offset=mmap.PAGESIZE)
        assert struct.unpack_from("Q", cons)[0] == 0 and struct.unpack_from("Q", prod)[0] == 0
        prod.close(), cons.close()
        with pytest.raises(PermissionError):
            mmap.mmap(m.fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                      offset=mmap.PAGESIZE)


def _perf_event(cpu: int) -> FD:
    """A software PERF_COUNT_SW_BPF_OUTPUT event on ``cpu`` (what perf buffers use)."""
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("=IIQQQ", attr, 0, 1, 128, 10, 1, 1 << 10)  # SOFTWARE, size, BPF_OUTPUT
    return FD(perf_event_open(attr, -1, cpu))


def test_perf_event_array():
    with MapSpec.perf_event_array().create() as m:
        assert m.max_entries == possible_cpus() and m.value_size == 4
        with pytest.raises(BadFD):
            m[0] = m.fd  # a map fd is not a perf event
        with _perf_event(0) as ev:
            m[0] = ev
        with pytest.raises(NotSupported):
            m[0]  # stored, but the kernel does not read perf event fds back to user space
        del m[0]
        with pytest.raises(KeyNotFound):
            del m[0]


def test_prog_array_stores_programs_reads_ids(prog):
    with MapSpec.prog_array(4, name="jmp").create() as m:
        m[1] = prog
        assert m[1] == prog.id
        with pytest.raises(KeyNotFound):
            m[0]
        assert dict(m.items()) == {1: prog.id}
        del m[1]
        assert dict(m.items()) == {}


def test_stack_trace_filled_by_a_program():
    """A raw tracepoint program records its kernel stack with bpf_get_stackid."""
    pytest.importorskip("pybpf.program")
    with MapSpec.stack_trace(8, depth=32, name="stacks").create() as m:
        assert list(m) == [] and m.value_size == 256
        code = (struct.pack("<BBhi", 0x18, 0x12, 0, m.fd) + bytes(8) +  # r2 = map
                struct.pack("<BBhi", 0xB7, 0x03, 0, 0) +               # r3 = 0
                struct.pack("<BBhi", 0x85, 0, 0, 27) +                 # call bpf_get_stackid
                struct.pack("<BBhi", 0x95, 0, 0, 0))
        prog = load_prog(code, RAW_TRACEPOINT)
        try:
            res = prog.test_run(ctx_in=bytes(8))
        finally:
            prog.close()
        stack_id = res.retval
        assert stack_id < 2**31, f"bpf_get_stackid failed: {stack_id - 2**32}"
        ips = m[stack_id]
        assert len(ips) == 32 and ips[0] != 0 and all(ip >= 1 << 63 for ip in ips if ip)
        assert list(m) == [stack_id]


def test_array_of_maps():
    inner = MapSpec.array("I", 4, name="inner")
    with MapSpec.array_of_maps(inner, 2, name="outer").create() as outer, \
            inner.create() as a, inner.create() as b:
        outer[0] = a
        outer[1] = b.fd
        assert outer[0] == a.id and outer[1] == b.id
        a[2] = 42
        with outer.get_map(0) as again:
            assert again.id == a.id and again[2] == 42
        with pytest.raises(InvalidArgument):
            with MapSpec.hash("I", "I", 4).create() as wrong:
                outer[0] = wrong  # not compatible with the inner spec


def test_hash_of_maps():
    inner = MapSpec.hash("I", "I", 4)
    with MapSpec.hash_of_maps("Q", inner, 8).create() as outer, inner.create() as a:
        outer[1 << 40] = a
        assert dict(outer.items()) == {1 << 40: a.id}
        del outer[1 << 40]
        assert len(outer) == 0


def test_from_id_reads_spec_from_the_kernel():
    with MapSpec.hash("I", "Q", 32, name="byid", flags=MapFlags.NO_PREALLOC).create() as m:
        m[5] = 6
        with Map.from_id(m.id) as raw:
            assert (raw.type, raw.key_size, raw.value_size, raw.max_entries, raw.name) == \
                (MapType.HASH, 4, 8, 32, "byid")
            assert raw.flags & MapFlags.NO_PREALLOC
            assert dict(raw.items()) == {struct.pack("I", 5): struct.pack("Q", 6)}
        with Map.from_id(m.id, m.spec) as typed:
            assert typed[5] == 6


def test_freeze_refuses_writes():
    with MapSpec.array("I", 2).create() as m:
        m[0] = 5
        m.freeze()
        with pytest.raises(BPFPermissionError, match="frozen"):
            m[0] = 6
        assert m[0] == 5


def test_mmap_reads_reflect_syscall_writes():
    with MapSpec.array("I", 1000, flags=MapFlags.MMAPABLE).create() as m:
        with m.mmap() as view:
            m[7] = 77
            m[999] = 9
            assert view[7] == 77 and view[999] == 9 and view[-1] == 9
            view[8] = 88  # and the other way round
            assert m[8] == 88
            assert view.tolist() == list(m.values())
            with pytest.raises(IndexError):
                view[1000]


def test_mmap_of_frozen_map_is_read_only():
    with MapSpec.array("Q", 4, flags=MapFlags.MMAPABLE).create() as m:
        m[1] = 3
        m.freeze()
        with pytest.raises(PermissionError, match="read-only"):
            m.mmap()
        with m.mmap(writable=False) as view:
            assert view[1] == 3


def test_closed_map_is_an_error():
    m = MapSpec.hash("I", "I", 1).create()
    m.close()
    m.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        m[1]
