"""ctypes layouts of the ``union bpf_attr`` members used by map, object and id commands.

Each structure mirrors one anonymous struct of ``include/uapi/linux/bpf.h``
field for field (``__aligned_u64`` pointers are plain ``c_uint64`` holding an
address). The kernel accepts an attr shorter than its own union as long as it
covers the fields in use, and requires anything past its own union to be zero,
so these structures stop at the last field pybpf sets.
"""

from __future__ import annotations

import ctypes

from ctypes import c_char, c_int32, c_uint32, c_uint64

BPF_OBJ_NAME_LEN = 16

__all__ = [
    "BPF_OBJ_NAME_LEN", "MapCreateAttr", "MapElemAttr", "MapBatchAttr", "ObjPinAttr",
    "GetIdAttr", "InfoByFdAttr", "EnableStatsAttr", "BpfMapInfo",
]


class MapCreateAttr(ctypes.Structure):
    """BPF_MAP_CREATE."""

    _fields_ = [
        ("map_type", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("inner_map_fd", c_uint32),
        ("numa_node", c_uint32),
        ("map_name", c_char * BPF_OBJ_NAME_LEN),
        ("map_ifindex", c_uint32),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("map_extra", c_uint64),
        ("value_type_btf_obj_fd", c_int32),
        ("map_token_fd", c_int32),
    ]


class MapElemAttr(ctypes.Structure):
    """BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_AND_DELETE_ELEM,
    BPF_MAP_FREEZE (only ``map_fd``). ``value`` doubles as ``next_key``."""

    _fields_ = [
        ("map_fd", c_uint32),
        ("key", c_uint64),
        ("value", c_uint64),
        ("flags", c_uint64),
    ]


class MapBatchAttr(ctypes.Structure):
    """BPF_MAP_*_BATCH."""

    _fields_ = [
        ("in_batch", c_uint64),
        ("out_batch", c_uint64),
        ("keys", c_uint64),
        ("values", c_uint64),
        ("count", c_uint32),
        ("map_fd", c_uint32),
        ("elem_flags", c_uint64),
        ("flags", c_uint64),
    ]


class ObjPinAttr(ctypes.Structure):
    """BPF_OBJ_PIN / BPF_OBJ_GET."""

    _fields_ = [
        ("pathname", c_uint64),
        ("bpf_fd", c_uint32),
        ("file_flags", c_uint32),
        ("path_fd", c_int32),
    ]


class GetIdAttr(ctypes.Structure):
    """BPF_{PROG,MAP,LINK,BTF}_GET_NEXT_ID and _GET_FD_BY_ID (``start_id`` is also
    ``prog_id``/``map_id``/``link_id``)."""

    _fields_ = [
        ("start_id", c_uint32),
        ("next_id", c_uint32),
        ("open_flags", c_uint32),
    ]


class InfoByFdAttr(ctypes.Structure):
    """BPF_OBJ_GET_INFO_BY_FD."""

    _fields_ = [
        ("bpf_fd", c_uint32),
        ("info_len", c_uint32),
        ("info", c_uint64),
    ]


class EnableStatsAttr(ctypes.Structure):
    """BPF_ENABLE_STATS."""

    _fields_ = [("type", c_uint32)]


class BpfMapInfo(ctypes.Structure):
    """struct bpf_map_info (filled by BPF_OBJ_GET_INFO_BY_FD on a map fd)."""

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("btf_id", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_id", c_uint32),
        ("map_extra", c_uint64),
    ]
