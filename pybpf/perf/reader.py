"""Reading a BPF_MAP_TYPE_PERF_EVENT_ARRAY: one perf ring per CPU.

For each online CPU we open a ``PERF_COUNT_SW_BPF_OUTPUT`` software event
with ``sample_type = PERF_SAMPLE_RAW``, mmap it (one metadata page plus a
power-of-two number of data pages), store its fd in the map at that CPU's
index, and register it with epoll. ``bpf_perf_event_output(ctx, map,
BPF_F_CURRENT_CPU, ...)`` then writes ``PERF_RECORD_SAMPLE`` records to the
ring of the CPU it runs on; when the ring is full the kernel counts the
records it dropped and later writes one ``PERF_RECORD_LOST`` record, which
we add to :attr:`PerfReader.lost` (and report per CPU).

Reading is done a ring at a time (see :mod:`pybpf.perf.ring`): runs of
same-size samples are decoded in bulk, so the batch APIs (:meth:`read_batch`,
:meth:`poll_batch`) cost little more than the decoding itself, and the
per-record :meth:`poll` adds only the callback.

Wakeups: by default the kernel wakes the reader when a page of data is
waiting (``watermark``), not for every record: at high rates a wakeup per
record costs the producer an irq_work and the consumer an epoll return per
record. Records below the watermark are still delivered: every wait is cut
into slices of at most ``flush_interval`` seconds, with a drain after each.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import time
from itertools import repeat, starmap

try:
    # The C deque that collections re-exports: importing collections (with keyword,
    # operator and reprlib) is start-up time every tool would pay for one name.
    from _collections import deque
except ImportError:  # an interpreter without it
    from collections import deque

from pybpf._record import Record
from pybpf.syscall import BadFD, BPFError, Cmd, InvalidArgument, bpf, fd_of
from pybpf.syscall import perf as _perf
from pybpf.syscall.attr_map import MapElemAttr
from pybpf.syscall.errors import expect_kind
from pybpf.syscall.map_cmds import map_get_info

from .ring import _PAGE, Ring, bulk_layout

TYPE_CHECKING = False  # typing is not imported at run time: see pybpf._record
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, NamedTuple

    class Sample(NamedTuple):  # for type checkers: created by __getattr__ at run time
        cpu: int
        data: Any

__all__ = ["PerfReader", "Sample", "LostRecords", "online_cpus"]

_PERF_EVENT_ARRAY = 4
_ALL = 1 << 62
# Records per batch: a bounded list keeps memory flat and the cyclic GC from rescanning
# a growing heap of record tuples while a deep backlog is drained. Below the GC's
# generation-0 threshold (700 allocations by default), a batch is delivered and freed
# before a collection would scan its records and promote them to older generations:
# 512 cost ~60-80 ns less per record than 4096 at every API (in-process backlog, 200k records).
_CHUNK = 512


_SAMPLE_DOC = """One record from ``bpf_perf_event_output``: ``cpu`` (int) and the (decoded) ``data``.

