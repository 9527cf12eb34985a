"""Maps with the kernel's semantics, and the helpers programs call."""

import errno
from types import SimpleNamespace

import pytest

from pybpf import vm
from pybpf.asm import Builder, opcodes as op, r0, r1, r2, r3, r4, r5, r6, r7, r10

from vm_kernel import kernel_run, needs_kernel


def spec(type_, key_size=4, value_size=8, max_entries=4, flags=0, name="m"):
    return SimpleNamespace(type=type_, key_size=key_size, value_size=value_size,
                           max_entries=max_entries, flags=flags, name=name)


def update_sequence(m, ops) -> Builder:
    """For each (key, value, flags): r0 of bpf_map_update_elem, collected 8 bits per call."""
    b = Builder()
    b.mov(r7, 0)
    for key, value, flags in ops:
        b.st(r10, -4, key, 4)
        b.st(r10, -16, value, 8)
        b.map_update(m, -4, -16, flags)
        b.and_(r0, 0xFF)
        b.lsh(r7, 8)
        b.or_(r7, r0)
    b.mov(r0, r7)
    b.exit()
    return b


HASH_OPS = [(1, 10, vm.maps.BPF_NOEXIST), (1, 11, vm.maps.BPF_NOEXIST), (2, 20, vm.maps.BPF_EXIST),
            (2, 21, vm.maps.BPF_ANY), (3, 30, vm.maps.BPF_ANY), (1, 12, vm.maps.BPF_EXIST), (4, 0, 9)]


def test_hash_update_flags_and_full_map():
    s = spec("hash", max_entries=2)
    machine = vm.VM()
    res = machine.run(update_sequence(s, HASH_OPS))
    codes = [(res.r0 >> (8 * i)) & 0xFF for i in reversed(range(len(HASH_OPS)))]
    assert codes == [0, -errno.EEXIST & 0xFF, -errno.ENOENT & 0xFF, 0, -errno.E2BIG & 0xFF, 0,
                     -errno.EINVAL & 0xFF]
    m = machine.map(s)
    assert dict(m) == {(1).to_bytes(4, "little"): (12).to_bytes(8, "little"),
                       (2).to_bytes(4, "little"): (21).to_bytes(8, "little")}


@pytest.mark.kernel
@needs_kernel
@pytest.mark.parametrize("kind", ["hash", "array", "lru_hash"])
def test_update_flags_match_kernel(kind):
    from pybpf.maps.spec import MapSpec
    from pybpf.maps.types import MapType
    mtype = {"hash": MapType.HASH, "array": MapType.ARRAY, "lru_hash": MapType.LRU_HASH}[kind]
    ops = HASH_OPS + [(9, 1, 0), (0, 5, vm.maps.BPF_NOEXIST)]
    s = MapSpec(mtype, 4, 8, 2 if kind != "lru_hash" else 64)
    prog = update_sequence(s, ops)
    k = kernel_run(prog, "xdp", bytes(14))
    assert vm.run(prog, prog_type="xdp", data=bytes(14), vm=vm.VM()).retval == k.retval


# BPF_F_LOCK alone, with NOEXIST, with EXIST: the values hold no bpf_spin_lock, so EINVAL
# (arrays check NOEXIST first: EEXIST), on a missing key and on an existing one.
LOCK_OPS = [(1, 10, 4), (1, 10, 5), (1, 10, 6), (0, 1, 0), (0, 2, 4), (0, 3, 5), (0, 4, 6)]


@pytest.mark.kernel
@needs_kernel
@pytest.mark.parametrize("kind", ["HASH", "ARRAY", "LRU_HASH", "PERCPU_HASH", "PERCPU_ARRAY",
                                  "LRU_PERCPU_HASH"])
def test_lock_flag_without_spin_lock_matches_kernel(kind):
    from pybpf.maps.spec import MapSpec
    from pybpf.maps.types import MapType
    prog = update_sequence(MapSpec(MapType[kind], 4, 8, 4), LOCK_OPS)
    k = kernel_run(prog, "xdp", bytes(14))
    assert vm.run(prog, prog_type="xdp", data=bytes(14), vm=vm.VM()).retval == k.retval


def test_lookup_returns_the_shared_value_and_writes_are_visible():
    s = spec("hash")
    machine = vm.VM()
    m = machine.map(s)
    m[7] = 100
    b = Builder()
    b.st(r10, -4, 7, 4)
    b.map_lookup(s, -4)
    b.jeq(r0, 0, "miss")
    b.mov(r1, 5)
    b.atomic_add(r0, 0, r1)
    b.ldx(r0, r0, 0, 8)
    b.exit()
    b.label("miss")
    b.mov(r0, 0)
    b.exit()
    assert machine.run(b).r0 == 105
    assert m[7] == (105).to_bytes(8, "little")
    del m[7]
    assert machine.run(b).r0 == 0


