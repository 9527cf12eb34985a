"""ctypes layouts of the ``union bpf_attr`` members for loading programs and BTF,
creating links (BPF_LINK_CREATE), and of ``struct bpf_prog_info``.

The attrs of commands on existing attachments (attach, query, update,
detach, link info) are in :mod:`pybpf.syscall.attr_attach`: a ctypes
structure costs its creation at import, and a tool's start-up, which loads a
program and creates a link, needs none of them.

Facts copied from include/uapi/linux/bpf.h (Linux 6.18). Each structure is the
anonymous struct of one command; the kernel accepts a shorter or longer attr
as long as unknown trailing bytes are zero, so new fields can be appended.
``__aligned_u64`` is ``c_uint64`` (8-byte aligned on every supported ABI).
"""

from __future__ import annotations

import ctypes

__all__ = [
    "ProgLoadAttr", "TestRunAttr", "BtfLoadAttr", "InfoAttr", "ProgInfo", "LinkCreateAttr",
    "BPF_OBJ_NAME_LEN", "BPF_TAG_SIZE", "ProgFlags", "TestRunFlags", "AttachFlags",
]

u8, u32, s32, u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64

BPF_OBJ_NAME_LEN = 16
BPF_TAG_SIZE = 8


class ProgFlags:
    """``prog_flags`` bits of BPF_PROG_LOAD."""

    STRICT_ALIGNMENT = 1 << 0
    ANY_ALIGNMENT = 1 << 1
    TEST_RND_HI32 = 1 << 2
    TEST_STATE_FREQ = 1 << 3
    SLEEPABLE = 1 << 4
    XDP_HAS_FRAGS = 1 << 5
    XDP_DEV_BOUND_ONLY = 1 << 6
    TEST_REG_INVARIANTS = 1 << 7
    TOKEN_FD = 1 << 16


class TestRunFlags:
    """``flags`` of BPF_PROG_TEST_RUN."""

    __test__ = False  # not a pytest class
    RUN_ON_CPU = 1 << 0
    XDP_LIVE_FRAMES = 1 << 1
    SKB_CHECKSUM_COMPLETE = 1 << 2


class AttachFlags:
    """``attach_flags`` of BPF_PROG_ATTACH and ``flags`` of BPF_LINK_CREATE (mprog)."""

    ALLOW_OVERRIDE = 1 << 0
    ALLOW_MULTI = 1 << 1
    REPLACE = 1 << 2
    BEFORE = 1 << 3
    AFTER = 1 << 4
    ID = 1 << 5
    LINK = 1 << 13
    QUERY_EFFECTIVE = 1 << 0  # query_flags of BPF_PROG_QUERY


