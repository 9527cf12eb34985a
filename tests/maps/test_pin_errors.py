"""Pin paths outside a bpf filesystem are named as such, not as a privilege problem."""

import os

import pytest

from mapkit import needs_root
from pybpf import pin
from pybpf.maps import Map, MapSpec
from pybpf.program import Program, ProgramSpec

pytestmark = [pytest.mark.kernel, needs_root]

RET0 = bytes.fromhex("b700000000000000" "9500000000000000")


def test_pin_outside_bpffs_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "m"
    with MapSpec.array("I", 1).create() as m:
        with pytest.raises(pin.PinError, match=rf"{target} is not on a bpf filesystem"):
            pin.pin(m, target)
        with pytest.raises(pin.PinError, match=r"/tmp/x is not on a bpf filesystem") as info:
            pin.pin(m, "/tmp/x")
    assert "run as root" not in str(info.value)
    assert not (tmp_path / "a").exists()  # no parent directories made on the wrong filesystem


def test_program_pin_outside_bpffs(tmp_path):
    with ProgramSpec(RET0, "socket_filter").load(verify=False) as prog:
        with pytest.raises(pin.PinError, match="is not on a bpf filesystem"):
            prog.pin(tmp_path / "p")


@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/self/status"])
def test_open_an_ordinary_file_as_a_pin(path):
    with pytest.raises(pin.PinError, match=rf"^{path}: not a pinned map: it is not on a bpf "
                                           r"filesystem \(such as /") as info:
        Map.from_pin(path)
    assert "run as root" not in str(info.value)
    with pytest.raises(pin.PinError, match=rf"^{path}: not a pinned program: it is not on"):
        Program.from_pin(path)


def test_program_pin_round_trip_on_bpffs():
    root = pin.ensure_bpffs()
    path = os.path.join(root, f"pybpf_pinerr_{os.getpid()}", "prog")
    with ProgramSpec(RET0, "socket_filter").load(verify=False) as prog:
        prog.pin(path)
        try:
            with Program.from_pin(path) as again:
                assert again.id == prog.id
        finally:
            pin.unpin(path)
            os.rmdir(os.path.dirname(path))


def test_a_directory_is_not_a_pinned_object(tmp_path):
    # BPF_OBJ_GET of a directory is EACCES: the pin layer says what is wrong, for every caller.
    root = pin.ensure_bpffs()
    for path in (str(tmp_path), root):
        with pytest.raises(pin.PinError, match=rf"^{path} is a directory, not a pinned map"):
            Map.from_pin(path)
        with pytest.raises(pin.PinError, match=rf"^{path} is a directory, not a pinned program"):
            Program.from_pin(path)
