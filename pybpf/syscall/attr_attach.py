"""ctypes layouts for commands on attachments: ``struct bpf_link_info`` and the
``union bpf_attr`` members of BPF_PROG_ATTACH/DETACH, BPF_PROG_QUERY, BPF_LINK_UPDATE,
BPF_LINK_DETACH and BPF_RAW_TRACEPOINT_OPEN.

Apart from :mod:`pybpf.syscall.attr_prog` because every tool's start-up imports
that one (load a program, create a link) and needs none of these. Facts copied
from include/uapi/linux/bpf.h (Linux 6.18), as there.
"""

from __future__ import annotations

import ctypes

__all__ = ["LinkInfo", "ProgAttachAttr", "ProgQueryAttr", "LinkUpdateAttr", "LinkDetachAttr",
           "RawTracepointOpenAttr"]

u8, u32, s32, u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64


class _LinkRawTracepoint(ctypes.Structure):
    _fields_ = [("tp_name", u64), ("tp_name_len", u32)]


class _LinkTracing(ctypes.Structure):
    _fields_ = [("attach_type", u32), ("target_obj_id", u32), ("target_btf_id", u32)]


class _LinkCgroup(ctypes.Structure):
    _fields_ = [("cgroup_id", u64), ("attach_type", u32)]


class _LinkNetns(ctypes.Structure):
    _fields_ = [("netns_ino", u32), ("attach_type", u32)]


class _LinkIfindex(ctypes.Structure):
    """xdp (ifindex only), tcx and netkit (ifindex, attach_type)."""

    _fields_ = [("ifindex", u32), ("attach_type", u32)]


class _LinkPerfEvent(ctypes.Structure):
    """perf_event: ``type`` (enum bpf_perf_event_type), then a per-type union left raw."""

    _fields_ = [("type", u32), ("_pad", u32), ("raw", u8 * 48)]


class _LinkMapId(ctypes.Structure):
    """struct_ops (map_id) and sockmap (map_id, attach_type)."""

    _fields_ = [("map_id", u32), ("attach_type", u32)]


class _LinkNetfilter(ctypes.Structure):
    _fields_ = [("pf", u32), ("hooknum", u32), ("priority", s32), ("flags", u32)]


class _LinkUnion(ctypes.Union):
    _fields_ = [
        ("raw_tracepoint", _LinkRawTracepoint),
        ("tracing", _LinkTracing),
        ("cgroup", _LinkCgroup),
        ("netns", _LinkNetns),
        ("xdp", _LinkIfindex),
        ("tcx", _LinkIfindex),
        ("netkit", _LinkIfindex),
        ("perf_event", _LinkPerfEvent),
        ("struct_ops", _LinkMapId),
        ("sockmap", _LinkMapId),
        ("netfilter", _LinkNetfilter),
        ("raw", u64 * 8),
    ]


class LinkInfo(ctypes.Structure):
    """struct bpf_link_info (the union is 64 bytes here; the kernel copies what it knows)."""

    _fields_ = [("type", u32), ("id", u32), ("prog_id", u32), ("_pad", u32), ("u", _LinkUnion)]


class ProgAttachAttr(ctypes.Structure):
    """BPF_PROG_ATTACH / BPF_PROG_DETACH."""

    _fields_ = [
        ("target_fd", u32),  # union with target_ifindex
        ("attach_bpf_fd", u32),
        ("attach_type", u32),
        ("attach_flags", u32),
        ("replace_bpf_fd", u32),
        ("relative_fd", u32),  # union with relative_id
        ("expected_revision", u64),
    ]


class ProgQueryAttr(ctypes.Structure):
    """BPF_PROG_QUERY (``query``)."""

    _fields_ = [
        ("target_fd", u32),  # union with target_ifindex
        ("attach_type", u32),
        ("query_flags", u32),
        ("attach_flags", u32),
        ("prog_ids", u64),
        ("prog_cnt", u32),  # union with count
        ("_pad", u32),
        ("prog_attach_flags", u64),
        ("link_ids", u64),
        ("link_attach_flags", u64),
        ("revision", u64),
    ]


class LinkUpdateAttr(ctypes.Structure):
    """BPF_LINK_UPDATE (``new_prog_fd`` is ``new_map_fd`` for struct_ops links)."""

    _fields_ = [("link_fd", u32), ("new_prog_fd", u32), ("flags", u32), ("old_prog_fd", u32)]


class LinkDetachAttr(ctypes.Structure):
    """BPF_LINK_DETACH."""

    _fields_ = [("link_fd", u32)]


class RawTracepointOpenAttr(ctypes.Structure):
    """BPF_RAW_TRACEPOINT_OPEN."""

    _fields_ = [("name", u64), ("prog_fd", u32), ("_pad", u32), ("cookie", u64)]
