"""Descriptors: 10,000 create/close cycles leave the process's fd count unchanged."""

from __future__ import annotations

import gc

import pytest

from mapkit import load_prog, needs_root, open_fds
from pybpf.maps import Map, MapFlags, MapSpec
from pybpf.syscall import InvalidArgument, ObjectNotFound

pytestmark = [pytest.mark.kernel, needs_root]

CYCLES = 10_000


def test_map_create_close_cycles_do_not_leak():
    spec = MapSpec.hash("I", "I", 4)
    before = open_fds()
    for i in range(CYCLES):
        with spec.create() as m:
            m[i] = i
    # and through the finalizer, without close()
    for _ in range(200):
        spec.create()
    gc.collect()
    assert open_fds() == before


def test_program_load_close_cycles_do_not_leak():
    before = open_fds()
    for _ in range(CYCLES):
        load_prog().close()
    gc.collect()
    assert open_fds() == before


def test_failed_creates_and_opens_do_not_leak():
    before = open_fds()
    # Flags the spec passes on and the kernel refuses (EINVAL from the map_alloc_check).
    bad_inner = MapSpec.array("I", 1, flags=MapFlags.NO_PREALLOC)
    for _ in range(200):
        with pytest.raises(InvalidArgument):
            Map(MapSpec.hash("I", "I", 4, flags=MapFlags.MMAPABLE))
        with pytest.raises(InvalidArgument):
            Map(MapSpec.array_of_maps(bad_inner, 1))  # inner create fails
        with pytest.raises(ObjectNotFound):
            Map.from_id(0xFFFFFFF0)
    gc.collect()
    assert open_fds() == before
