"""Reading a BPF_MAP_TYPE_PERF_EVENT_ARRAY: one perf ring per CPU.

For each online CPU we open a ``PERF_COUNT_SW_BPF_OUTPUT`` software event
with ``sample_type = PERF_SAMPLE_RAW``, mmap it (one metadata page plus a
power-of-two number of data pages), store its fd in the map at that CPU's
index, and register it with epoll. ``bpf_perf_event_output(ctx, map,
BPF_F_CURRENT_CPU, ...)`` then writes ``PERF_RECORD_SAMPLE`` records to the
ring of the CPU it runs on; when the ring is full the kernel counts the
records it dropped and later writes one ``PERF_RECORD_LOST`` record, which
we add to :attr:`PerfReader.lost` (and report per CPU).

Records in the data area may wrap around its end (perf rings are not
double-mapped), so a wrapped record is copied in two pieces.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import select
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple

from pybpf.ringbuf.reader import _fd_of, _map_info, make_decoder
from pybpf.syscall import FD, BadFD, BPFError, Cmd, InvalidArgument, bpf
from pybpf.syscall import perf as _perf
from pybpf.syscall.attr_map import MapElemAttr

__all__ = ["PerfReader", "Sample", "LostRecords", "online_cpus"]

_PERF_EVENT_ARRAY = 4
_PAGE = mmap.PAGESIZE
_HDR = struct.Struct("<IHH")
_U32 = struct.Struct("<I")
_LOST = struct.Struct("<QQ")
_SAMPLE, _LOST_T = int(_perf.RecordType.SAMPLE), int(_perf.RecordType.LOST)


class Sample(NamedTuple):
    """One record from ``bpf_perf_event_output``: the CPU and the (decoded) data.

    The kernel pads raw data so that ``u32 size`` + data is 8-byte aligned, so
    ``data`` may be up to 7 bytes longer than what the program wrote. A named
    tuple, not a dataclass: it is built once per record on the hot path.
    """

    cpu: int
    data: Any


@dataclass(frozen=True, slots=True)
class LostRecords:
    """A PERF_RECORD_LOST: ``count`` samples the kernel dropped on ``cpu`` (the ring was full)."""

    cpu: int
    count: int


_new_sample = tuple.__new__


def online_cpus() -> list[int]:
    from pybpf.maps.cpus import parse_cpu_list

    with open("/sys/devices/system/cpu/online") as f:
        return parse_cpu_list(f.read())


class _Ring:
    """One CPU's perf event fd and its mmapped ring."""

    __slots__ = ("cpu", "fd", "mm", "meta", "size", "mask", "data_off")

    def __init__(self, cpu: int, fd: FD, pages: int):
        self.cpu = cpu
        self.fd = fd
        self.mm = mmap.mmap(fd.fd, _PAGE * (1 + pages), mmap.MAP_SHARED,
                            mmap.PROT_READ | mmap.PROT_WRITE)
        self.meta = memoryview(self.mm).cast("Q")  # data_head at [128], data_tail at [129]
        off = _perf.PerfMmapPage.data_offset.offset // 8
        self.data_off = self.meta[off] or _PAGE
        self.size = self.meta[off + 1] or _PAGE * pages
        self.mask = self.size - 1

    def close(self) -> None:
        self.meta.release()
        self.mm.close()
        self.fd.close()


_HEAD = _perf.DATA_HEAD_OFFSET // 8
_TAIL = _perf.DATA_TAIL_OFFSET // 8


