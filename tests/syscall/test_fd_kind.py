"""What kind of object an fd is, checked before it is wrapped (real kernel objects)."""

import os
import uuid

import pytest

from pybpf import pin
from pybpf.maps import Map, MapSpec
from pybpf.perf import PerfReader
from pybpf.program import Program, ProgramSpec
from pybpf.ringbuf import RingBuffer
from pybpf.syscall.errors import WrongObjectKind, expect_kind, fd_kind

pytestmark = pytest.mark.kernel

RET0 = bytes.fromhex("b700000000000000" "9500000000000000")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def prog():
    with ProgramSpec(RET0, "socket_filter").load(verify=False) as p:
        yield p


@pytest.fixture
def hmap():
    with MapSpec.hash("I", "Q", 4).create() as m:
        yield m


def test_fd_kind_names_each_object(prog, hmap):
    from pybpf.btf import Builder, load_btf
    b = Builder()
    b.add_int("int", 4)
    with load_btf(b.encode()) as btf, open("/dev/null") as f:
        assert (fd_kind(prog.fd), fd_kind(hmap.fd), fd_kind(btf.fileno())) == ("prog", "map", "btf")
        assert fd_kind(f.fileno()) is None
    assert fd_kind(10_000) is None  # not open


def test_map_from_a_program_fd(prog):
    before = _fds()
    with pytest.raises(TypeError, match=rf"Map.from_fd: fd \d+ is a BPF prog, not a map"):
        Map.from_fd(prog.fd)
    assert _fds() == before  # the dup taken for the Map is closed again


def test_program_from_a_map_fd(hmap):
    before = _fds()
    with pytest.raises(WrongObjectKind, match=r"fd \d+ is a BPF map, not a program"):
        Program.from_fd(hmap.fd)
    assert _fds() == before


def test_non_bpf_fds(tmp_path):
    with open("/dev/null") as f:
        with pytest.raises(TypeError, match=r"is not a BPF object but /dev/null, not a map"):
            Map.from_fd(f.fileno())
        with pytest.raises(TypeError, match="not a BPF object"):
            Program.from_fd(f.fileno())
    with pytest.raises(TypeError, match="fd 10000 is not open"):
        expect_kind(10_000, "map")


def test_readers_refuse_a_program(prog):
    before = _fds()
    with pytest.raises(TypeError, match="RingBuffer: fd .* is a BPF prog, not a map"):
        RingBuffer(prog)
    with pytest.raises(TypeError, match="PerfReader: fd .* is a BPF prog, not a map"):
        PerfReader(prog)
    assert _fds() == before


def test_program_from_a_pinned_map(hmap):
    root = pin.ensure_bpffs()
    path = os.path.join(root, f"pybpf_kind_{uuid.uuid4().hex[:8]}")
    pin.pin(hmap, path)
    try:
        before = _fds()
        with pytest.raises(pin.PinError, match=r"holds a BPF map, not a prog"):
            Program.from_pin(path)
        assert _fds() == before
        with Map.from_pin(path) as again:
            assert again.id == hmap.id
    finally:
        pin.unpin(path)


def test_right_kinds_still_open(prog, hmap):
    with Program.from_fd(prog.fd) as p, Map.from_fd(hmap.fd) as m:
        assert (p.id, m.id) == (prog.id, hmap.id)
        m[1] = 7
        assert hmap[1] == 7
