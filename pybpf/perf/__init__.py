"""Perf event array reader: a mmapped ring per CPU, epoll, lost-record accounting."""

from .reader import LostRecords, PerfReader, Sample, online_cpus

__all__ = ["PerfReader", "Sample", "LostRecords", "online_cpus"]
