"""A RingBuffer that cannot be built leaves nothing open behind."""

import os

import pytest

from pybpf.maps import MapSpec
from pybpf.ringbuf import RingBuffer

pytestmark = pytest.mark.kernel


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("record_type", ["zz!", 42, object()])
def test_bad_record_type_leaks_no_fd(record_type):
    with MapSpec.ringbuf(4096).create() as rb:
        before = _fds()
        for _ in range(20):
            with pytest.raises(TypeError):
                RingBuffer(rb, record_type=record_type)
        assert _fds() == before


def test_wrong_map_type_leaks_no_fd():
    with MapSpec.array("I", 1).create() as arr:
        before = _fds()
        with pytest.raises(OSError, match="not BPF_MAP_TYPE_RINGBUF"):
            RingBuffer(arr)
        assert _fds() == before


def test_a_good_reader_after_a_failed_one_works():
    with MapSpec.ringbuf(4096).create() as rb:
        with pytest.raises(TypeError):
            RingBuffer(rb, record_type="zz!")
        with RingBuffer(rb) as reader:
            assert reader.read_batch() == [] and not reader.wait(0)
        assert reader.closed
