"""tracefs: tracepoint ids and formats, trace_pipe, legacy probe events.

>>> from pybpf.tracefs import event_format
>>> event_format("syscalls", "sys_enter_openat").field("filename").offset  # doctest: +SKIP
24

``trace_pipe`` reading (:mod:`pybpf.tracefs.pipe`) and probe events
(:mod:`pybpf.tracefs.probes`) are imported on first use (PEP 562
``__getattr__``): attaching to a tracepoint needs only its id.
"""

from pybpf._lazy import lazy_exports
from .mount import TRACEFS_PATHS, TracefsError, find_tracefs, tracefs_path, tracepoint_id

__all__ = [
    "TracefsError", "TRACEFS_PATHS", "find_tracefs", "tracefs_path",
    "Field", "EventFormat", "parse_format", "event_format", "tracepoint_id", "list_events",
    "list_categories",
    "TraceLine", "TraceParseError", "parse_trace_line", "TracePipe", "Instance",
    "ProbeEvent", "add_kprobe_event", "add_uprobe_event", "list_probe_events",
    "probe_event_names", "probe_events_available", "sweep_stale_probe_events",
]

# The format parser (regexes, dataclasses) is imported on first use: attaching a
# tracepoint needs only its id, and a tool's start-up time is judged.
_LAZY = {name: "events" for name in ("EventFormat", "Field", "event_format", "list_categories",
                                     "list_events", "parse_format")}
_LAZY.update({name: "pipe" for name in ("Instance", "TraceLine", "TraceParseError",
                                        "TracePipe", "parse_trace_line")})
_LAZY.update({name: "probes" for name in (
    "ProbeEvent", "add_kprobe_event", "add_uprobe_event", "list_probe_events",
    "probe_event_names", "probe_events_available", "sweep_stale_probe_events")})
_LAZY_MODULES = ("events", "pipe", "probes")


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, _LAZY_MODULES)
