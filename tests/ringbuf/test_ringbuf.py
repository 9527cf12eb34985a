import ctypes
import os
import struct
import sys
import threading
import time
from collections import namedtuple

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "link"))
from attachkit import seq_producer  # noqa: E402

from pybpf.link import attach_tracepoint  # noqa: E402
from pybpf.maps import MapSpec  # noqa: E402
from pybpf.program import Program, ProgramSpec, ProgType  # noqa: E402
from pybpf.ringbuf import RingBuffer  # noqa: E402

pytestmark = pytest.mark.kernel

Event = namedtuple("Event", "seq cpu tgid")
Event._struct = struct.Struct("<QII")


class CEvent(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("cpu", ctypes.c_uint32), ("tgid", ctypes.c_uint32)]


@pytest.fixture
def setup():
    counter = MapSpec.array("Q", 1).create()
    rb = MapSpec.ringbuf(1 << 16).create()
    yield counter, rb
    counter.close()
    rb.close()


def load_producer(counter, rb, **kw):
    spec = ProgramSpec(seq_producer(counter, rb, os.getpid(), **kw), ProgType.TRACEPOINT)
    return Program.load(spec, verify=False)


def produce(counter, rb, n, **kw):
    prog = load_producer(counter, rb, **kw)
    with attach_tracepoint(prog, "syscalls:sys_enter_getpid"):
        for _ in range(n):
            os.getpid()
    prog.close()


@pytest.mark.parametrize("n", [1, 500, 3000])  # 3000 * 24 bytes wraps the 64 KiB ring
def test_ringbuf_delivers_exactly_n_in_order(setup, n):
    counter, rb = setup
    with RingBuffer(rb, record_type=Event) as reader:
        got = []
        prog = load_producer(counter, rb)
        with attach_tracepoint(prog, "syscalls:sys_enter_getpid"):
            for i in range(n):
                os.getpid()
                if i % 1000 == 999:  # keep the ring from filling up
                    got.extend(reader.read_batch())
        prog.close()
        got.extend(reader.consume_until(n - len(got), timeout=2))
        assert [e.seq for e in got] == list(range(n))
        assert {e.tgid for e in got} == {os.getpid()}
        assert reader.read_batch() == []
        assert reader.available() == 0


def test_ringbuf_skips_discarded_records_and_decodes_ctypes(setup):
    counter, rb = setup
    produce(counter, rb, 20, discard_odd=True)
    with RingBuffer(rb, record_type=CEvent) as reader:
        got = reader.read_batch()
        assert [e.seq for e in got] == list(range(0, 20, 2))
        assert isinstance(got[0], CEvent)
        assert reader.discarded == 10


def test_ringbuf_callback_poll_and_timeout(setup):
    counter, rb = setup
    with RingBuffer(rb) as reader:
        seen = []
        assert reader.poll(seen.append, timeout=0.05) == 0  # nothing: returns after the timeout

        def later():
            produce(counter, rb, 3)

        t = threading.Timer(0.05, later)
        t.start()
        total = 0
        for _ in range(20):
            total += reader.poll(seen.append, timeout=1)
            if total == 3:
                break
        t.join()
        assert total == 3
        assert [struct.unpack_from("<Q", r)[0] for r in seen] == [0, 1, 2]
        assert all(isinstance(r, bytes) and len(r) == 16 for r in seen)


def test_ringbuf_iterator_stops_on_timeout(setup):
    counter, rb = setup
    produce(counter, rb, 5)
    with RingBuffer(rb, record_type=(Event, "<QII")) as reader:
        got = list(reader.iter(timeout=0.05))
        assert [e.seq for e in got] == [0, 1, 2, 3, 4]


def test_ringbuf_rejects_other_maps(setup):
    counter, _ = setup
    with pytest.raises(Exception, match="BPF_MAP_TYPE_RINGBUF"):
        RingBuffer(counter)


def test_ringbuf_closed_reader_raises(setup):
    _, rb = setup
    reader = RingBuffer(rb)
    reader.close()
    reader.close()
    # Every use of a closed reader says so, rather than answering as an empty one would.
    for use in (reader.read_batch, reader.available, reader.fileno, lambda: next(iter(reader)),
                lambda: reader.poll(print, 0), lambda: reader.wait(0),
                lambda: reader.consume_until(1, 0)):
        with pytest.raises(OSError, match="reader is closed"):
            use()


