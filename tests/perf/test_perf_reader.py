import os
import struct
import sys
from collections import namedtuple

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "link"))
from bpfkit import ARRAY, PERF_EVENT_ARRAY, TRACEPOINT, KMap, load, seq_producer  # noqa: E402

from pybpf.link.tracepoint import attach_tracepoint  # noqa: E402
from pybpf.perf import LostRecords, PerfReader, online_cpus  # noqa: E402

pytestmark = pytest.mark.kernel

Event = namedtuple("Event", "seq cpu tgid")


@pytest.fixture
def setup():
    counter = KMap(ARRAY, 4, 8, 1)
    arr = KMap(PERF_EVENT_ARRAY, 4, 4, os.cpu_count())
    yield counter, arr
    counter.close()
    arr.close()


def run_producer(counter, arr, n, *, drain=None, every=0):
    prog = load(TRACEPOINT, seq_producer(counter, arr, os.getpid(), kind="perf"))
    with attach_tracepoint(prog, "syscalls:sys_enter_getpid"):
        for i in range(n):
            os.getpid()
            if drain and every and i % every == every - 1:
                drain()
    prog.close()


@pytest.mark.parametrize("n", [1, 200, 2500])  # 2500 * 32 bytes wraps a 16 KiB ring
def test_perf_reader_delivers_exactly_n_in_order_per_cpu(setup, n):
    counter, arr = setup
    with PerfReader(arr, pages=4, record_type=(Event, "<QII")) as reader:
        got = []
        run_producer(counter, arr, n, drain=lambda: got.extend(reader.read_batch()), every=200)
        got.extend(reader.consume_until(n - len(got), timeout=2))
        assert reader.lost == 0
        assert sorted(s.data.seq for s in got) == list(range(n))
        for cpu in online_cpus():
            seqs = [s.data.seq for s in got if s.cpu == cpu]
            assert seqs == sorted(seqs)  # in order per CPU
        assert all(s.data.cpu == s.cpu for s in got)  # the ring is the CPU that wrote it
        assert {s.data.tgid for s in got} == {os.getpid()}


def test_perf_reader_counts_lost_records(setup):
    counter, arr = setup
    lost_events = []
    with PerfReader(arr, pages=1, on_lost=lost_events.append) as reader:
        n = 1000  # 1000 * 32 bytes cannot fit one 4 KiB page: the kernel drops and reports
        run_producer(counter, arr, n)
        got = reader.read_batch()
        # The LOST record is written when space frees up: produce once more, then drain.
        run_producer(counter, arr, 1)
        got += reader.read_batch()
        assert reader.lost > 0
        assert len(got) + reader.lost == n + 1
        assert sum(e.count for e in lost_events) == reader.lost
        assert all(isinstance(e, LostRecords) for e in lost_events)
        assert sum(reader.lost_per_cpu.values()) == reader.lost


def test_perf_reader_watermark_and_poll_timeout(setup):
    counter, arr = setup
    with PerfReader(arr, pages=4, watermark=2048) as reader:
        seen = []
        assert reader.poll(seen.append, timeout=0.05) == 0
        run_producer(counter, arr, 10)  # 320 bytes: below the watermark, no wakeup
        assert reader.poll(seen.append, timeout=0) == 10  # but a drain finds them
        assert [struct.unpack_from("<Q", s.data)[0] for s in seen] == list(range(10))
        assert all(len(s.data) == 20 for s in seen)  # 16 bytes written, padded to 8-byte alignment with the u32 size


def test_perf_reader_iterator(setup):
    counter, arr = setup
    with PerfReader(arr, pages=2) as reader:
        run_producer(counter, arr, 7)
        assert len(list(reader.iter(timeout=0.05))) == 7


def test_perf_reader_rejects_wrong_map_and_pages(setup):
    counter, arr = setup
    with pytest.raises(Exception, match="PERF_EVENT_ARRAY"):
        PerfReader(counter)
    with pytest.raises(ValueError, match="power of two"):
        PerfReader(arr, pages=3)
