"""Every program variant of every tool, through the kernel verifier (both attach paths).

The kprobe variants cannot be attached on a kernel without kprobes, but
BPF_PROG_TYPE_KPROBE programs still load: the verifier checks them here.
"""

import struct

import pytest

from toolkit import requires_root
from pybpf.asm import Builder, decode
from pybpf.tools import execsnoop, hello, opensnoop, readlat, runtime, tcpconnect, xdpcount


@pytest.fixture
def maps():
    from pybpf.maps import MapSpec
    made = []

    def make(spec):
        made.append(spec.create())
        return made[-1]
    yield make
    for m in made:
        m.close()


@pytest.fixture
def events():
    made = []

    def make(record, ringbuf=False):
        made.append(runtime.Events(record, ringbuf=ringbuf))
        return made[-1]
    yield make
    for e in made:
        e.close()


def load(b, kind):
    prog = runtime.load(b, kind, "test")
    prog.close()


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("kind", ["kprobe", "tracepoint"])
def test_every_variant_passes_the_kernel_verifier(kind, maps, events):
    from pybpf.maps import MapSpec
    load(hello.build_program(), kind)
    load(hello.build_program(pid=42), kind)
    load(execsnoop.build_program(kind, events(execsnoop.RECORD), pid=42), kind)
    for prefix in (b"", b"/", b"/etc/", b"/etc/shadow", b"/x" * 127 + b"y"):
        load(opensnoop.build_program(kind, events(opensnoop.RECORD), 42, prefix), kind)
    start = maps(MapSpec.hash("I", "Q", 16, name="start"))
    hist = maps(MapSpec.array("Q", readlat.BUCKETS, name="hist"))
    load(readlat.build_entry_program(start, pid=42), kind)
    load(readlat.build_return_program(start, hist), kind)
    for ringbuf in (False, True):
        ev = events(tcpconnect.RECORD, ringbuf)
        if kind == "kprobe":
            sockets = maps(MapSpec.hash("Q", "Q", 16, name="sockets"))
            load(tcpconnect.build_entry_program(sockets), kind)
            load(tcpconnect.build_return_program(ev, sockets, tcpconnect.sock_offsets(), 42),
                 kind)
        else:
            load(tcpconnect.build_tracepoint_program(ev, tcpconnect.tracepoint_fields(), 42),
                 kind)


@pytest.mark.kernel
@requires_root
def test_xdp_program_counts_and_drops_in_test_run(maps):
    """BPF_PROG_TEST_RUN with hand-made frames: verdicts and per-CPU counters."""
    from pybpf.maps import MapSpec
    counters = maps(MapSpec.percpu_array(xdpcount.VALUE.size, xdpcount.ENTRIES, name="c"))
    prog = runtime.load(xdpcount.build_program(counters, drop_port=9999), "xdp", "t")
    try:
        def udp4(dport: int, ihl: int = 5) -> bytes:
            eth = bytes(12) + b"\x08\x00"
            ip = bytes([0x40 | ihl, 0]) + bytes(7) + bytes([17]) + bytes(10) + bytes(4 * (ihl - 5))
            return eth + ip + struct.pack("!HHHH", 1234, dport, 8, 0) + b"payload!"
        tcp6 = bytes(12) + b"\x86\xdd" + bytes(6) + bytes([6]) + bytes(33) + \
            struct.pack("!HH", 1, 9999) + bytes(16)
        arp = bytes(12) + b"\x08\x06" + bytes(28)
        cases = [(udp4(5555), 2), (udp4(9999), 1), (udp4(9999, ihl=7), 1), (tcp6, 1),
                 (arp, 2), (bytes(14), 2), (udp4(9999)[:36], 2)]
        for frame, verdict in cases:
            assert prog.test_run(data_in=frame).retval == verdict, frame.hex()
        got = xdpcount.totals(counters)
        assert got["UDP"] == {"packets": 4, "dropped": 2,
                              "bytes": 2 * len(udp4(1)) + len(udp4(1, 7)) + 36}
        assert got["TCP"] == {"packets": 1, "bytes": len(tcp6), "dropped": 1}
        assert got["ARP"]["packets"] == 1 and got["other"]["packets"] == 1
    finally:
        prog.close()


def test_opensnoop_prefix_compare_is_eight_bytes_at_a_time():
    class FakeEvents:
        record = opensnoop.RECORD

        def emit(self, b, ctx, at):
            b.mov(ctx, ctx)
    b = opensnoop.build_program("tracepoint", FakeEvents(), 0, b"/etc/shadow")
    consts = [i.imm for i in b.insns if i.opcode == 0x18]
    assert int.from_bytes(b"/etc/sha", "little") in consts
    assert int.from_bytes(b"dow", "little") in consts
    assert (1 << 24) - 1 in consts                   # the mask of the 3-byte tail
    with pytest.raises(ValueError, match="at most 255"):
        opensnoop.build_program("tracepoint", FakeEvents(), 0, b"x" * 256)


def test_store_bytes_round_trips():
    b = Builder()
    runtime.store_bytes(b, -24, b"Hello from the kernel!\n\0")
    stack = bytearray(24)
    for insn in b.insns:
        if insn.opcode == 0x18:
            value = insn.imm
        else:
            stack[24 + insn.off:32 + insn.off] = value.to_bytes(8, "little")
    assert bytes(stack) == b"Hello from the kernel!\n\0"
    assert decode(b.encode())  # encodes


def test_histogram_json_bucket_bounds():
    import json
    counts = [0] * readlat.BUCKETS
    counts[1], counts[15] = 3, 2
    out = json.loads(readlat.histogram_json(counts))
    assert out["total"] == 5
    assert [(r["low"], r["high"], r["count"]) for r in out["buckets"]] == \
        [(0, 1, 3), (16384, 32767, 2)]
