"""PerfReader against the real kernel: a tracepoint program on sys_enter_getpid emits
{u64 seq, u32 cpu, u32 tgid} (optionally padded) for each getpid(2) of this process."""

import contextlib
import os
import struct
import sys
import threading
import time
from collections import namedtuple

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "link"))
from attachkit import BPF_F_CURRENT_CPU, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10  # noqa: E402

from pybpf.asm.builder import Builder  # noqa: E402
from pybpf.link.tracepoint import attach_tracepoint  # noqa: E402
from pybpf.maps import Map, MapSpec, MapType  # noqa: E402
from pybpf.perf import LostRecords, PerfReader, online_cpus  # noqa: E402
from pybpf.syscall import BadFD  # noqa: E402
from pybpf.program import Program, ProgramSpec, ProgType  # noqa: E402

pytestmark = pytest.mark.kernel

Event = namedtuple("Event", "seq cpu tgid")


def producer(counter: Map, out: Map, tgid: int, size: int = 16, other_size: int = 0) -> Builder:
    """seq = counter[0]++; perf_event_output {seq, cpu, tgid} zero-padded to ``size`` bytes,
    or to ``other_size`` bytes for every other run of 32 sequence numbers."""
    top = (max(size, other_size) + 7) & ~7
    at = -8 - top  # below the key slot at -4
    b = Builder()
    b.mov(r6, r1)
    b.call("get_current_pid_tgid")
    b.rsh(r0, 32)
    b.jne(r0, tgid, "out")
    b.mov(r7, r0)
    b.st(r10, -4, 0, 4)
    b.map_lookup(counter, key_at=-4)
    b.jeq(r0, 0, "out")
    b.mov(r8, 1)
    b.atomic_add(r0, 0, r8, fetch=True)
    b.call("get_smp_processor_id")
    b.mov(r9, r0)
    for off in range(16, top, 8):
        b.st(r10, at + off, 0, 8)
    b.stx(r10, at, r8, 8)
    b.stx(r10, at + 8, r9, 4)
    b.stx(r10, at + 12, r7, 4)
    b.mov(r1, r6)
    b.ld_map_fd(r2, out)
    b.ld_imm64(r3, BPF_F_CURRENT_CPU)
    b.stack_ptr(r4, at)
    b.mov(r5, size)
    if other_size:
        b.rsh(r8, 5)
        b.and_(r8, 1)
        b.jeq(r8, 0, "emit")
        b.mov(r5, other_size)
        b.label("emit")
    b.call("perf_event_output")
    b.label("out")
    b.ret(0)
    return b


@pytest.fixture
def maps():
    counter = Map(MapSpec(MapType.ARRAY, 4, 8, 1, key="I"))
    arr = Map(MapSpec(MapType.PERF_EVENT_ARRAY, 4, 4, os.cpu_count(), key="I"))
    yield counter, arr
    counter.close()
    arr.close()


def produced(counter: Map) -> int:
    return struct.unpack_from("<Q", counter.lookup(0))[0]


@contextlib.contextmanager
def attached(counter, arr, **sizes):
    prog = Program.load(ProgramSpec(producer(counter, arr, os.getpid(), **sizes), ProgType.TRACEPOINT),
                        verify=False)
    try:
        with attach_tracepoint(prog, "syscalls:sys_enter_getpid"):
            yield
    finally:
        prog.close()


def run_producer(counter, arr, n, *, drain=None, every=0, **sizes):
    with attached(counter, arr, **sizes):
        for i in range(n):
            os.getpid()
            if drain and every and i % every == every - 1:
                drain()


@contextlib.contextmanager
def one_cpu():
    """Run this process on one CPU, so all its records go to one ring."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def check_in_order_per_cpu(batches, n):
    """``batches``: (cpu, [Event]) as delivered. Exactly seqs 0..n-1, each CPU's in order."""
    seqs = [e.seq for _, events in batches for e in events]
    assert sorted(seqs) == list(range(n))
    for cpu in online_cpus():
        mine = [e.seq for c, events in batches if c == cpu for e in events]
        assert mine == sorted(mine)
    assert all(e.cpu == cpu for cpu, events in batches for e in events)  # the ring is the CPU that wrote it
    assert {e.tgid for _, events in batches for e in events} == {os.getpid()}


@pytest.mark.parametrize("n", [1, 200, 2500])  # 2500 * 32 bytes wraps a 16 KiB ring
def test_perf_reader_delivers_exactly_n_in_order_per_cpu(maps, n):
    counter, arr = maps
    with PerfReader(arr, pages=4, record_type=(Event, "<QII")) as reader:
        got = []
        run_producer(counter, arr, n, drain=lambda: got.extend(reader.read_batch()), every=200)
        got.extend(reader.consume_until(n - len(got), timeout=2))
        assert reader.lost == 0
        check_in_order_per_cpu([(s.cpu, [s.data]) for s in got], n)


