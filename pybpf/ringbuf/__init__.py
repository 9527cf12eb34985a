"""Ring buffer (BPF_MAP_TYPE_RINGBUF) reader: mmap, epoll, callbacks and iterators."""

from .reader import BUSY_BIT, DISCARD_BIT, HEADER_SIZE, RingBuffer, make_decoder

__all__ = ["RingBuffer", "make_decoder", "BUSY_BIT", "DISCARD_BIT", "HEADER_SIZE"]