The kernel pads raw data so that ``u32 size`` + data is 8-byte aligned, so
raw ``data`` may be up to 7 bytes longer than what the program wrote. A
named tuple, not a record class: it is built once per record on the hot path.
"""


def __getattr__(name: str) -> Any:
    """``Sample`` is created on first use (PEP 562), the only use of collections here.

    The tools read with ``poll(..., sample=False)`` and never build one, and
    importing collections is start-up time they are judged on. Once created,
    the class is a module global like any other (pickle finds it by name).
    """
    if name == "Sample":
        from collections import namedtuple

        cls = namedtuple("Sample", ("cpu", "data"), module=__name__)
        cls.__doc__ = _SAMPLE_DOC
        globals()["Sample"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"Sample"})


def _sample_class() -> type:
    cls = globals().get("Sample")
    return cls if cls is not None else __getattr__("Sample")


class LostRecords(Record):
    """A PERF_RECORD_LOST: ``count`` samples the kernel dropped on ``cpu`` (the ring was full)."""

    __slots__ = ("cpu", "count")
    cpu: int
    count: int

    def __init__(self, cpu: int, count: int) -> None:
        self._assign(cpu=cpu, count=count)


_tuple_new = tuple.__new__


def online_cpus() -> list[int]:
    from pybpf.maps.cpus import parse_cpu_list

    with open("/sys/devices/system/cpu/online") as f:
        return parse_cpu_list(f.read())


def _samples(cpu: int, records: Any) -> Iterator[Sample]:
    """Samples of ``cpu``'s records, built by C code only (Sample.__new__ is Python).

    ``starmap`` passes each ``(Sample, (cpu, data))`` row from ``zip`` as the argument
    tuple itself, where ``map(tuple.__new__, repeat(Sample), ...)`` would build one per call.
    ``records`` is consumed one item per Sample taken, so after a raising callback
    the records not yet turned into Samples are still in the iterator."""
    return starmap(_tuple_new, zip(repeat(_sample_class()), zip(repeat(cpu), records)))


class PerfReader:
    """Per-CPU readers for a perf event array map.

    ``pages`` data pages per CPU (a power of two). ``record_type`` decodes
    each sample's data (see :func:`pybpf.ringbuf.records.make_decoder`); a
    struct format with an explicit byte order, e.g. ``(Event, "<QII")``, is
    decoded a whole run of records at a time.

    Wakeup: by default when ``watermark`` bytes are waiting (one page, or
    half the ring if that is smaller). Pass ``wakeup_events=n`` to be woken
    every n samples instead (``wakeup_events=1``: per sample, lowest latency,
    costliest), or another ``watermark``. A record below the threshold waits
    at most ``flush_interval`` seconds in any blocking call.

    ``lost`` is the total of PERF_RECORD_LOST counts seen; ``on_lost`` (if
    given) is called with each :class:`LostRecords` as it is read, before the
    samples read with it (up to ``_CHUNK`` of them) are delivered.
    """

    def __init__(self, map: object, *, pages: int = 64, record_type: Any = None,
                 wakeup_events: int | None = None, watermark: int | None = None,
                 flush_interval: float = 0.1,
                 on_lost: Callable[[LostRecords], Any] | None = None,
                 cpus: list[int] | None = None):
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two, got {pages}")
        if wakeup_events is not None and watermark is not None:
            raise ValueError("give wakeup_events or watermark, not both")
        if wakeup_events is not None and wakeup_events < 1:
            raise ValueError(f"wakeup_events must be at least 1, got {wakeup_events}")
        if watermark is not None and not 0 < watermark < pages * _PAGE:
            raise ValueError(f"watermark {watermark} must be between 1 and the ring's size "
                             f"({pages * _PAGE} bytes), exclusive")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        if wakeup_events is None and watermark is None:
            watermark = min(_PAGE, pages * _PAGE // 2)
        fd = fd_of(map, "a map")
        expect_kind(fd, "map", "PerfReader")  # a program's info would pass for a map's
        info = map_get_info(fd)
        if info.type != _PERF_EVENT_ARRAY:
            raise InvalidArgument(errno.EINVAL, "PerfReader",
                                  f"map {info.name.decode() or fd} has type {info.type}, "
                                  f"not BPF_MAP_TYPE_PERF_EVENT_ARRAY ({_PERF_EVENT_ARRAY})")
        self._decode = None
        if record_type is not None:  # the tools decode raw bytes themselves: no import for them
            from pybpf.ringbuf.records import make_decoder
            self._decode = make_decoder(record_type)
        self._bulk = bulk_layout(record_type)
        self.wakeup_events = wakeup_events
        self.watermark = watermark
        # With per-sample wakeups every record wakes us; otherwise some may wait for a drain.
        self._slice = None if wakeup_events == 1 else flush_interval
        self.on_lost = on_lost
        self.lost = 0
        self.lost_per_cpu: dict[int, int] = {}
        self.closed = True  # until the map fd is ours
        self._pending: tuple[int, list] | None = None  # records a raising callback did not get
        self._rings: dict[int, Ring] = {}
        self._map_fd = os.dup(fd)  # our own reference: the reader outlives a closed map object
        self.closed = False
        self._epoll = select.epoll()
        try:
            for cpu in cpus if cpus is not None else online_cpus():
                if cpu >= info.max_entries:
                    raise InvalidArgument(errno.E2BIG, "PerfReader",
                                          f"CPU {cpu} does not fit the map's max_entries {info.max_entries}")
                attr = _perf.PerfEventAttr(type=_perf.PerfType.SOFTWARE,
                                           config=_perf.PerfSwId.BPF_OUTPUT,
                                           sample_type=_perf.SampleType.RAW, sample_period=1)
                if watermark is not None:
                    attr.flags |= _perf.ATTR_WATERMARK
                    attr.wakeup_events = watermark  # the union's wakeup_watermark
                else:
                    attr.wakeup_events = wakeup_events
                ring = Ring.open(cpu, _perf.open_event(attr, pid=-1, cpu=cpu,
                                                       context=f"BPF output event on CPU {cpu}"), pages)
                self._rings[cpu] = ring
                key, value = ctypes.c_uint32(cpu), ctypes.c_uint32(ring.fd.fd)
                bpf(Cmd.MAP_UPDATE_ELEM, MapElemAttr(map_fd=self._map_fd, key=ctypes.addressof(key),
                                                      value=ctypes.addressof(value)),
                    f"storing CPU {cpu}'s perf event fd in the perf event array")
                _perf.ioctl_enable(ring.fd.fd)
                self._epoll.register(ring.fd.fd, select.EPOLLIN)
        except BaseException:
            self.close()
            raise

    @property
    def cpus(self) -> list[int]:
        return sorted(self._rings)

    # ---------------------------------------------------------------- read
    def _lost(self, cpu: int, losses: list[int], records: list) -> None:
        """Count PERF_RECORD_LOSTs, then tell ``on_lost`` (if it raises, ``records``, read
        with them, are kept for the next call)."""
        total = sum(losses)
        self.lost += total
        self.lost_per_cpu[cpu] = self.lost_per_cpu.get(cpu, 0) + total
        if self.on_lost is not None:
            try:
                for count in losses:
                    self.on_lost(LostRecords(cpu, count))
            except BaseException:
                if records:
                    self._keep(cpu, records)
                raise

    def _keep(self, cpu: int, records: list) -> None:
        """Deliver ``records`` first next time (a callback raised before they were delivered)."""
        if self._pending is not None:  # the rest of the same batch, which comes after them
            records = records + self._pending[1]
        self._pending = (cpu, records)

    def _take_pending(self, limit: int) -> tuple[int, list] | None:
        pending = self._pending
        if pending is None or limit <= 0:
            return None
        cpu, records = pending
        if len(records) > limit:
            self._pending = (cpu, records[limit:])
            return cpu, records[:limit]
        self._pending = None
        return pending

    def _drain(self, on_batch: Callable[[int, list], Any], limit: int) -> int:
        """Give each CPU's waiting records to ``on_batch(cpu, records)``, a ring and at most
        ``_CHUNK`` records at a time (so a raising ``on_batch`` leaves the rest unread, not lost)."""
        n = 0
        pending = self._take_pending(limit)
        if pending is not None:
            n += len(pending[1])
            on_batch(*pending)
        decode, bulk = self._decode, self._bulk
        for ring in self._rings.values():
            while n < limit:
                records, losses = ring.read(min(limit - n, _CHUNK), decode, bulk)
                if losses:
                    self._lost(ring.cpu, losses, records)
                if not records:
                    break
                n += len(records)
                on_batch(ring.cpu, records)
        return n

    def _per_record(self, callback: Callable[..., Any], sample: bool) -> Callable[[int, list], None]:
        def deliver(cpu: int, records: list) -> None:
            it = iter(records)
            try:
                deque(map(callback, _samples(cpu, it)) if sample else map(callback, repeat(cpu), it), 0)
            except BaseException:
                rest = list(it)  # the records after the one whose callback raised
                if rest:
                    self._keep(cpu, rest)
                raise
        return deliver

    def _wait_and_drain(self, on_batch: Callable[[int, list], Any], timeout: float | None,
                        limit: int) -> int:
        """Drain; if nothing was there, wait for a wakeup and drain, until something
        arrives or ``timeout`` seconds pass (``None``: no limit, ``0``: do not wait)."""
        self._check()
        n = self._drain(on_batch, limit)
        if n or timeout == 0:
            return n
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self._slice
            if deadline is not None:
                left = deadline - time.monotonic()
                wait = left if wait is None else min(wait, left)
            self._epoll.poll(-1 if wait is None else max(wait, 0))
            n = self._drain(on_batch, limit)  # every ring: any may have data, woken or not
            if n or (deadline is not None and time.monotonic() >= deadline):
                return n

    def poll(self, callback: Callable[..., Any], timeout: float | None = None,
             max_records: int = _ALL, *, sample: bool = True) -> int:
        """Pass each waiting :class:`Sample` to ``callback``; if none, wait up to ``timeout``
        seconds for some. Returns how many were delivered; ``timeout=0`` only drains.

        ``sample=False`` calls ``callback(cpu, data)`` instead (as BCC's callbacks get
        the CPU as an argument): no Sample is built, which is about half of the
        per-record cost of a trivial callback.

        If ``callback`` raises, the samples after that one are kept and delivered first
        by the next call.
        """
        return self._wait_and_drain(self._per_record(callback, sample), timeout, max_records)

    def poll_batch(self, on_batch: Callable[[int, list], Any], timeout: float | None = None,
                   max_records: int = _ALL) -> int:
        """Like :meth:`poll`, but calls ``on_batch(cpu, records)`` with a list of decoded
        records (not Samples) per CPU ring, in that ring's order: the fastest way to consume."""
        return self._wait_and_drain(on_batch, timeout, max_records)

    def read_batch(self, max_records: int = _ALL) -> list[Sample]:
        """Every sample waiting in any CPU's ring (up to ``max_records``), without blocking;
        each CPU's samples stay in order."""
        self._check()
        out: list[Sample] = []
        self._drain(lambda cpu, records: out.extend(_samples(cpu, records)), max_records)
        return out

    def available(self) -> int:
        """Bytes written by the kernel and not yet consumed, over all rings."""
        self._check()
        return sum(ring.available() for ring in self._rings.values())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until data is waiting (or ``timeout`` seconds pass); True if there is some."""
        self._check()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._pending or self.available()):
            wait = self._slice
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = left if wait is None else min(wait, left)
            self._epoll.poll(-1 if wait is None else wait)
        return True

    def __iter__(self) -> Iterator[Sample]:
        return self.iter()

    def iter(self, timeout: float | None = None, batch: int = 4096) -> Iterator[Sample]:
        """Yield samples as they arrive; stops after ``timeout`` seconds with nothing new,
        or when the reader is closed meanwhile (iterating a closed one is an error)."""
        self._check()
        while not self.closed:
            samples = self.read_batch(batch)
            if samples:
                yield from samples
            elif not self.wait(timeout):
                return

    def consume_until(self, count: int, timeout: float) -> list[Sample]:
        """Collect samples until ``count`` arrived or ``timeout`` seconds passed in total."""
        out: list[Sample] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            out += self.read_batch(count - len(out))
            left = deadline - time.monotonic()
            if len(out) >= count or left <= 0:
                break
            self.wait(min(left, 0.05))
        return out

    # ------------------------------------------------------------ lifecycle
    def fileno(self) -> int:
        """The epoll fd that is readable when samples wait: for a caller's own event loop."""
        self._check()
        return self._epoll.fileno()

    def _check(self) -> None:
        if self.closed:
            raise BadFD(errno.EBADF, "PerfReader", "reader is closed")

    def close(self) -> None:
        if getattr(self, "closed", True):  # closed, or __init__ failed before owning anything
            return
        self.closed = True
        for cpu, ring in self._rings.items():
            key = ctypes.c_uint32(cpu)
            try:  # remove our fd from the map so the program stops writing to a dead ring
                bpf(Cmd.MAP_DELETE_ELEM, MapElemAttr(map_fd=self._map_fd, key=ctypes.addressof(key)))
            except BPFError:
                pass
            ring.close()
        self._rings.clear()
        if hasattr(self, "_epoll"):
            self._epoll.close()
        os.close(self._map_fd)

    def __enter__(self) -> "PerfReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
