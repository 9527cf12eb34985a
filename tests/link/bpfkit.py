"""The old helper names bench/event_throughput.py imports, on the real packages.

Until that benchmark is ported (its owner is editing it), ``KMap`` is a
:class:`pybpf.maps.Map` and ``load`` a ``Program.load(..., verify=False)``.
New code uses ``pybpf.maps`` / ``pybpf.program`` directly and the programs of
:mod:`attachkit`.
"""

from __future__ import annotations

import struct

from attachkit import seq_producer  # noqa: F401 (re-exported)
from pybpf.maps import Map, MapSpec, MapType
from pybpf.program import Program, ProgramSpec, ProgType

TRACEPOINT = ProgType.TRACEPOINT
ARRAY, PERF_EVENT_ARRAY, RINGBUF = MapType.ARRAY, MapType.PERF_EVENT_ARRAY, MapType.RINGBUF


class KMap(Map):
    """``KMap(map_type, key_size, value_size, max_entries)`` with u32 keys and u64 lookups."""

    def __init__(self, map_type: int, key_size: int, value_size: int, max_entries: int,
                 flags: int = 0):
        super().__init__(MapSpec(map_type, key_size, value_size, max_entries, flags,
                                 key="I" if key_size == 4 else None))

    def lookup_u64(self, key: int) -> int:
        return struct.unpack_from("<Q", self.lookup(key))[0]


def load(prog_type: int, b, **spec) -> Program:
    return Program.load(ProgramSpec(b, prog_type, **spec), verify=False)
