"""MapSpec checks what the kernel would refuse with a bare EINVAL, and only that.

Each zero rule is checked against the kernel: the same attributes, passed to
BPF_MAP_CREATE directly, must be refused, and the valid ones accepted.
"""

from __future__ import annotations

import pytest

from pybpf.maps import Map, MapFlags, MapSpec, MapSpecError, MapSpecTypeError, MapType
from pybpf.maps.spec import _NONZERO
from pybpf.syscall import map_cmds
from pybpf.syscall.errors import IndexOutOfRange, InvalidArgument, MapFull, TooBig


@pytest.mark.parametrize("args, match", [
    ((MapType.HASH, 4, 8, 10.5), r"max_entries must be an int, not float \(10\.5\)"),
    ((MapType.HASH, "4", 8, 10), r"key_size must be an int, not str \('4'\)"),
    ((MapType.HASH, 4, 8.0, 10), r"value_size must be an int, not float"),
    ((MapType.HASH, 4, 8, None), r"max_entries must be an int, not NoneType"),
    ((MapType.HASH, 4, 8, True), r"max_entries must be an int, not bool"),
])
def test_field_types_are_named(args, match):
    with pytest.raises(MapSpecTypeError, match=match) as info:
        MapSpec(*args)
    assert isinstance(info.value, TypeError) and isinstance(info.value, MapSpecError)
    with pytest.raises(TypeError, match="flags must be an int, not str"):
        MapSpec(MapType.HASH, 4, 8, 10, flags="0")


@pytest.mark.parametrize("make, field", [
    (lambda: MapSpec.hash("I", "Q", 0), "max_entries"),
    (lambda: MapSpec(MapType.HASH, 0, 8, 10), "key_size"),
    (lambda: MapSpec(MapType.HASH, 4, 0, 10), "value_size"),
    (lambda: MapSpec.array(0, 4), "value_size"),
    (lambda: MapSpec.array("Q", 0), "max_entries"),
    (lambda: MapSpec.queue(0, 4), "value_size"),
])
def test_zero_fields_are_named(make, field):
    with pytest.raises(MapSpecError, match=rf"map: {field} must be at least 1, not 0"):
        make()


def test_zero_is_left_alone_where_the_kernel_takes_it():
    # value_size 0: ring buffers and arenas; max_entries 0: local storage (needs BTF later).
    assert MapSpec.ringbuf(4096).value_size == 0
    assert MapSpec(MapType.ARENA, 0, 0, 1, flags=MapFlags.MMAPABLE).value_size == 0
    assert MapSpec(MapType.SK_STORAGE, 4, 8, 0, flags=MapFlags.NO_PREALLOC).max_entries == 0
    assert MapSpec(MapType.TASK_STORAGE, 4, 8, 0, flags=MapFlags.NO_PREALLOC).max_entries == 0


def _valid_attrs(mtype: MapType) -> dict:
    """Attributes the kernel accepts for ``mtype`` (checked by the test below)."""
    ks = 0 if mtype in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER) else 4
    vs = 4 if mtype in (MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                        MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS) else 8
    flags = 0
    if mtype == MapType.LPM_TRIE:
        ks, flags = 8, MapFlags.NO_PREALLOC
    if mtype == MapType.STACK_TRACE:
        vs = 8 * 4
    return dict(map_type=int(mtype), key_size=ks, value_size=vs, max_entries=4, flags=flags)


@pytest.mark.kernel
@pytest.mark.parametrize("mtype", sorted(_NONZERO), ids=lambda t: t.name)
def test_zero_rules_match_the_kernel(mtype):
    inner = MapSpec.array("Q", 1).create() if mtype in (MapType.ARRAY_OF_MAPS,
                                                        MapType.HASH_OF_MAPS) else None
    try:
        extra = {"inner_map_fd": inner.fd} if inner else {}
        attrs = _valid_attrs(mtype)
        map_cmds.map_create(**attrs, **extra).close()  # the control: accepted as is
        for field in _NONZERO[mtype]:
            bad = dict(attrs, **{field: 0})
            with pytest.raises(InvalidArgument):
                map_cmds.map_create(**bad, **extra).close()
            with pytest.raises(MapSpecError) as info:
                MapSpec(mtype, bad["key_size"], bad["value_size"], bad["max_entries"],
                        bad["flags"], inner=MapSpec.array("Q", 1) if inner else None)
            # The zero rule, or an earlier one (fd arrays: "values are 4-byte fds, not 0 bytes").
            msg = str(info.value)
            assert f"{field} must be at least 1" in msg or "not 0 bytes" in msg, msg
    finally:
        if inner:
            inner.close()


# -- E2BIG -------------------------------------------------------------------------------

@pytest.mark.kernel
def test_array_index_past_the_end_is_not_map_full():
    with MapSpec.array("Q", 4).create() as m:
        with pytest.raises(IndexOutOfRange, match=r"index 10 out of range \(max_entries 4\)") as info:
            m[10] = 1
        assert not isinstance(info.value, MapFull) and isinstance(info.value, IndexError)
        assert isinstance(info.value, TooBig) and info.value.command == "BPF_MAP_UPDATE_ELEM"
        with pytest.raises(IndexOutOfRange, match=r"index 4 out of range"):
            m[4] = 1
        m[3] = 1  # the last index is fine
        with pytest.raises(IndexOutOfRange, match=r"index 7 out of range \(max_entries 4\)"):
            m.update_batch([0, 7], [5, 6])
        assert m[0] == 5  # the batch wrote up to the bad index


@pytest.mark.kernel
def test_a_full_hash_is_still_map_full():
    with MapSpec.hash("I", "Q", 2).create() as m:
        m[1] = m[2] = 0
        with pytest.raises(MapFull, match="BPF_MAP_UPDATE_ELEM: E2BIG"):
            m[3] = 3


@pytest.mark.kernel
def test_map_create_e2big_is_a_limit_not_a_full_map():
    # A per-CPU value over PCPU_MIN_UNIT_SIZE (32 KiB): array_map_alloc_check says E2BIG.
    with pytest.raises(TooBig, match="BPF_MAP_CREATE: E2BIG.*over the kernel's limit") as info:
        Map(MapSpec(MapType.PERCPU_ARRAY, 4, 1 << 20, 1))
    assert not isinstance(info.value, MapFull)
