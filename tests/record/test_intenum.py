"""pybpf._intenum.IntEnum behaves as enum.IntEnum for everything pybpf's kernel enums offer.

Differential: the same members go into a stdlib IntEnum and a pybpf IntEnum,
and every operation is compared (hypothesis chooses names, values and aliases).
"""

import copy
import enum
import json
import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf._intenum import IntEnum
from pybpf.maps.types import MapType
from pybpf.program.types import ProgType, prog_type
from pybpf.syscall.bpf import Cmd

NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True)
MEMBERS = st.dictionaries(NAMES, st.integers(-3, 40), min_size=1, max_size=12)


def build(members: dict[str, int]):
    std = enum.IntEnum("E", members)
    ours = type(IntEnum)("E", (IntEnum,), dict(members))
    return std, ours


def shape(x):
    """What a result looks like, comparable across the two implementations."""
    if isinstance(x, (enum.IntEnum, IntEnum)):
        return ("member", x.name, int(x), repr(x), str(x), format(x, ">5"), hash(x))
    return ("value", x)


def outcome(f):
    try:
        return shape(f())
    except Exception as exc:  # noqa: BLE001 - the exception type is what is compared
        return ("raises", type(exc))


@settings(max_examples=200, deadline=None)
@given(MEMBERS, st.lists(st.integers(-5, 45), max_size=6), st.lists(NAMES, max_size=4))
def test_same_behaviour_as_stdlib_intenum(members, values, names):
    std, ours = build(members)
    assert [shape(m) for m in std] == [shape(m) for m in ours]            # order, no aliases
    assert [shape(m) for m in reversed(std)] == [shape(m) for m in reversed(ours)]
    assert len(std) == len(ours)
    assert {k: shape(v) for k, v in std.__members__.items()} == \
        {k: shape(v) for k, v in ours.__members__.items()}               # aliases included
    for v in values + list(members.values()):
        assert outcome(lambda: std(v)) == outcome(lambda: ours(v))
        assert (v in std._value2member_map_) == (v in ours)
    for n in names + list(members):
        assert outcome(lambda: std[n]) == outcome(lambda: ours[n])
        assert outcome(lambda: getattr(std, n)) == outcome(lambda: getattr(ours, n))
    for a in std:
        b = ours(int(a))
        assert (a == int(a), a < int(a) + 1, a + 1, -a) == (b == int(b), b < int(b) + 1, b + 1, -b)
        assert ours(b) is b and ours[b.name] is b and b.value == a.value == int(a)
        assert b in ours


def test_members_are_ints_everywhere_an_int_goes():
    assert struct.pack("<I", MapType.HASH) == struct.pack("<I", 1)
    assert json.dumps({"t": MapType.RINGBUF}) == '{"t": 27}'
    assert f"{Cmd.PROG_LOAD}" == "5" and "%d" % Cmd.PROG_LOAD == "5"
    assert {1: "x"}[MapType.HASH] == "x" and MapType.HASH in {1}
    assert isinstance(MapType.HASH, int) and isinstance(MapType.HASH, MapType)


def test_pickle_and_copy_give_the_same_member():
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(ProgType.XDP, proto)) is ProgType.XDP
    assert copy.copy(MapType.LRU_HASH) is MapType.LRU_HASH
    assert copy.deepcopy([MapType.LRU_HASH])[0] is MapType.LRU_HASH


def test_members_and_their_names_are_read_only():
    with pytest.raises(AttributeError):
        MapType.HASH = 5
    with pytest.raises(AttributeError):
        del MapType.HASH
    with pytest.raises(AttributeError):
        MapType.HASH._name_ = "ARRAY"
    with pytest.raises(AttributeError):
        MapType.HASH.anything = 1
    assert MapType.HASH.name == "HASH"


def test_methods_and_properties_of_the_class_body_are_not_members():
    assert ProgType.SCHED_CLS.bpftool_name == "sched_cls"
    assert ProgType.XDP.kernel_name == "BPF_PROG_TYPE_XDP"
    assert "bpftool_name" not in ProgType.__members__
    assert prog_type("tc") is ProgType.SCHED_CLS


def test_class_repr_and_truth():
    assert repr(MapType) == "<enum 'MapType'>"
    assert bool(type(IntEnum)("Empty", (IntEnum,), {})) is True
    assert "HASH" not in MapType and [] not in MapType  # names and unhashables are not values
