"""Perf event array reader: a mmapped ring per CPU, epoll, lost-record accounting.

``PerfReader.poll(callback)`` delivers one :class:`Sample` at a time;
``poll_batch(on_batch)`` and ``read_batch()`` deliver a ring's records at a
time, decoded in bulk (see :mod:`pybpf.perf.ring`).
"""

from .reader import LostRecords, PerfReader, Sample, online_cpus

__all__ = ["PerfReader", "Sample", "LostRecords", "online_cpus"]
