"""One CPU's perf ring buffer: the mmap, and the bytes between data_tail and data_head as records.

Layout (include/uapi/linux/perf_event.h): one metadata page (``struct
perf_event_mmap_page``; ``data_head`` is written by the kernel, ``data_tail``
by us) followed by a power-of-two data area. Each record is a ``struct
perf_event_header`` (``u32 type; u16 misc; u16 size``) and its body, 8-byte
aligned. A ``PERF_RECORD_SAMPLE`` with only ``PERF_SAMPLE_RAW`` is
``u32 size`` + the raw data, padded by the kernel so the whole is a multiple of
8; a ``PERF_RECORD_LOST`` is ``u64 id; u64 lost``.

Why the bulk path: a Python loop over records costs ~0.7 µs each, which is
slower than BCC's C reader. But a BPF program nearly always emits one fixed
record size, so the ring is long runs of identical-size samples. For a run we
check every header with two strided memoryview comparisons (types and sizes,
no per-record Python), then decode the whole run with one
``struct.iter_unpack`` over its bytes, or slice each payload in one list
comprehension. Only records that break the run (a PERF_RECORD_LOST, a
different size, or one straddling the end of the data area, which is not
double-mapped like a BPF ring buffer's) go through the per-record path.

Memory ordering: ``data_head`` is read once per drain with one aligned 8-byte
load (the kernel's smp_store_release of data_head pairs with it; on x86-64
loads are not reordered with later loads), and ``data_tail`` is written once
after all the records before it were copied out, as the kernel expects
(it reads data_tail before overwriting space).
"""

from __future__ import annotations

import errno
import mmap
import struct

try:
    # The C itemgetter that operator re-exports, without operator.py's import cost.
    from _operator import itemgetter
except ImportError:  # an interpreter without it
    from operator import itemgetter

from pybpf._record import Record
from pybpf.syscall import FD, BPFError
from pybpf.syscall import perf as _perf

TYPE_CHECKING = False  # typing is not imported at run time: see pybpf._record
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

__all__ = ["Ring", "BulkLayout", "bulk_layout", "HEADER_SIZE", "RAW_OFFSET"]

_PAGE = mmap.PAGESIZE
HEADER_SIZE = 8  # struct perf_event_header
RAW_OFFSET = HEADER_SIZE + 4  # a PERF_SAMPLE_RAW payload starts after the header and its u32 size
_SAMPLE = int(_perf.RecordType.SAMPLE)
_LOST = int(_perf.RecordType.LOST)
_HEAD = _perf.DATA_HEAD_OFFSET // 8
_TAIL = _perf.DATA_TAIL_OFFSET // 8
_U32 = struct.Struct("=I")
_LOST_BODY = struct.Struct("=QQ")
_SAMPLE_U32 = _U32.pack(_SAMPLE)


def sample_stride(payload: int) -> int:
    """Record size of a PERF_SAMPLE_RAW sample whose program wrote ``payload`` bytes."""
    return HEADER_SIZE + ((4 + payload + 7) & ~7)


class BulkLayout(Record):
    """How to decode a run of ``stride``-byte samples with one ``iter_unpack``.

    ``unpacker`` spans a whole record (header and padding as pad bytes) so its
    rows are exactly the payload's fields; ``make_rows`` turns an iterable of
    rows into the record type (None: plain tuples), for a stock namedtuple
    with no Python frame per record (see :func:`pybpf.ringbuf.records.row_maker`).
    """

    __slots__ = ("unpacker", "make_rows", "stride")
    unpacker: struct.Struct
    make_rows: Callable[[Iterable[tuple]], Iterable[Any]] | None
    stride: int

    def __init__(self, unpacker: struct.Struct,
                 make_rows: Callable[[Iterable[tuple]], Iterable[Any]] | None, stride: int):
        self._assign(unpacker=unpacker, make_rows=make_rows, stride=stride)


def bulk_layout(record_type: Any) -> BulkLayout | None:
    """A :class:`BulkLayout` for struct-described record types (the forms ``make_decoder``
    accepts), or None. Formats need an explicit byte order (``<``, ``>``, ``!``, ``=``):
    with native alignment, fields after the 12-byte prefix would be padded differently."""
    if record_type is None:  # raw bytes (what the tools read): no record decoding imported
        return None
    from pybpf.ringbuf.records import record_format
    found = record_format(record_type)
    if found is None:
        return None
    make, fmt = found
    if not fmt or fmt[0] not in "<>!=":
        return None
    size = struct.calcsize(fmt)
    stride = sample_stride(size)
    unpacker = struct.Struct(f"{fmt[0]}{RAW_OFFSET}x{fmt[1:]}{stride - RAW_OFFSET - size}x")
    return BulkLayout(unpacker, make, stride)