def test_map_value_out_of_bounds_is_reported():
    s = spec("array")
    b = Builder()
    b.st(r10, -4, 0, 4)
    b.map_lookup(s, -4)
    b.jeq(r0, 0, "out")
    b.ldx(r0, r0, 4, 8)  # value is 8 bytes: [4, 12) overruns
    b.label("out")
    b.exit()
    with pytest.raises(vm.VMError, match="invalid access to map_value: read off=4 size=8"):
        vm.run(b, vm=vm.VM())


def test_array_semantics():
    m = vm.create_map(spec("array", max_entries=3))
    assert m[2] == bytes(8) and len(m) == 3
    assert m.bpf_update(b"\3\0\0\0", bytes(8), 0) == -errno.E2BIG
    assert m.bpf_update(b"\1\0\0\0", bytes(8), vm.maps.BPF_NOEXIST) == -errno.EEXIST
    assert m.bpf_delete(b"\1\0\0\0") == -errno.EINVAL
    assert m.bpf_lookup(b"\5\0\0\0") is None


def test_lru_evicts_least_recently_used():
    m = vm.create_map(spec("lru_hash", max_entries=2))
    m[1] = 1
    m[2] = 2
    m.bpf_lookup((1).to_bytes(4, "little"))  # 1 is now more recent than 2
    m[3] = 3
    assert sorted(int.from_bytes(k, "little") for k in m) == [1, 3]


def test_percpu_maps_see_the_current_cpu():
    s = spec("percpu_array", max_entries=1)
    b = Builder()
    b.st(r10, -4, 0, 4)
    b.map_lookup(s, -4)
    b.jeq(r0, 0, "out")
    b.call("get_smp_processor_id")
    b.mov(r6, r0)
    b.st(r10, -4, 0, 4)
    b.map_lookup(s, -4)
    b.jeq(r0, 0, "out")
    b.add(r6, 1)
    b.stx(r0, 0, r6, 8)
    b.label("out")
    b.mov(r0, 0)
    b.exit()
    machine = vm.VM(cpus=3)
    for cpu in (0, 2):
        machine.cpu = cpu
        machine.run(b)
    assert machine.map(s)[0] == [(1).to_bytes(8, "little"), bytes(8), (3).to_bytes(8, "little")]


def test_queue_and_stack():
    for kind, expect in (("queue", [1, 2]), ("stack", [2, 1])):
        s = spec(kind, key_size=0, value_size=4, max_entries=2)
        b = Builder()
        for v in (1, 2, 3):
            b.st(r10, -4, v, 4)
            b.ld_map_fd(r1, s)
            b.stack_ptr(r2, -4)
            b.mov(r3, 0)
            b.call("map_push_elem")
        b.mov(r6, r0)  # the third push fails: full
        b.ld_map_fd(r1, s)
        b.stack_ptr(r2, -8)
        b.call("map_peek_elem")
        b.ldx(r0, r10, -8, 4)
        b.lsh(r6, 32)
        b.or_(r0, r6)
        b.exit()
        machine = vm.VM()
        res = machine.run(b)
        assert res.r0 >> 32 == (-errno.E2BIG) & 0xFFFF_FFFF
        assert res.r0 & 0xFFFF_FFFF == expect[0]
        q = machine.map(s)
        assert [int.from_bytes(q.pop(), "little") for _ in range(2)] == expect


def ringbuf_program(rb, submit=True, release=True) -> Builder:
    b = Builder()
    b.ld_map_fd(r1, rb)
    b.mov(r2, 16)
    b.mov(r3, 0)
    b.call("ringbuf_reserve")
    b.jeq(r0, 0, "out")
    b.st(r0, 0, 0x41424344, 4)
    if release:
        b.mov(r1, r0)
        b.mov(r2, 0)
        b.call("ringbuf_submit" if submit else "ringbuf_discard")
    b.st(r10, -8, 0x55, 8)
    b.ld_map_fd(r1, rb)
    b.stack_ptr(r2, -8)
    b.mov(r3, 8)
    b.mov(r4, 0)
    b.call("ringbuf_output")
    b.ld_map_fd(r1, rb)
    b.mov(r2, 0)
    b.call("ringbuf_query")
    b.label("out")
    b.exit()
    return b


def test_ringbuf_records_and_accounting():
    rb = spec("ringbuf", key_size=0, value_size=0, max_entries=4096)
    machine = vm.VM()
    res = machine.run(ringbuf_program(rb))
    m = machine.map(rb)
    assert m.records == [b"DCBA" + bytes(12), (0x55).to_bytes(8, "little")]
    assert res.r0 == (8 + 16) + (8 + 8)  # BPF_RB_AVAIL_DATA: headers included
    machine.run(ringbuf_program(rb, submit=False))
    assert len(m.records) == 3


def test_unreleased_ringbuf_record_is_an_error():
    rb = spec("ringbuf", key_size=0, value_size=0, max_entries=4096)
    with pytest.raises(vm.VMError, match="Unreleased reference"):
        vm.run(ringbuf_program(rb, release=False), vm=vm.VM())


