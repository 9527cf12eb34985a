"""Reading a BPF_MAP_TYPE_RINGBUF from user space.

The map fd is mmapped twice, as the kernel lays it out (kernel/bpf/ringbuf.c):

* offset 0, one page, read-write: the consumer page; its first u64 is
  ``consumer_pos``, which we advance to give space back to producers;
* offset one page, read-only: the producer page (first u64 ``producer_pos``)
  followed by the data area, which the kernel maps *twice in a row*, so a
  record that wraps past the end is still contiguous in our mapping.

Each record starts with an 8-byte header: ``u32 len`` whose bit 31 (BUSY)
says the producer has reserved but not committed it and bit 30 (DISCARD)
says it was discarded, then ``u32 pg_off``. Records are 8-byte aligned.
We stop at the first busy record (later ones may be committed already, but
consumption is strictly in order) and skip discarded ones.

Positions are read and written through ``memoryview.cast("Q")`` so each is
one aligned 8-byte access, as the kernel's smp_load_acquire /
smp_store_release pair expects of the other side on x86-64 and arm64 TSO-like
access patterns of CPython (every access is a separate C call).
"""

from __future__ import annotations

import errno
import mmap
import os
import select
import struct
import time

try:
    # The C deque that collections re-exports, without collections' import cost.
    from _collections import deque
except ImportError:  # an interpreter without it
    from collections import deque

from pybpf.syscall import BadFD, InvalidArgument, fd_of
from pybpf.syscall.errors import expect_kind
from pybpf.syscall.map_cmds import map_get_info

from .records import make_decoder, record_format, row_maker

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator

__all__ = ["RingBuffer", "Record", "BUSY_BIT", "DISCARD_BIT", "HEADER_SIZE", "make_decoder", "row_maker", "record_format"]

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
HEADER_SIZE = 8
_LEN_MASK = ~(BUSY_BIT | DISCARD_BIT) & 0xFFFFFFFF
_RINGBUF = 27
_PAGE = mmap.PAGESIZE
# Records per bulk span: a bounded list keeps memory flat while a deep backlog is drained,
# and a callback that raises leaves at most this many decoded records to account for.
_CHUNK = 4096

Record = bytes  # a raw record is its payload bytes


# A committed, not-discarded header of a given payload size, as the native-order u32
# words that ``_len_words`` compares against.
_native_u32 = struct.Struct("=I").pack


def _bulk_decoder(record_type: Any):
    """(Struct over header+payload+padding, rows -> records function or None, payload size,
    stride) for struct-described record types, else None."""
    found = record_format(record_type)
    if found is None:
        return None
    make, fmt = found
    order = fmt[0] if fmt and fmt[0] in "<>!=" else ""
    if not order:
        return None  # native alignment would differ inside the combined format
    body = fmt[1:]
    size = struct.calcsize(fmt)
    stride = (size + HEADER_SIZE + 7) & ~7
    combined = struct.Struct(f"{order}{HEADER_SIZE}x{body}{stride - HEADER_SIZE - size}x")
    return combined, make, size, stride


