"""Attach points: one small module per kind, each returning a :class:`Link`.

Every attachment has ``detach()``/``close()``, works as a context manager,
is undone by a finalizer when dropped, and is registered with
:mod:`pybpf.link.cleanup` so that normal exit, exceptions and SIGINT/SIGTERM
leave nothing attached (tracefs probe events and netlink attachments too).
"""

from pybpf.program.types import AttachType, LinkType

from . import cleanup
from .base import FDLink, Link, link_ids, link_infos
from .cgroup import CgroupAttachment, CgroupLink, attach_cgroup
from .fentry import TracingLink, attach_tracing, load_tracing, lockdown_mode
from .kprobe import KprobeLink, attach_kprobe, attach_kretprobe, kprobes_supported
from .perf_event import PerfEventLink, attach_perf_event
from .raw_tracepoint import RawTracepointLink, attach_raw_tracepoint, attach_tp_btf, tp_btf_id
from .socket_filter import SocketFilterAttachment, attach_socket_filter
from .tc import TCFilterAttachment, TCXLink, attach_tc, tc_filters
from .tracepoint import TracepointLink, attach_tracepoint
from .uprobe import UprobeLink, attach_uprobe, attach_uretprobe
from .xdp import XDPFlags, XDPLink, XDPNetlinkAttachment, attach_xdp, xdp_prog_id

__all__ = [
    "Link", "FDLink", "cleanup", "AttachType", "LinkType", "link_ids", "link_infos",
    "attach_tracepoint", "TracepointLink", "attach_raw_tracepoint", "attach_tp_btf", "tp_btf_id",
    "RawTracepointLink", "attach_kprobe", "attach_kretprobe", "kprobes_supported", "KprobeLink",
    "attach_uprobe", "attach_uretprobe", "UprobeLink", "load_tracing", "attach_tracing",
    "lockdown_mode", "TracingLink", "attach_xdp", "xdp_prog_id", "XDPFlags", "XDPLink",
    "XDPNetlinkAttachment", "attach_tc", "tc_filters", "TCXLink", "TCFilterAttachment",
    "attach_socket_filter", "SocketFilterAttachment", "attach_cgroup", "CgroupLink",
    "CgroupAttachment", "attach_perf_event", "PerfEventLink",
]