def test_perf_event_output_captures_records():
    pa = spec("perf_event_array", value_size=4, max_entries=2)
    b = Builder()
    b.mov(r6, r1)
    b.st(r10, -8, 0x1122, 8)
    b.mov(r1, r6)
    b.ld_map_fd(r2, pa)
    b.ld_imm64(r3, 0xFFFF_FFFF)  # BPF_F_CURRENT_CPU
    b.stack_ptr(r4, -8)
    b.mov(r5, 8)
    b.call("perf_event_output")
    b.exit()
    machine = vm.VM(cpus=2, cpu=1)
    assert machine.run(b, prog_type="xdp", data=bytes(14)).r0 == 0
    assert machine.map(pa).records == [(1, (0x1122).to_bytes(8, "little"))]


def printk(b, fmt: bytes, *args):
    fmt += b"\0"
    fmt += bytes(-len(fmt) % 8)
    for i in range(0, len(fmt), 8):
        b.ld_imm64(r1, int.from_bytes(fmt[i:i + 8], "little"))
        b.stx(r10, -64 + i, r1, 8)
    b.stack_ptr(r1, -64)
    b.mov(r2, len(fmt))
    for reg, value in zip((r3, r4, r5), args):
        b.ld_imm64(reg, value)
    b.call("trace_printk")


def test_trace_printk_format_subset():
    b = Builder()
    printk(b, b"x=%d u=%u %llx", -5 & (2**64 - 1), 0xFFFF_FFFF, 0xDEAD_BEEF_CAFE)
    b.mov(r6, r0)
    printk(b, b"%d %d %d %d", 1, 2, 3)  # four conversions: -EINVAL
    b.lsh(r6, 32)
    b.mov(r0.w, r0.w)
    b.or_(r0, r6)
    b.exit()
    machine = vm.VM()
    res = machine.run(b)
    assert res.trace == ("x=-5 u=4294967295 deadbeefcafe",)
    assert res.r0 >> 32 == len(res.trace[0])
    assert res.r0 & 0xFFFF_FFFF == (-errno.EINVAL) & 0xFFFF_FFFF


def test_identity_clock_random_and_probe_read():
    b = Builder()
    b.call("get_current_pid_tgid")
    b.mov(r6, r0)
    b.call("ktime_get_ns")
    b.mov(r7, r0)
    b.call("ktime_get_ns")
    b.sub(r0, r7)  # clock step
    b.add(r6, r0)
    b.stack_ptr(r1, -16)
    b.mov(r2, 16)
    b.call("get_current_comm")
    b.stack_ptr(r1, -24)
    b.mov(r2, 8)
    b.ld_imm64(r3, 0xFFFF_8880_0000_1000)
    b.call("probe_read_kernel")
    b.ldx(r0, r10, -24, 8)
    b.add(r0, r6)
    b.exit()
    machine = vm.VM(pid=7, tgid=9, clock_step_ns=50, comm="bash",
                    probe_memory={0xFFFF_8880_0000_0FF8: bytes(8) + (1000).to_bytes(8, "little")})
    assert machine.run(b).r0 == (9 << 32) + 7 + 50 + 1000
    machine.probe_memory.clear()  # unreadable now: -EFAULT and a zeroed buffer
    assert machine.run(b).r0 == (9 << 32) + 7 + 50


def test_prandom_is_seeded():
    b = Builder()
    b.call("get_prandom_u32")
    b.exit()
    a = [vm.VM(seed=3).run(b).r0 for _ in range(2)]
    assert a[0] == a[1] and a[0] != vm.VM(seed=4).run(b).r0


def test_tail_call_and_fallthrough():
    progs = spec("prog_array", value_size=4, max_entries=4)
    target = Builder()
    target.mov(r0, 42)
    target.exit()
    b = Builder()
    b.ld_map_fd(r2, progs)
    b.mov(r3, 1)
    b.call("tail_call")
    b.mov(r0, 7)  # only reached when the slot is empty
    b.exit()
    machine = vm.VM()
    assert machine.run(b).r0 == 7
    machine.map(progs)[1] = target
    assert machine.run(b).r0 == 42


def test_direct_map_value_access():
    data = spec("array", value_size=16, max_entries=1, name=".data")
    b = Builder()
    b.ld_map_value(r1, data, 8)
    b.ldx(r0, r1, 0, 8)
    b.exit()
    machine = vm.VM()
    machine.map(data)[0] = bytes(8) + (77).to_bytes(8, "little")
    assert machine.run(b).r0 == 77


def test_bytecode_with_fd_resolved_through_maps_argument():
    s = spec("hash")
    b = Builder()
    b.st(r10, -4, 1, 4)
    b.map_lookup(s, -4)
    b.exit()
    m = vm.create_map(s)
    m[1] = 5
    code = b.encode()  # the spec has no fd: imm is 0
    assert vm.run(code, maps={0: m}, vm=vm.VM()).r0 != 0
    with pytest.raises(vm.VMError, match="fd 0 is not pointing to valid bpf_map"):
        vm.run(code, vm=vm.VM())
