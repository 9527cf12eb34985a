"""Bad input to maps: each mistake is a clear exception naming the map or the format."""

from __future__ import annotations

import pytest

from mapkit import needs_root
from pybpf import pin
from pybpf.maps import LayoutError, MapSpec
from pybpf.ringbuf import RingBuffer
from pybpf.syscall import InvalidArgument


def test_bad_struct_format_names_the_format():
    with pytest.raises(LayoutError, match=r"key format 'Z' is not a struct format"):
        MapSpec.hash("Z", "Q", 4)


@pytest.mark.kernel
@needs_root
def test_closed_map_use_names_the_map():
    m = MapSpec.hash("I", "Q", 4, name="gone").create()
    m[1] = 2
    m.close()
    for use in (lambda: m[1], lambda: m.__setitem__(1, 3), lambda: list(m.items()),
                lambda: pin.pin(m, "never_pinned"), lambda: RingBuffer(m)):
        with pytest.raises(ValueError, match=r"use of closed map 'gone' \(id \d+, hash\)"):
            use()


@pytest.mark.kernel
@needs_root
def test_ring_buffer_on_a_hash_map_names_its_type():
    with MapSpec.hash("I", "Q", 4, name="notring").create() as m:
        with pytest.raises(InvalidArgument, match=r"'notring'.*map_type 1, not BPF_MAP_TYPE_RINGBUF"):
            RingBuffer(m)


def test_fd_of_rejects_non_objects():
    with pytest.raises(TypeError, match="expected a map or an fd, got str"):
        RingBuffer("counts")
