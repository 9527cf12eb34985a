"""Memory-mapped BPF_F_MMAPABLE arrays: element reads and writes without syscalls.

The kernel lays the values out back to back, each rounded up to 8 bytes,
starting at the first mapped page, so element ``i`` is at ``i * round8(value_size)``.
Programs and user space see the same memory.
"""

from __future__ import annotations

import mmap as _mmap

from .cpus import round8
from .types import MapFlags, MapType

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Iterator
    from .map import Map

__all__ = ["ArrayView"]


class ArrayView:
    """A sequence view of an mmapable array map; ``buffer`` is the raw memoryview."""

    def __init__(self, m: Map, writable: bool = True):
        if m.type != MapType.ARRAY or not m.flags & MapFlags.MMAPABLE:
            raise TypeError(f"{m._ctx}: only ARRAY maps created with BPF_F_MMAPABLE can be "
                            f"memory-mapped")
        self.stride = round8(m.value_size)
        self.value_size = m.value_size
        self._len = m.max_entries
        self._layout = m._vlayout
        size = self.stride * m.max_entries
        length = -(-size // _mmap.PAGESIZE) * _mmap.PAGESIZE
        prot = _mmap.PROT_READ | (_mmap.PROT_WRITE if writable else 0)
        try:
            self._mmap = _mmap.mmap(m.fd, length, _mmap.MAP_SHARED, prot)
        except PermissionError as err:
            raise PermissionError(err.errno, f"{m._ctx}: mmap refused ({err.strerror}); a frozen "
                                  f"map can only be mapped read-only (writable=False)") from None
        self.buffer = memoryview(self._mmap)[:size]
        if not writable:
            self.buffer = self.buffer.toreadonly()

    def _slice(self, index: int) -> memoryview:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"array index {index} out of range (max_entries {self._len})")
        off = index * self.stride
        return self.buffer[off:off + self.value_size]

    def __getitem__(self, index: int):
        return self._layout.decode(self._slice(index))

    def __setitem__(self, index: int, value) -> None:
        self._slice(index)[:] = self._layout.encode(value)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator:
        return iter(self._layout.decode_many(self.buffer, self._len, self.stride))

    def tolist(self) -> list:
        return self._layout.decode_many(self.buffer, self._len, self.stride)

    def close(self) -> None:
        if self._mmap is not None:
            self.buffer.release()
            self._mmap.close()
            self._mmap = None

    def __enter__(self) -> ArrayView:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
