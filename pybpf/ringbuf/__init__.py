"""Ring buffer (BPF_MAP_TYPE_RINGBUF) reader: mmap, epoll, callbacks and iterators.

The reader is imported on first use (PEP 562 ``__getattr__``): the perf event
reader shares only the record decoding (:mod:`pybpf.ringbuf.records`), and a
tool that reads a perf buffer should not pay for the ring buffer reader.
"""

from pybpf._lazy import lazy_exports

from .records import make_decoder, record_format, row_maker

__all__ = ["RingBuffer", "make_decoder", "row_maker", "record_format", "BUSY_BIT",
           "DISCARD_BIT", "HEADER_SIZE"]

_LAZY = {"RingBuffer": "reader", "BUSY_BIT": "reader", "DISCARD_BIT": "reader",
         "HEADER_SIZE": "reader"}
_LAZY_MODULES = ("reader",)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, _LAZY_MODULES)