@pytest.mark.parametrize("sizes", [
    {"size": 16},                    # 32-byte records: runs decoded in bulk
    {"size": 28},                    # 40-byte records: some straddle the end of the ring
    {"size": 16, "other_size": 28},  # runs of 32 records of each size, alternating
])
def test_poll_batch_delivers_exactly_n_in_order_per_cpu(maps, sizes):
    counter, arr = maps
    n = 3000  # about seven laps of a 16 KiB ring
    fmt = "<QII" + ("12x" if sizes == {"size": 28} else "")
    with PerfReader(arr, pages=4, record_type=(Event, fmt)) as reader:
        batches = []
        drain = lambda: reader.poll_batch(lambda cpu, events: batches.append((cpu, events)), timeout=0)
        run_producer(counter, arr, n, drain=drain, every=150, **sizes)
        while sum(len(events) for _, events in batches) < n:
            assert reader.poll_batch(lambda cpu, events: batches.append((cpu, events)), timeout=2)
        assert reader.lost == 0 and produced(counter) == n
        assert all(type(events) is list and all(type(e) is Event for e in events) for _, events in batches)
        check_in_order_per_cpu(batches, n)


def test_lost_accounting_is_exact_with_a_tiny_ring(maps):
    counter, arr = maps
    lost_events = []
    with one_cpu() as cpu, PerfReader(arr, pages=1, record_type=(Event, "<QII"),
                                      on_lost=lost_events.append) as reader:
        batches = []
        n = 1000  # 1000 * 32 bytes cannot fit one 4 KiB page: the kernel drops and counts
        run_producer(counter, arr, n)
        reader.poll_batch(lambda c, events: batches.append((c, events)), timeout=0)
        # The kernel writes PERF_RECORD_LOST once space frees up: produce once more, then drain.
        run_producer(counter, arr, 1)
        reader.poll_batch(lambda c, events: batches.append((c, events)), timeout=0)
        seqs = [e.seq for _, events in batches for e in events]
        kept = len(seqs) - 1
        assert 0 < kept < n
        assert seqs == list(range(kept)) + [n]  # the ring filled, the rest was dropped, then one more
        assert reader.lost == n - kept == produced(counter) - len(seqs)
        assert reader.lost_per_cpu == {cpu: reader.lost}
        assert lost_events == [LostRecords(cpu, reader.lost)]
        assert {c for c, _ in batches} == {cpu}


def test_a_raising_callback_loses_nothing(maps):
    counter, arr = maps
    with one_cpu(), PerfReader(arr, pages=4, record_type=(Event, "<QII")) as reader:
        run_producer(counter, arr, 50)
        seen = []

        def callback(sample):
            seen.append(sample.data.seq)
            if len(seen) == 10:
                raise RuntimeError("callback failed")

        with pytest.raises(RuntimeError, match="callback failed"):
            reader.poll(callback, timeout=0)
        assert seen == list(range(10))
        assert reader.poll(callback, timeout=0) == 40  # the 40 after the failing one, first
        assert seen == list(range(50))


def test_samples_across_batches_keep_order_and_survive_a_raising_callback(maps):
    """More records than one internal batch: each callback gets its own Sample (kept ones
    stay intact), in ring order, and a raise mid-way loses nothing."""
    from pybpf.perf import Sample
    from pybpf.perf.reader import _CHUNK

    counter, arr = maps
    n = 2 * _CHUNK + 77
    with one_cpu() as cpu, PerfReader(arr, pages=16, record_type=(Event, "<QII")) as reader:
        run_producer(counter, arr, n)
        kept = []

        def callback(sample):
            kept.append(sample)
            if len(kept) in (_CHUNK - 1, _CHUNK + 5):  # just before and just after a batch boundary
                raise RuntimeError("callback failed")

        calls = 0
        while len(kept) < n:
            calls += 1
            try:
                reader.poll(callback, timeout=0)
            except RuntimeError:
                pass
            assert calls < 10
        assert reader.poll(callback, timeout=0) == 0 and reader.lost == 0
        assert len({id(s) for s in kept}) == n
        assert all(type(s) is Sample and s.cpu == cpu and type(s.data) is Event for s in kept)
        assert [s.data.seq for s in kept] == list(range(n))
        assert [tuple(s) for s in kept[:2]] == [(cpu, kept[0].data), (cpu, kept[1].data)]


