"""Attach points: one small module per kind, each returning a :class:`Link`.

Every attachment has ``detach()``/``close()``, works as a context manager,
is undone by a finalizer when dropped, and is registered with
:mod:`pybpf.link.cleanup` so that normal exit, exceptions and SIGINT/SIGTERM
leave nothing attached (tracefs probe events and netlink attachments too).
"""

from pybpf._lazy import lazy_exports

from . import cleanup

# Public name -> submodule that defines it. Submodules load on first use, so a
# tool attaching a tracepoint does not import netlink, ELF or BTF code.
_EXPORTS = {
    "AttachType": "pybpf.program.types", "LinkType": "pybpf.program.types",
    "FDLink": ".base", "Link": ".base", "link_ids": ".base", "link_infos": ".base",
    "CgroupAttachment": ".cgroup", "CgroupLink": ".cgroup", "attach_cgroup": ".cgroup",
    "TracingLink": ".fentry", "attach_tracing": ".fentry", "load_tracing": ".fentry",
    "lockdown_mode": ".fentry",
    "KprobeLink": ".kprobe", "attach_kprobe": ".kprobe", "attach_kretprobe": ".kprobe",
    "kprobes_supported": ".kprobe",
    "PerfEventLink": ".perf_event", "attach_perf_event": ".perf_event",
    "RawTracepointLink": ".raw_tracepoint", "attach_raw_tracepoint": ".raw_tracepoint",
    "attach_tp_btf": ".raw_tracepoint", "tp_btf_id": ".raw_tracepoint",
    "SocketFilterAttachment": ".socket_filter", "attach_socket_filter": ".socket_filter",
    "TCFilterAttachment": ".tc", "TCXLink": ".tc", "attach_tc": ".tc", "tc_filters": ".tc",
    "TracepointLink": ".tracepoint", "attach_tracepoint": ".tracepoint",
    "UprobeLink": ".uprobe", "attach_uprobe": ".uprobe", "attach_uretprobe": ".uprobe",
    "XDPFlags": ".xdp", "XDPLink": ".xdp", "XDPNetlinkAttachment": ".xdp", "attach_xdp": ".xdp",
    "xdp_prog_id": ".xdp",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


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