class Ring:
    """One CPU's perf event fd and its mmapped ring; :meth:`read` consumes records."""

    __slots__ = ("cpu", "fd", "mm", "meta", "data", "words", "halves", "base", "size", "mask", "tail")

    def __init__(self, cpu: int, mm: mmap.mmap, pages: int, fd: FD | None = None):
        """Read the ring laid out in ``mm`` (a metadata page and ``pages`` data pages).

        :meth:`open` maps a perf event fd; tests pass an anonymous mmap laid out the same way.
        """
        self.cpu = cpu
        self.fd = fd
        self.mm = mm
        self.meta = memoryview(self.mm).cast("Q")
        off = _perf.PerfMmapPage.data_offset.offset // 8
        self.base = self.meta[off] or _PAGE
        self.size = self.meta[off + 1] or _PAGE * pages
        self.mask = self.size - 1
        self.data = memoryview(self.mm)
        self.words = self.data.cast("I")  # record types: u32 at byte offset base + (pos & mask)
        self.halves = self.data.cast("H")  # record sizes: u16 at byte offset base + (pos & mask) + 6
        self.tail = self.meta[_TAIL]  # only we write data_tail: keep our own copy

    @classmethod
    def open(cls, cpu: int, fd: FD, pages: int) -> "Ring":
        """mmap perf event ``fd`` (which the ring then owns, even if mapping fails)."""
        try:
            mm = mmap.mmap(fd.fd, _PAGE * (1 + pages), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            fd.close()
            raise
        return cls(cpu, mm, pages, fd)

    def available(self) -> int:
        """Bytes the kernel has written that we have not consumed."""
        return self.meta[_HEAD] - self.tail

    def read(self, limit: int, decode: Callable[[bytes], Any] | None,
             bulk: BulkLayout | None) -> tuple[list, list[int]]:
        """Consume up to ``limit`` samples: (their decoded payloads in ring order, the counts
        of the PERF_RECORD_LOST records met). Other record types are skipped.

        ``data_tail`` advances past everything consumed, once, and only if nothing
        raised (a raising ``decode`` leaves the ring as it was: nothing lost, nothing
        counted twice).
        """
        head = self.meta[_HEAD]
        tail = self.tail
        out: list = []
        losses: list[int] = []
        if tail >= head or limit <= 0:
            return out, losses
        words, halves, mm = self.words, self.halves, self.mm
        base, size, mask = self.base, self.size, self.mask
        n = 0
        while tail < head and n < limit:
            off = tail & mask
            start = base + off  # headers never wrap: records are 8-aligned, size is a multiple of 8
            rtype = words[start >> 2]
            rsize = halves[(start >> 1) + 3]
            if rsize < HEADER_SIZE or rsize & 7 or rsize > head - tail:
                raise BPFError(errno.EIO, "perf ring",
                               f"corrupt record (type {rtype}, size {rsize}) on CPU {self.cpu} "
                               f"at data_tail {tail}, data_head {head}")
            if rtype == _SAMPLE:
                k = min((head - tail) // rsize, (size - off) // rsize, limit - n)
                if k:
                    k = self._run_length(start, rsize, k)
                    end = start + k * rsize
                    if bulk is not None and bulk.stride == rsize:
                        rows = bulk.unpacker.iter_unpack(self.data[start:end])
                        out.extend(bulk.make_rows(rows) if bulk.make_rows is not None else rows)
                    else:  # the payloads as bytes, sliced by iter_unpack (no bytecode per record)
                        raws = map(_first, _slicer(rsize, words[(start >> 2) + 2]).iter_unpack(
                            self.data[start:end]))
                        out.extend(map(decode, raws) if decode is not None else raws)
                    tail += k * rsize
                    n += k
                    continue
            # One record the careful way: it straddles the end of the data area, or is not a sample.
            if off + rsize <= size:
                body = mm[start + HEADER_SIZE:start + rsize]
            else:
                body = mm[start + HEADER_SIZE:base + size] + mm[base:base + rsize - (size - off)]
            if rtype == _SAMPLE:
                length = _U32.unpack_from(body)[0]
                raw = body[4:4 + length]
                out.append(decode(raw) if decode is not None else raw)
                n += 1
            elif rtype == _LOST:
                losses.append(_LOST_BODY.unpack_from(body)[1])
            tail += rsize
        self.tail = tail
        self.meta[_TAIL] = tail  # hand the space back to the kernel, once per drain
        return out, losses

    def _run_length(self, start: int, rsize: int, k: int) -> int:
        """How many of the ``k`` records from byte ``start`` are samples of ``rsize`` bytes
        (the first one is known to be)."""
        if k == 1:
            return 1
        w0, h0 = start >> 2, (start >> 1) + 3
        types = self.words[w0:w0 + k * (rsize >> 2):rsize >> 2].tobytes()
        sizes = self.halves[h0:h0 + k * (rsize >> 1):rsize >> 1].tobytes()
        want_t, want_s = _SAMPLE_U32 * k, _u16(rsize) * k
        if types == want_t and sizes == want_s:
            return k
        lo, hi = 1, k  # the first lo records match, the first hi do not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if types[:4 * mid] == want_t[:4 * mid] and sizes[:2 * mid] == want_s[:2 * mid]:
                lo = mid
            else:
                hi = mid
        return lo

    def close(self) -> None:
        for view in (self.meta, self.words, self.halves, self.data):
            view.release()
        self.mm.close()
        if self.fd is not None:
            self.fd.close()


_first = itemgetter(0)


def _slicer(rsize: int, length: int, _cache: dict = {}) -> struct.Struct:
    """A Struct whose rows are 1-tuples holding one ``rsize``-byte sample's raw payload.

    Every sample of one size has the same raw size: with only PERF_SAMPLE_RAW
    the kernel pads ``u32 size`` + data to 8 bytes and says so in the size."""
    st = _cache.get((rsize, length))
    if st is None:
        if length > rsize - RAW_OFFSET:
            raise BPFError(errno.EIO, "perf ring", f"sample of {rsize} bytes claims {length} bytes of raw data")
        st = _cache[rsize, length] = struct.Struct(f"={RAW_OFFSET}x{length}s{rsize - RAW_OFFSET - length}x")
    return st


def _u16(value: int, _cache: dict = {}) -> bytes:
    b = _cache.get(value)
    if b is None:
        b = _cache[value] = struct.pack("=H", value)
    return b
