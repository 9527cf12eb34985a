"""The perf ring parser on synthetic rings laid out like the kernel's (no root needed).

Each case writes a random sequence of records (runs of same-size samples, other
sizes, PERF_RECORD_LOST, a record type the reader skips) at a random position
of a one-page ring, so runs straddle the end of the data area, and compares what
:meth:`Ring.read` returns with a record-by-record reference reading.
"""

import mmap
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.perf.ring import Ring, bulk_layout, sample_stride
from pybpf.ringbuf.reader import make_decoder
from pybpf.syscall import BPFError
from pybpf.syscall.perf import DATA_HEAD_OFFSET, DATA_TAIL_OFFSET, PerfMmapPage

PAGE = mmap.PAGESIZE
SIZE = PAGE  # one data page
SAMPLE, LOST, THROTTLE = 9, 2, 5


def raw_size(payload: int) -> int:
    """The kernel pads u32 size + raw data to 8 bytes (written here, not taken from pybpf)."""
    return -(-(4 + payload) // 8) * 8 - 4


def sample_record(payload: bytes, misc: int = 0) -> bytes:
    size = raw_size(len(payload))
    body = struct.pack("=I", size) + payload.ljust(size, b"\0")
    return struct.pack("=IHH", SAMPLE, misc, 8 + len(body)) + body


def lost_record(count: int) -> bytes:
    return struct.pack("=IHHQQ", LOST, 0, 24, 77, count)


def other_record() -> bytes:
    return struct.pack("=IHHQQ", THROTTLE, 0, 24, 1, 2)


def make_ring(records: list[bytes], tail: int) -> Ring:
    mm = mmap.mmap(-1, PAGE + SIZE)
    meta = memoryview(mm).cast("Q")
    meta[PerfMmapPage.data_offset.offset // 8] = PAGE
    meta[PerfMmapPage.data_size.offset // 8] = SIZE
    meta[DATA_TAIL_OFFSET // 8] = tail
    blob, off = b"".join(records), tail & (SIZE - 1)
    first = min(len(blob), SIZE - off)  # the rest wraps to the start of the data area
    mm[PAGE + off:PAGE + off + first] = blob[:first]
    mm[PAGE:PAGE + len(blob) - first] = blob[first:]
    meta[DATA_HEAD_OFFSET // 8] = tail + len(blob)
    meta.release()
    return Ring(0, mm, 1)


def seq_payload(seq: int, size: int) -> bytes:
    return struct.pack("<QII", seq, 0, 4242).ljust(size, b"\xaa")


# A ring content: (kind, argument) items; samples carry their payload size.
items = st.lists(
    st.one_of(
        st.tuples(st.just("run"), st.sampled_from([16, 20, 28, 36]), st.integers(1, 40)),
        st.tuples(st.just("lost"), st.integers(1, 1 << 40), st.just(0)),
        st.tuples(st.just("other"), st.just(0), st.just(0)),
    ),
    max_size=12,
)


def build(spec, misc_seed: int):
    """(records, expected samples as (seq, payload size, payload), lost counts) that fit the ring."""
    entries = []  # (record bytes, sample or None, lost count or None)
    seq = 0
    for kind, arg, count in spec:
        if kind == "run":
            for _ in range(count):
                payload = seq_payload(seq, arg)
                entries.append((sample_record(payload, misc=(seq * misc_seed) % 3), (seq, arg, payload), None))
                seq += 1
        elif kind == "lost":
            entries.append((lost_record(arg), None, arg))
        else:
            entries.append((other_record(), None, None))
    while sum(len(e[0]) for e in entries) > SIZE - 8:
        entries.pop()
    return ([e[0] for e in entries], [e[1] for e in entries if e[1]],
            [e[2] for e in entries if e[2] is not None])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(spec=items, start=st.integers(0, SIZE // 8 - 1), laps=st.integers(0, 3), misc_seed=st.integers(0, 5))
def test_read_matches_a_record_by_record_reading(spec, start, laps, misc_seed):
    records, expected, lost = build(spec, misc_seed)
    tail = laps * SIZE + start * 8
    head = tail + sum(map(len, records))
    # raw bytes; struct tuples (32-byte records in bulk, others one by one); a callable decoder
    event = struct.Struct("<QII")
    for decode, bulk, want in (
        (None, None, [sample_record(p)[12:] for _, _, p in expected]),
        (make_decoder(event), bulk_layout(event), [(seq, 0, 4242) for seq, _, _ in expected]),
        (len, None, [raw_size(size) for _, size, _ in expected]),
    ):
        ring = make_ring(records, tail)
        got, seen_lost = ring.read(1 << 30, decode, bulk)
        assert got == want
        assert seen_lost == lost
        assert ring.tail == head and ring.meta[DATA_TAIL_OFFSET // 8] == head
        assert ring.read(10, decode, bulk) == ([], [])  # nothing left
        ring.close()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(spec=items, start=st.integers(0, SIZE // 8 - 1), limit=st.integers(0, 60))
def test_read_stops_after_limit_samples_and_resumes(spec, start, limit):
    records, expected, _ = build(spec, 1)
    ring = make_ring(records, start * 8)
    event = struct.Struct("<QII")
    decode, bulk = make_decoder(event), bulk_layout(event)
    first, _ = ring.read(limit, decode, bulk)
    assert len(first) == min(limit, len(expected))
    rest, _ = ring.read(1 << 30, decode, bulk)
    seqs = [r[0] for r in first + rest]
    assert seqs == [seq for seq, _, _ in expected]
    ring.close()


def test_sample_stride_is_the_kernels_record_size():
    # header 8 + u32 size 4 + payload, padded to 8: 0 -> 16, 4 -> 16, 5 -> 24, 16 -> 32, 20 -> 32
    assert [sample_stride(n) for n in (0, 4, 5, 16, 20, 21)] == [16, 16, 24, 32, 32, 40]


def test_corrupt_record_size_is_an_error_not_a_hang():
    bad = struct.pack("=IHH", SAMPLE, 0, 0) + bytes(24)  # size 0 would never advance
    ring = make_ring([bad], 0)
    with pytest.raises(BPFError, match="corrupt record .*size 0.* on CPU 0"):
        ring.read(10, None, None)
    ring.close()


def test_bulk_layout_needs_an_explicit_byte_order():
    assert bulk_layout(struct.Struct("QII")) is None  # native alignment would shift fields
    layout = bulk_layout(struct.Struct("<QII"))
    assert layout.stride == 32 and layout.unpacker.size == 32
    assert bulk_layout(struct.Struct("<QII12x")).stride == 40
    assert bulk_layout(None) is None and bulk_layout(bytes) is None


def test_a_raising_decoder_leaves_the_ring_as_it_was():
    records = [lost_record(3)] + [sample_record(seq_payload(seq, 16)) for seq in range(8)]
    ring = make_ring(records, SIZE - 64)  # wraps

    def decode(raw):
        if struct.unpack_from("<Q", raw)[0] == 5:
            raise ValueError("bad record")
        return raw

    with pytest.raises(ValueError, match="bad record"):
        ring.read(100, decode, None)
    assert ring.tail == SIZE - 64  # nothing consumed: the LOST record is not counted twice
    got, losses = ring.read(100, make_decoder(struct.Struct("<QII")), None)
    assert [r[0] for r in got] == list(range(8)) and losses == [3]
    ring.close()


def test_perf_ioctls_report_the_kernels_errno_by_name():
    # The ioctls go through syscall(SYS_ioctl) (no fcntl): errors must still be typed.
    import errno
    import os

    from pybpf.syscall import BadFD, BPFError
    from pybpf.syscall.perf import ioctl_enable, ioctl_set_bpf

    with pytest.raises(BadFD) as bad:
        ioctl_enable(1 << 20)  # no such fd
    assert bad.value.errno == errno.EBADF and "PERF_EVENT_IOC_ENABLE" in str(bad.value)
    r, w = os.pipe()
    try:
        with pytest.raises(BPFError) as notty:  # a pipe is not a perf event
            ioctl_set_bpf(r, w)
        assert notty.value.errno == errno.ENOTTY and "PERF_EVENT_IOC_SET_BPF" in str(notty.value)
    finally:
        os.close(r)
        os.close(w)
