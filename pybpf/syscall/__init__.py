"""ctypes bindings for bpf(2) and perf_event_open(2): one small wrapper per command.

Raw layer only: callers pass and get plain ints, bytes and ctypes buffers.
Objects with lifetimes (maps, programs, links) live in the packages above.
"""

from .bpf import Cmd, bpf, perf_event_open
from .errors import (BadFD, BPFError, BPFPermissionError, Busy, InvalidArgument, KeyExists,
                     KeyNotFound, MapFull, NotSupported, error_for)
from .fd import FD

__all__ = [
    "Cmd", "bpf", "perf_event_open", "FD", "BPFError", "NotSupported", "BPFPermissionError",
    "KeyNotFound", "KeyExists", "MapFull", "InvalidArgument", "BadFD", "Busy", "error_for",
]