class RingBuffer:
    """A consumer of one ring buffer map.

    ``RingBuffer(map)`` takes a map object (anything with ``fd``) or an fd.
    Use :meth:`poll` with a callback, iterate (:meth:`__iter__` blocks, use
    ``timeout``), or :meth:`read_batch` for a list. ``record_type`` decodes
    each record (see :func:`make_decoder`); otherwise records are ``bytes``.
    """

    def __init__(self, map: object, *, record_type: Any = None):
        self.closed = True  # until every resource below exists: close() and __del__ skip
        fd = fd_of(map, "a map")
        expect_kind(fd, "map", "RingBuffer")  # a program's info would pass for a map's
        info = map_get_info(fd)
        if info.type != _RINGBUF:
            raise InvalidArgument(errno.EINVAL, "RingBuffer",
                                  f"map {info.name.decode()!r} (id {info.id}, fd {fd}) has map_type "
                                  f"{info.type}, not BPF_MAP_TYPE_RINGBUF ({_RINGBUF})")
        # Validate record_type before taking an fd, two mappings and an epoll.
        self._decode = make_decoder(record_type)
        self._bulk = _bulk_decoder(record_type)
        self.size = info.max_entries
        self._mask = self.size - 1
        self.discarded = 0
        owned = []  # what to undo if a later step fails
        try:
            self._fd = os.dup(fd)  # our own reference: the reader outlives a closed map object
            owned.append(lambda: os.close(self._fd))
            self._consumer = mmap.mmap(self._fd, _PAGE, mmap.MAP_SHARED,
                                       mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
            owned.append(self._consumer.close)
            self._producer = mmap.mmap(self._fd, _PAGE + 2 * self.size, mmap.MAP_SHARED,
                                       mmap.PROT_READ, offset=_PAGE)
            owned.append(self._producer.close)
            self._epoll = select.epoll()
            owned.append(self._epoll.close)
            self._epoll.register(self._fd, select.EPOLLIN)
        except BaseException:
            for undo in reversed(owned):
                undo()
            raise
        self._cons_pos = memoryview(self._consumer).cast("Q")
        self._prod_pos = memoryview(self._producer).cast("Q")
        self._data = memoryview(self._producer)
        self._len_words = self._data.cast("I")  # headers: u32 at byte offset _PAGE + (pos & mask)
        self.closed = False

    # -------------------------------------------------------------- consume
    def _consume(self, limit: int, out: Callable[[Any], Any]) -> int:
        """Deliver up to ``limit`` committed records to ``out`` one at a time; returns how many.

        If ``out`` raises, that record counts as consumed and the ones after it stay in the
        ring for the next call (none is delivered twice).
        """
        cons_pos, prod_pos, words, data = self._cons_pos, self._prod_pos, self._len_words, self._data
        mask, base, decode = self._mask, _PAGE, self._decode
        cons = cons_pos[0]
        n = 0
        while n < limit:
            prod = prod_pos[0]
            progressed = busy = False
            while cons < prod and n < limit:
                hdr = base + (cons & mask)
                length = words[hdr >> 2]
                if length & BUSY_BIT:
                    busy = True  # reserved, not committed yet: consumption is in order
                    break
                progressed = True
                size = length & _LEN_MASK
                start = hdr + HEADER_SIZE
                cons += (size + HEADER_SIZE + 7) & ~7
                if length & DISCARD_BIT:
                    self.discarded += 1
                    continue
                raw = data[start:start + size].tobytes()
                try:
                    out(decode(raw) if decode else raw)
                except BaseException:
                    cons_pos[0] = cons
                    raise
                n += 1
            cons_pos[0] = cons  # give the space back once per pass (batched)
            if busy or not progressed:
                break
        return n

    def _span(self, limit: int) -> tuple[list, int, int] | None:
        """Fixed-size struct records decoded a span at a time: (records, consumer_pos, stride)
        for the committed, not discarded, records of the expected size that start at
        ``consumer_pos`` (up to ``limit``), or None if the first one is not such a record.

        Every header of the span is checked with one strided comparison (no per-record
        Python); the span ends before the first header that differs (busy, discarded or
        another size), which :meth:`_consume` then handles. ``consumer_pos`` is not
        advanced: the caller does it once the records are delivered.
        """
        unpacker, make, size, stride = self._bulk
        cons, prod = self._cons_pos[0], self._prod_pos[0]
        k = min((prod - cons) // stride, limit, self.size // stride)
        if k <= 0:
            return None
        start = _PAGE + (cons & self._mask)  # contiguous: the data area is mapped twice
        w0, step = start >> 2, stride >> 2
        have = self._len_words[w0:w0 + k * step:step].tobytes()
        want = _native_u32(size) * k
        if have != want:
            lo, hi = 0, k  # the first lo headers match, the first hi do not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if have[:4 * mid] == want[:4 * mid]:
                    lo = mid
                else:
                    hi = mid
            if not lo:
                return None
            k = lo
        rows = unpacker.iter_unpack(self._data[start:start + k * stride])
        return (list(make(rows)) if make else list(rows)), cons, stride

    def _drain(self, limit: int, on_batch: Callable[[list], Any] | None = None,
               callback: Callable[[Any], Any] | None = None) -> int:
        """Deliver up to ``limit`` records without waiting, to ``on_batch(records)`` a list
        at a time or to ``callback(record)`` one at a time; returns how many.

        A raising ``on_batch`` has consumed its list; a raising ``callback`` has consumed
        the records up to and including the one it raised on.
        """
        n = 0
        bulk = self._bulk is not None
        while n < limit:
            span = self._span(min(limit - n, _CHUNK)) if bulk else None
            if span is not None:
                records, cons, stride = span
                if on_batch is not None:
                    self._cons_pos[0] = cons + len(records) * stride
                    n += len(records)
                    on_batch(records)
                    continue
                it = iter(records)
                try:
                    deque(map(callback, it), 0)
                except BaseException:  # map took the raising record from ``it``: it is consumed
                    self._cons_pos[0] = cons + (len(records) - len(list(it))) * stride
                    raise
                self._cons_pos[0] = cons + len(records) * stride
                n += len(records)
                continue
            # One record the careful way (bulk: it breaks the span), or all of them (no bulk layout).
            step = min(limit - n, 1 if bulk else _CHUNK)
            if on_batch is not None:
                out: list = []
                got = self._consume(step, out.append)
                if got:
                    n += got
                    on_batch(out)
            else:
                got = self._consume(step, callback)
                n += got
            if not got:
                break
        return n

    def available(self) -> int:
        """Bytes produced but not yet consumed (including headers)."""
        self._check()
        return self._prod_pos[0] - self._cons_pos[0]

    def read_batch(self, max_records: int = 1 << 30) -> list:
        """All committed records now in the ring (up to ``max_records``), without waiting."""
        self._check()
        out: list = []
        self._drain(max_records, on_batch=out.extend)
        return out

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the kernel signals data (or ``timeout`` seconds pass); True if ready."""
        self._check()
        if self.available():
            return True
        return bool(self._epoll.poll(-1 if timeout is None else timeout))

    def _wait_and_drain(self, limit: int, timeout: float | None, **sink: Any) -> int:
        self._check()
        n = self._drain(limit, **sink)
        if n or timeout == 0:
            return n
        if self._epoll.poll(-1 if timeout is None else timeout):
            n = self._drain(limit, **sink)
        return n

    def poll(self, callback: Callable[[Any], Any], timeout: float | None = None,
             max_records: int = 1 << 30) -> int:
        """Wait up to ``timeout`` seconds for records, pass each to ``callback``; returns the count.

        ``timeout=0`` only drains what is there. If ``callback`` raises, the records
        after that one stay in the ring for the next call.
        """
        return self._wait_and_drain(max_records, timeout, callback=callback)

    def poll_batch(self, on_batch: Callable[[list], Any], timeout: float | None = None,
                   max_records: int = 1 << 30) -> int:
        """Like :meth:`poll`, but calls ``on_batch(records)`` with a list of decoded records
        at a time, in ring order: the fastest way to consume, as with
        :meth:`pybpf.perf.PerfReader.poll_batch` (which also passes the CPU: a ring
        buffer has one ring for all CPUs). Returns how many records were delivered."""
        return self._wait_and_drain(max_records, timeout, on_batch=on_batch)

    def __iter__(self) -> Iterator[Any]:
        return self.iter()

    def iter(self, timeout: float | None = None, batch: int = 4096) -> Iterator[Any]:
        """Yield records as they arrive; stops after ``timeout`` seconds with nothing new,
        or when the reader is closed meanwhile (iterating a closed one is an error)."""
        self._check()
        while not self.closed:
            records = self.read_batch(batch)
            if records:
                yield from records
                continue
            if not self._epoll.poll(-1 if timeout is None else timeout) and not self.available():
                return

    def consume_until(self, count: int, timeout: float, callback: Callable[[Any], Any] | None = None
                      ) -> list:
        """Collect records until ``count`` arrived or ``timeout`` seconds passed in total."""
        self._check()
        out: list = []
        sink = callback or out.append
        got = 0
        deadline = time.monotonic() + timeout
        while got < count:
            got += self._drain(count - got, callback=sink)
            if got >= count:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._epoll.poll(min(left, 0.1))
        return out

    # ------------------------------------------------------------ lifecycle
    def fileno(self) -> int:
        """The epoll fd: becomes readable when records are available (for select loops)."""
        self._check()
        return self._epoll.fileno()

    def _check(self) -> None:
        if self.closed:
            raise BadFD(errno.EBADF, "RingBuffer", "reader is closed")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for view in (self._cons_pos, self._prod_pos, self._len_words, self._data):
            view.release()
        self._consumer.close()
        self._producer.close()
        self._epoll.close()
        os.close(self._fd)

    def __enter__(self) -> "RingBuffer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