def test_ringbuf_bulk_path_falls_back_on_discarded_records(setup):
    counter, rb = setup
    produce(counter, rb, 30, discard_odd=True)
    with RingBuffer(rb, record_type=struct.Struct("<QII")) as reader:
        got = reader.read_batch()
        assert [seq for seq, _cpu, _tgid in got] == list(range(0, 30, 2))
        assert reader.discarded == 15
    produce(counter, rb, 1000)  # a clean span: decoded in bulk
    with RingBuffer(rb, record_type=(Event, "<QII")) as reader:
        got = reader.read_batch(max_records=400) + reader.read_batch()
        assert [e.seq for e in got] == list(range(30, 1030))
        assert all(isinstance(e, Event) and e.tgid == os.getpid() for e in got)


@pytest.mark.parametrize("record_type", [(Event, "<QII"), None])  # bulk spans, and raw bytes
def test_ringbuf_poll_batch_delivers_lists_in_order(setup, record_type):
    counter, rb = setup
    produce(counter, rb, 1500, discard_odd=True)  # discards break the bulk spans every record
    produce(counter, rb, 1000)  # then a clean run: one span
    with RingBuffer(rb, record_type=record_type) as reader:
        batches = []
        assert reader.poll_batch(batches.append, timeout=0, max_records=600) == 600
        assert reader.poll_batch(batches.append, timeout=1) == 750 + 1000 - 600
        assert reader.poll_batch(batches.append, timeout=0) == 0
        assert all(isinstance(b, list) and b for b in batches)
        got = [r for b in batches for r in b]
        seqs = [e.seq for e in got] if record_type else [struct.unpack_from("<Q", r)[0] for r in got]
        assert seqs == list(range(0, 1500, 2)) + list(range(1500, 2500))
        assert reader.discarded == 750
        assert reader.available() == 0


def test_ringbuf_raising_callback_loses_and_repeats_nothing(setup):
    counter, rb = setup
    produce(counter, rb, 3, discard_odd=True)  # seqs 0, 2: the careful path
    produce(counter, rb, 100)  # seqs 3..102: a bulk span
    with RingBuffer(rb, record_type=Event) as reader:
        seen = []

        def callback(event):
            seen.append(event.seq)
            if event.seq in (2, 50):
                raise KeyError(event.seq)

        for _ in range(2):
            with pytest.raises(KeyError):
                reader.poll(callback, timeout=0)
        assert reader.poll(callback, timeout=0) == 52
        assert seen == [0, 2] + list(range(3, 103))  # each record exactly once, in order
        assert reader.available() == 0


def test_ringbuf_burst_after_idle_wakes_reader_before_timeout(setup):
    """The kernel wakes a reader only when a record lands at consumer_pos (it caught up);
    a reader that went idle must be woken by the first record of a later burst, not by
    its timeout."""
    counter, rb = setup
    with RingBuffer(rb, record_type=(Event, "<QII")) as reader:
        assert reader.poll(lambda e: None, timeout=0.02) == 0  # idle: nothing, slept to the timeout
        t = threading.Timer(0.05, produce, (counter, rb, 200))
        t.start()
        got = []
        t0 = time.monotonic()
        while len(got) < 200 and time.monotonic() - t0 < 10:
            reader.poll(got.append, timeout=10)
        waited = time.monotonic() - t0
        t.join()
        assert [e.seq for e in got] == list(range(200))
        assert waited < 5  # woken by the burst (program load + 200 calls), far from the 10 s timeout


def test_ringbuf_namedtuple_bulk_decoding_builds_the_class_and_honours_make(setup):
    counter, rb = setup

    class Custom(Event):
        __slots__ = ()

        @classmethod
        def _make(cls, row):
            return ("custom", row[0])

    produce(counter, rb, 50)
    with RingBuffer(rb, record_type=(Event, "<QII")) as reader:
        got = reader.read_batch(max_records=25)
        assert all(type(e) is Event for e in got)  # the fast path builds exactly the namedtuple
        assert got == [Event(i, e.cpu, os.getpid()) for i, e in enumerate(got)]
        assert got[0].seq == 0 and got[-1].tgid == os.getpid()
    with RingBuffer(rb, record_type=(Custom, "<QII")) as reader:
        assert reader.read_batch() == [("custom", i) for i in range(25, 50)]
