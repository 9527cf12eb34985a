"""MapSpec and layouts: pure data, no kernel."""

from __future__ import annotations

import ctypes
import ipaddress
import struct

import pytest
from hypothesis import given, settings, strategies as st

from pybpf.maps import (LayoutError, LpmKey, MapFlags, MapSpec, MapSpecError, MapType, lpm_key)
from pybpf.maps.cpus import parse_cpu_list
from pybpf.maps.layout import CtypesLayout, RawLayout, StructLayout, make_layout


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint64)]


def test_sizes_derived_from_layouts():
    s = MapSpec.hash("I", "<QQ", 1024, name="flows")
    assert (s.type, s.key_size, s.value_size, s.max_entries) == (MapType.HASH, 4, 16, 1024)
    s = MapSpec.hash(Pair, ctypes.c_uint64 * 4, 8)
    assert (s.key_size, s.value_size) == (16, 32)
    s = MapSpec.hash(6, 10, 8)  # ints mean raw bytes of that size
    assert (s.key, s.key_size, s.value, s.value_size) == (None, 6, None, 10)


def test_positional_form_and_type_normalised():
    s = MapSpec(1, 4, 8, 16)
    assert s.type is MapType.HASH and s == MapSpec.hash(4, 8, 16)


def test_size_mismatch_is_named():
    with pytest.raises(MapSpecError, match=r"key_size 8 does not match the key layout 'I'"):
        MapSpec(MapType.HASH, 8, 8, 1, key="I")


@pytest.mark.parametrize("name", ["a" * 16, "bad-name", "sp ace"])
def test_bad_names(name):
    with pytest.raises(MapSpecError, match="at most 15 characters"):
        MapSpec.hash("I", "I", 1, name=name)


def test_type_rules():
    with pytest.raises(MapSpecError, match="needs an inner map"):
        MapSpec(MapType.ARRAY_OF_MAPS, 4, 4, 1)
    with pytest.raises(MapSpecError, match="no keys"):
        MapSpec(MapType.QUEUE, 4, 4, 1)
    with pytest.raises(MapSpecError, match="power of 2"):
        MapSpec.ringbuf(5000)
    with pytest.raises(MapSpecError, match="4-byte indexes"):
        MapSpec.array("Q", 4, key="Q")
    with pytest.raises(MapSpecError, match="unknown map type"):
        MapSpec(999, 4, 4, 1)


def test_constructors():
    assert MapSpec.lpm_trie("ipv6", "I", 8).flags & MapFlags.NO_PREALLOC
    assert MapSpec.lpm_trie(4, "I", 8).key_size == 8
    st_ = MapSpec.stack_trace(16, depth=20)
    assert (st_.key_size, st_.value_size) == (4, 160)
    inner = MapSpec.array("I", 4)
    mom = MapSpec.array_of_maps(inner, 3)
    assert mom.inner is inner and mom.value_size == 4
    assert MapSpec.queue("Q", 8).key_size == 0 and MapSpec.ringbuf(1 << 14).max_entries == 16384
    assert MapSpec.perf_event_array().max_entries >= 1


def test_specs_are_frozen_and_hashable():
    s = MapSpec.hash("I", "Q", 4)
    with pytest.raises(AttributeError):
        s.max_entries = 5
    assert {s: 1}[MapSpec.hash("I", "Q", 4)] == 1
    assert s.replace(max_entries=9).max_entries == 9


def test_struct_layout_roundtrip_and_errors():
    lay = StructLayout("<IH")
    assert lay.decode(lay.encode((7, 3))) == (7, 3)
    assert lay.encode(b"\x01\x00\x00\x00\x02\x00") == b"\x01\x00\x00\x00\x02\x00"
    with pytest.raises(LayoutError, match="is 3 bytes, the map's value size is 6"):
        lay.encode(b"abc")
    with pytest.raises(LayoutError, match="does not fit the layout"):
        StructLayout("B").encode(300)


def test_raw_layout_accepts_ints():
    lay = RawLayout(4, "key")
    assert lay.encode(1) == (1).to_bytes(4, "little")
    with pytest.raises(LayoutError, match="does not fit in 4 bytes"):
        lay.encode(1 << 40)


def test_ctypes_layouts():
    lay = CtypesLayout(Pair)
    got = lay.decode(lay.encode(Pair(1, 2)))
    assert (got.a, got.b) == (1, 2)
    assert lay.decode(lay.encode({"a": 5, "b": 6})).b == 6
    assert CtypesLayout(ctypes.c_uint64).decode(CtypesLayout(ctypes.c_uint64).encode(9)) == 9
    assert CtypesLayout(ctypes.c_char * 4).decode(b"abcd") == b"abcd"
    with pytest.raises(LayoutError):
        make_layout(3.5, None)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 2**64 - 1), max_size=50), st.sampled_from(["Q", "<Q", "=Q"]))
def test_decode_many_matches_decode(values, fmt):
    lay = StructLayout(fmt)
    buf = lay.encode_many(values)
    assert buf == b"".join(struct.pack(fmt, v) for v in values)
    assert lay.decode_many(memoryview(buf), len(values), 8) == values
    # strided (per-CPU style) decoding agrees too
    padded = b"".join(struct.pack(fmt, v) + bytes(8) for v in values)
    assert lay.decode_many(memoryview(padded), len(values), 16) == values


def test_lpm_keys():
    assert lpm_key("10.0.0.0/8") == struct.pack("=I", 8) + bytes([10, 0, 0, 0])
    assert lpm_key(ipaddress.ip_address("192.168.1.1")) == struct.pack("=I", 32) + \
        bytes([192, 168, 1, 1])
    lay = LpmKey(16)
    net = ipaddress.ip_network("fe80::/10")
    assert lay.decode(lay.encode(net)) == net
    assert lay.decode(lay.encode((64, "2001:db8::"))) == ipaddress.ip_network("2001:db8::/64")
    with pytest.raises(LayoutError, match="keys hold 16"):
        lay.encode("10.0.0.0/8")
    with pytest.raises(LayoutError, match="prefixlen 40 out of range"):
        LpmKey(4).encode((40, "1.2.3.4"))


def test_parse_cpu_list():
    assert parse_cpu_list("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8]
    assert parse_cpu_list("0") == [0]