class ProgLoadAttr(ctypes.Structure):
    """BPF_PROG_LOAD."""

    _fields_ = [
        ("prog_type", u32),
        ("insn_cnt", u32),
        ("insns", u64),
        ("license", u64),
        ("log_level", u32),
        ("log_size", u32),
        ("log_buf", u64),
        ("kern_version", u32),
        ("prog_flags", u32),
        ("prog_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", u32),
        ("expected_attach_type", u32),
        ("prog_btf_fd", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("func_info_cnt", u32),
        ("line_info_rec_size", u32),
        ("line_info", u64),
        ("line_info_cnt", u32),
        ("attach_btf_id", u32),
        ("attach_prog_fd", u32),  # union with attach_btf_obj_fd
        ("core_relo_cnt", u32),
        ("fd_array", u64),
        ("core_relos", u64),
        ("core_relo_rec_size", u32),
        ("log_true_size", u32),
        ("prog_token_fd", s32),
        ("fd_array_cnt", u32),
    ]


class TestRunAttr(ctypes.Structure):
    """BPF_PROG_TEST_RUN (``test``)."""

    __test__ = False
    _fields_ = [
        ("prog_fd", u32),
        ("retval", u32),
        ("data_size_in", u32),
        ("data_size_out", u32),
        ("data_in", u64),
        ("data_out", u64),
        ("repeat", u32),
        ("duration", u32),
        ("ctx_size_in", u32),
        ("ctx_size_out", u32),
        ("ctx_in", u64),
        ("ctx_out", u64),
        ("flags", u32),
        ("cpu", u32),
        ("batch_size", u32),
    ]


class BtfLoadAttr(ctypes.Structure):
    """BPF_BTF_LOAD."""

    _fields_ = [
        ("btf", u64),
        ("btf_log_buf", u64),
        ("btf_size", u32),
        ("btf_log_size", u32),
        ("btf_log_level", u32),
        ("btf_log_true_size", u32),
        ("btf_flags", u32),
        ("btf_token_fd", s32),
    ]


class InfoAttr(ctypes.Structure):
    """BPF_OBJ_GET_INFO_BY_FD (``info``)."""

    _fields_ = [("bpf_fd", u32), ("info_len", u32), ("info", u64)]


class ProgInfo(ctypes.Structure):
    """struct bpf_prog_info."""

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("tag", u8 * BPF_TAG_SIZE),
        ("jited_prog_len", u32),
        ("xlated_prog_len", u32),
        ("jited_prog_insns", u64),
        ("xlated_prog_insns", u64),
        ("load_time", u64),  # ns since boot (CLOCK_BOOTTIME)
        ("created_by_uid", u32),
        ("nr_map_ids", u32),
        ("map_ids", u64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", u32),
        ("gpl_compatible", u32),  # bit 0; the other 31 bits are padding
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("nr_jited_ksyms", u32),
        ("nr_jited_func_lens", u32),
        ("jited_ksyms", u64),
        ("jited_func_lens", u64),
        ("btf_id", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("nr_func_info", u32),
        ("nr_line_info", u32),
        ("line_info", u64),
        ("jited_line_info", u64),
        ("nr_jited_line_info", u32),
        ("line_info_rec_size", u32),
        ("jited_line_info_rec_size", u32),
        ("nr_prog_tags", u32),
        ("prog_tags", u64),
        ("run_time_ns", u64),
        ("run_cnt", u64),
        ("recursion_misses", u64),
        ("verified_insns", u32),
        ("attach_btf_obj_id", u32),
        ("attach_btf_id", u32),
        ("_pad", u32),
    ]


class _LinkCreateIter(ctypes.Structure):
    _fields_ = [("iter_info", u64), ("iter_info_len", u32)]


class _LinkCreatePerfEvent(ctypes.Structure):
    _fields_ = [("bpf_cookie", u64)]


class _LinkCreateKprobeMulti(ctypes.Structure):
    _fields_ = [("flags", u32), ("cnt", u32), ("syms", u64), ("addrs", u64), ("cookies", u64)]


class _LinkCreateTracing(ctypes.Structure):
    _fields_ = [("target_btf_id", u32), ("cookie", u64)]


class _LinkCreateNetfilter(ctypes.Structure):
    _fields_ = [("pf", u32), ("hooknum", u32), ("priority", s32), ("flags", u32)]


class _LinkCreateRelative(ctypes.Structure):
    """tcx, netkit and cgroup (mprog): ``relative_fd``/``relative_id`` and ``expected_revision``."""

    _fields_ = [("relative_fd", u32), ("expected_revision", u64)]


class _LinkCreateUprobeMulti(ctypes.Structure):
    _fields_ = [("path", u64), ("offsets", u64), ("ref_ctr_offsets", u64), ("cookies", u64),
                ("cnt", u32), ("flags", u32), ("pid", u32)]


class _LinkCreateUnion(ctypes.Union):
    _fields_ = [
        ("target_btf_id", u32),
        ("iter", _LinkCreateIter),
        ("perf_event", _LinkCreatePerfEvent),
        ("kprobe_multi", _LinkCreateKprobeMulti),
        ("tracing", _LinkCreateTracing),
        ("netfilter", _LinkCreateNetfilter),
        ("tcx", _LinkCreateRelative),
        ("uprobe_multi", _LinkCreateUprobeMulti),
        ("netkit", _LinkCreateRelative),
        ("cgroup", _LinkCreateRelative),
    ]


class LinkCreateAttr(ctypes.Structure):
    """BPF_LINK_CREATE. ``prog_fd`` is ``map_fd`` for struct_ops links; ``target_fd`` is
    ``target_ifindex`` for XDP/tcx/netkit. Per-kind fields are in ``u`` (``attr.u.tcx``...)."""

    _fields_ = [("prog_fd", u32), ("target_fd", u32), ("attach_type", u32), ("flags", u32),
                ("u", _LinkCreateUnion)]
