"""The BTF encoder: round trip through our parser, and acceptance by the kernel."""

import os

import pytest

from pybpf.btf import (Builder, BTFFormatError, BTFLoadError, FuncLinkage, Kind, Spec,
                       TypeNotFoundError, load_btf)
from pybpf.btf import types as T


def _sample() -> tuple[Builder, dict[str, int]]:
    b = Builder()
    ids = {}
    ids["int"] = b.add_int("int", 4, signed=True)
    ids["u32"] = b.add_int("unsigned int", 4)
    ids["u64"] = b.add_int("unsigned long long", 8)
    ids["ptr"] = b.add_ptr(ids["int"])
    ids["arr"] = b.add_array(ids["int"], 4, ids["u32"])
    ids["pair"] = b.add_struct("pair", 24, [("a", ids["int"], 0), ("b", ids["int"], 32),
                                            ("p", ids["ptr"], 64), ("flag", ids["u32"], 128, 1)])
    ids["proto"] = b.add_func_proto(ids["int"], [("ctx", ids["ptr"])])
    ids["func"] = b.add_func("prog", ids["proto"], FuncLinkage.GLOBAL)
    ids["var"] = b.add_var("counter", ids["arr"])
    ids["datasec"] = b.add_datasec(".bss", 16, [(ids["var"], 0, 16)])
    ids["enum"] = b.add_enum("color", 4, [("RED", 0), ("BLUE", -1)], signed=True)
    ids["enum64"] = b.add_enum("big", 8, [("HUGE", 1 << 40)])
    ids["typedef"] = b.add_typedef("u32_t", ids["u32"])
    ids["const"] = b.add_const(ids["typedef"])
    return b, ids


def test_round_trip_through_parser():
    b, ids = _sample()
    spec = Spec(b.encode())
    assert len(spec) == len(b) == len(ids) + 1
    pair = spec.struct("pair")
    assert [m.name for m in pair.members] == ["a", "b", "p", "flag"]
    assert spec.member_offset("pair", "b") == (4, 4)
    assert spec.member_offset("pair", "p") == (8, 8)
    flag = pair.member("flag")
    assert flag.is_bitfield and flag.bit_offset == 128 and flag.bitfield_size == 1
    assert spec.type_name(ids["func"]) == "int prog(int *)"
    assert spec.type_name(ids["arr"]) == "int[4]"
    assert spec.sizeof(ids["arr"]) == 16
    assert spec.enum("color").value_of("BLUE") == -1
    assert spec.lookup("big").kind == Kind.ENUM64
    assert spec.enum("big").value_of("HUGE") == 1 << 40
    assert spec.resolve(ids["const"]).name == "unsigned int"
    ds = spec.type_by_id(ids["datasec"])
    assert isinstance(ds, T.Datasec) and ds.vars[0].type.name == "counter"
    with pytest.raises(TypeNotFoundError, match="no BTF type named 'nope'"):
        spec.lookup("nope")


@pytest.mark.parametrize("blob, match", [
    (b"\x00" * 4, "shorter than its header"),
    (b"\x00\x00" + b"\x00" * 30, "Invalid magic"),
], ids=["short", "bad-magic"])
def test_malformed_headers(blob, match):
    with pytest.raises(BTFFormatError, match=match):
        Spec(blob)


def test_truncated_and_unknown_kind():
    import struct
    b, _ = _sample()
    blob = bytearray(b.encode())
    with pytest.raises(BTFFormatError, match="past the end"):
        Spec(bytes(blob[:-1]))
    short = bytearray(blob)
    struct.pack_into("=I", short, 12, 20)  # type_len: one INT (16 bytes) + 4 bytes of the next
    with pytest.raises(BTFFormatError, match=r"truncated in type \[2\]"):
        Spec(bytes(short))
    blob[24 + 4 + 3] = 31  # kind 31 in the first type's info word
    with pytest.raises(BTFFormatError, match="Invalid kind:31"):
        Spec(bytes(blob))


@pytest.mark.kernel
def test_kernel_accepts_encoded_btf():
    if os.geteuid() != 0:
        pytest.skip("BPF_BTF_LOAD needs root")
    import ctypes
    from pybpf.syscall.prog_cmds import obj_get_info

    class BtfInfo(ctypes.Structure):  # struct bpf_btf_info (include/uapi/linux/bpf.h)
        _fields_ = [("btf", ctypes.c_uint64), ("btf_size", ctypes.c_uint32),
                    ("id", ctypes.c_uint32), ("name", ctypes.c_uint64),
                    ("name_len", ctypes.c_uint32), ("kernel_btf", ctypes.c_uint32)]

    b, _ = _sample()
    blob = b.encode()
    with load_btf(blob) as fd:
        buf = ctypes.create_string_buffer(len(blob))
        info = obj_get_info(fd.fileno(), BtfInfo(btf=ctypes.addressof(buf), btf_size=len(blob)))
        # The kernel keeps the blob it accepted and hands the same bytes back.
        assert info.id > 0 and not info.kernel_btf
        assert (info.btf_size, buf.raw) == (len(blob), blob)


@pytest.mark.kernel
def test_kernel_rejection_carries_log():
    if os.geteuid() != 0:
        pytest.skip("BPF_BTF_LOAD needs root")
    b = Builder()
    i = b.add_int("int", 4)
    b.add_struct("x", 2, [("a", i, 0)])  # member past the struct's end
    with pytest.raises(BTFLoadError, match="Member exceeds struct_size") as info:
        load_btf(b.encode())
    assert "STRUCT x" in info.value.log
