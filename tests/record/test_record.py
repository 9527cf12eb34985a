"""pybpf._record.Record: what the value types lost nothing by leaving dataclasses."""

import copy
import pickle

import pytest

from pybpf.maps import MapSpec, MapSpecError
from pybpf.program import ProgramSpec
from pybpf.tracefs.events import Field

EXIT = b"\xb7\x00\x00\x00\x00\x00\x00\x00\x95\x00\x00\x00\x00\x00\x00\x00"  # r0 = 0; exit


def test_equal_values_are_equal_and_hash_alike():
    a, b = MapSpec.hash("I", "Q", 8, name="m"), MapSpec.hash("I", "Q", 8, name="m")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != MapSpec.hash("I", "Q", 9, name="m")
    assert a != "not a spec"


def test_fields_cannot_be_assigned_or_deleted():
    spec = MapSpec.array("Q", 4)
    with pytest.raises(AttributeError, match="immutable"):
        spec.max_entries = 5
    with pytest.raises(AttributeError, match="immutable"):
        del spec.name
    assert spec.max_entries == 4


def test_replace_rechecks_and_rejects_unknown_fields():
    spec = MapSpec.hash("I", "Q", 8)
    assert spec.replace(max_entries=16).max_entries == 16
    with pytest.raises(MapSpecError):
        spec.replace(name="not valid!")
    with pytest.raises(TypeError, match="no field 'size'"):
        spec.replace(size=3)


def test_repr_names_every_field_in_order():
    text = repr(Field("pid", "int", 4, 4, True))
    assert text == ("Field(name='pid', type='int', offset=4, size=4, signed=True, "
                    "array_len=None, data_loc=False, rel_loc=False)")


def test_pickle_and_copy_round_trip_without_rerunning_checks():
    spec = MapSpec.hash("I", "Q", 8, name="m")
    for clone in (pickle.loads(pickle.dumps(spec)), copy.copy(spec), copy.deepcopy(spec)):
        assert clone == spec and clone is not spec


def test_program_specs_compare_by_identity():
    a, b = ProgramSpec(EXIT, "socket_filter"), ProgramSpec(EXIT, "socket_filter")
    assert a == a and a != b and len({a, b}) == 2
    assert a.replace(name="x").name == "x"