class PerfReader:
    """Per-CPU readers for a perf event array map.

    ``pages`` data pages per CPU (a power of two). Wakeup: by default the
    reader is woken for every sample (``wakeup_events=1``); pass
    ``wakeup_events=n`` to be woken every n samples, or ``watermark=bytes``
    to be woken when that many bytes are waiting (fewer wakeups, more
    throughput, but a record may wait in the ring until the threshold or a
    :meth:`poll` with ``timeout=0``).

    ``lost`` is the total of PERF_RECORD_LOST counts seen; ``on_lost`` (if
    given) is called with each :class:`LostRecords`.
    """

    def __init__(self, map: object, *, pages: int = 64, record_type: Any = None,
                 wakeup_events: int = 1, watermark: int = 0,
                 on_lost: Callable[[LostRecords], Any] | None = None,
                 cpus: list[int] | None = None):
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two, got {pages}")
        if watermark and watermark >= pages * _PAGE:
            raise ValueError(f"watermark {watermark} must be smaller than the ring ({pages * _PAGE} bytes)")
        fd = _fd_of(map)
        info = _map_info(fd)
        if info.type != _PERF_EVENT_ARRAY:
            raise InvalidArgument(errno.EINVAL, "PerfReader",
                                  f"map {info.name.decode() or fd} has type {info.type}, "
                                  f"not BPF_MAP_TYPE_PERF_EVENT_ARRAY ({_PERF_EVENT_ARRAY})")
        self._map_fd = os.dup(fd)
        self._decode = make_decoder(record_type)
        self.on_lost = on_lost
        self.lost = 0
        self.lost_per_cpu: dict[int, int] = {}
        self.closed = False
        self._rings: dict[int, _Ring] = {}
        self._epoll = select.epoll()
        try:
            for cpu in cpus if cpus is not None else online_cpus():
                if cpu >= info.max_entries:
                    raise InvalidArgument(errno.E2BIG, "PerfReader",
                                          f"CPU {cpu} does not fit the map's max_entries {info.max_entries}")
                attr = _perf.PerfEventAttr(type=_perf.PerfType.SOFTWARE,
                                           config=_perf.PerfSwId.BPF_OUTPUT,
                                           sample_type=_perf.SampleType.RAW, sample_period=1)
                if watermark:
                    attr.flags |= _perf.ATTR_WATERMARK
                    attr.wakeup_events = watermark
                else:
                    attr.wakeup_events = max(1, wakeup_events)
                ring = _Ring(cpu, _perf.open_event(attr, pid=-1, cpu=cpu,
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
        self._by_fd = {ring.fd.fd: ring for ring in self._rings.values()}

    @property
    def cpus(self) -> list[int]:
        return sorted(self._rings)

    # ---------------------------------------------------------------- read
    def _drain(self, ring: _Ring, out: Callable[[Any], Any], limit: int) -> int:
        meta, mm, decode = ring.meta, ring.mm, self._decode
        head = meta[_HEAD]
        tail = meta[_TAIL]
        base, size, mask, cpu = ring.data_off, ring.size, ring.mask, ring.cpu
        n = 0
        hdr_unpack, u32_unpack, sample = _HDR.unpack_from, _U32.unpack_from, _new_sample
        while tail < head and n < limit:
            off = tail & mask
            if off + 8 <= size:
                rtype, _misc, rsize = hdr_unpack(mm, base + off)
            else:
                rtype, _misc, rsize = _HDR.unpack(self._wrapped(ring, off, 8))
            if rsize < 8:
                raise BPFError(errno.EIO, "perf ring", f"corrupt record size {rsize} on CPU {cpu}")
            if off + rsize <= size:
                start = base + off + 8
                if rtype == _SAMPLE:
                    length = u32_unpack(mm, start)[0]
                    raw = mm[start + 4:start + 4 + length]
                    out(sample(Sample, (cpu, decode(raw) if decode else raw)))
                    n += 1
                elif rtype == _LOST_T:
                    self._lost(cpu, _LOST.unpack_from(mm, start)[1])
            else:
                body = self._wrapped(ring, off, rsize)[8:]
                if rtype == _SAMPLE:
                    length = _U32.unpack_from(body)[0]
                    raw = bytes(body[4:4 + length])
                    out(Sample(cpu, decode(raw) if decode else raw))
                    n += 1
                elif rtype == _LOST_T:
                    self._lost(cpu, _LOST.unpack_from(body)[1])
            tail += rsize
        meta[_TAIL] = tail  # hand the space back to the kernel
        return n

    @staticmethod
    def _wrapped(ring: _Ring, off: int, length: int) -> bytes:
        first = ring.size - off
        mm, base = ring.mm, ring.data_off
        return mm[base + off:base + ring.size] + mm[base:base + length - first]

    def _lost(self, cpu: int, count: int) -> None:
        self.lost += count
        self.lost_per_cpu[cpu] = self.lost_per_cpu.get(cpu, 0) + count
        if self.on_lost is not None:
            self.on_lost(LostRecords(cpu, count))

    def read_batch(self, max_records: int = 1 << 30) -> list[Sample]:
        """Every sample waiting in any CPU's ring, without blocking (per-CPU order kept)."""
        self._check()
        out: list[Sample] = []
        for ring in self._rings.values():
            self._drain(ring, out.append, max_records - len(out))
        return out

    def poll(self, callback: Callable[[Sample], Any], timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds for data, pass each :class:`Sample` to ``callback``.

        Returns how many samples were delivered; ``timeout=0`` only drains.
        """
        self._check()
        n = 0
        for ring in self._rings.values():
            n += self._drain(ring, callback, 1 << 30)
        if n or timeout == 0:
            return n
        for fd, _ in self._epoll.poll(-1 if timeout is None else timeout):
            n += self._drain(self._by_fd[fd], callback, 1 << 30)
        # Other rings may have become ready meanwhile; draining is cheap.
        for ring in self._rings.values():
            n += self._drain(ring, callback, 1 << 30)
        return n

    def __iter__(self) -> Iterator[Sample]:
        return self.iter()

    def iter(self, timeout: float | None = None) -> Iterator[Sample]:
        """Yield samples as they arrive; stops after ``timeout`` seconds with nothing new."""
        while not self.closed:
            batch = self.read_batch()
            if batch:
                yield from batch
                continue
            if not self._epoll.poll(-1 if timeout is None else timeout):
                batch = self.read_batch()  # a watermark may hold records back without a wakeup
                if not batch:
                    return
                yield from batch

    def consume_until(self, count: int, timeout: float) -> list[Sample]:
        """Collect samples until ``count`` arrived or ``timeout`` seconds passed in total."""
        out: list[Sample] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            for ring in self._rings.values():
                self._drain(ring, out.append, count - len(out))
            left = deadline - time.monotonic()
            if len(out) >= count or left <= 0:
                break
            self._epoll.poll(min(left, 0.05))
        return out

    # ------------------------------------------------------------ lifecycle
    def fileno(self) -> int:
        return self._epoll.fileno()

    def _check(self) -> None:
        if self.closed:
            raise BadFD(errno.EBADF, "PerfReader", "reader is closed")

    def close(self) -> None:
        if self.closed:
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