def test_poll_without_samples_passes_cpu_and_data(maps):
    counter, arr = maps
    with one_cpu() as cpu, PerfReader(arr, pages=4, record_type=(Event, "<QII")) as reader:
        run_producer(counter, arr, 30)
        seen = []

        def callback(c, event):
            seen.append((c, event))
            if len(seen) == 10:
                raise RuntimeError("callback failed")

        with pytest.raises(RuntimeError, match="callback failed"):
            reader.poll(callback, timeout=0, sample=False)
        assert reader.poll(callback, timeout=0, sample=False) == 20
        assert [e.seq for _, e in seen] == list(range(30))
        assert {c for c, _ in seen} == {cpu}
        assert all(type(e) is Event and e.tgid == os.getpid() for _, e in seen)


def produce_later(n: int, delay: float) -> threading.Thread:
    """getpid ``n`` times from another thread of this process after ``delay`` seconds."""
    def run():
        time.sleep(delay)
        for _ in range(n):
            os.getpid()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("options", [{}, {"wakeup_events": 1}, {"watermark": 2048}])
def test_blocking_poll_gets_records_below_the_watermark(maps, options):
    counter, arr = maps
    with PerfReader(arr, pages=4, **options) as reader, attached(counter, arr):
        assert reader.poll(lambda s: None, timeout=0.05) == 0
        thread = produce_later(3, 0.05)  # 96 bytes: below any watermark, so no wakeup comes
        seen = []
        t0 = time.monotonic()
        while len(seen) < 3 and time.monotonic() - t0 < 30:
            reader.poll(seen.append, timeout=30)
        elapsed = time.monotonic() - t0
        thread.join()
    assert [struct.unpack_from("<Q", s.data)[0] for s in seen] == [0, 1, 2]
    # Without a wakeup the poll would sleep its whole 30 s timeout; flush_interval (0.1 s)
    # slicing or a per-sample wakeup returns in a fraction of a second. The bound is loose
    # on purpose (a loaded machine), it only tells "woken" from "timed out".
    assert elapsed < 15


def test_wakeup_options():
    arr = Map(MapSpec(MapType.PERF_EVENT_ARRAY, 4, 4, os.cpu_count(), key="I"))
    with arr:
        with PerfReader(arr, pages=4) as reader:
            assert reader.watermark == 4096 and reader.wakeup_events is None  # woken per page
        with PerfReader(arr, pages=1) as reader:
            assert reader.watermark == 2048  # half a one-page ring
        with PerfReader(arr, pages=4, wakeup_events=64) as reader:
            assert reader.watermark is None and reader.wakeup_events == 64
        with pytest.raises(ValueError, match="not both"):
            PerfReader(arr, wakeup_events=1, watermark=4096)
        with pytest.raises(ValueError, match="watermark 16384 must be between 1 and the ring's size"):
            PerfReader(arr, pages=4, watermark=16384)
        with pytest.raises(ValueError, match="wakeup_events must be at least 1"):
            PerfReader(arr, wakeup_events=0)


def test_perf_reader_watermark_and_poll_timeout(maps):
    counter, arr = maps
    with PerfReader(arr, pages=4, watermark=2048) as reader:
        seen = []
        assert reader.poll(seen.append, timeout=0.05) == 0
        run_producer(counter, arr, 10)  # 320 bytes: below the watermark, no wakeup
        assert reader.poll(seen.append, timeout=0) == 10  # but a drain finds them
        assert [struct.unpack_from("<Q", s.data)[0] for s in seen] == list(range(10))
        assert all(len(s.data) == 20 for s in seen)  # 16 bytes written, padded to 8-byte alignment with the u32 size


def test_perf_reader_iterator_and_wait(maps):
    counter, arr = maps
    with PerfReader(arr, pages=2) as reader:
        assert not reader.wait(0.05) and reader.available() == 0
        run_producer(counter, arr, 7)
        assert reader.wait(0) and reader.available() == 7 * 32
        assert len(list(reader.iter(timeout=0.05))) == 7


def test_perf_reader_rejects_wrong_map_and_pages(maps):
    counter, arr = maps
    with pytest.raises(Exception, match="PERF_EVENT_ARRAY"):
        PerfReader(counter)
    with pytest.raises(ValueError, match="power of two"):
        PerfReader(arr, pages=3)
    reader = PerfReader(arr, pages=1)
    reader.close()
    # Every use of a closed reader says so, rather than answering as an empty one would.
    for use in (reader.read_batch, reader.available, reader.fileno, lambda: next(iter(reader)),
                lambda: reader.poll(print, 0), lambda: reader.wait(0)):
        with pytest.raises(BadFD, match="reader is closed"):
            use()
