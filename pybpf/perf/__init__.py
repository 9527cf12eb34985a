"""Perf event array reader: a mmapped ring per CPU, epoll, lost-record accounting.

``PerfReader.poll(callback)`` delivers one :class:`Sample` at a time;
``poll_batch(on_batch)`` and ``read_batch()`` deliver a ring's records at a
time, decoded in bulk (see :mod:`pybpf.perf.ring`).
"""

from pybpf._lazy import lazy_exports

from .reader import LostRecords, PerfReader, online_cpus

__all__ = ["PerfReader", "Sample", "LostRecords", "online_cpus"]

# Sample is a namedtuple created on first use: see pybpf.perf.reader.__getattr__.
__getattr__, __dir__ = lazy_exports(__name__, globals(), {"Sample": ".reader"})
