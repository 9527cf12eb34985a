"""Pinning round trips, and the error a process without capabilities gets."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from mapkit import needs_root
from pybpf import pin
from pybpf.maps import Map, MapSpec
from pybpf.syscall import ObjectNotFound

pytestmark = [pytest.mark.kernel, needs_root]


@pytest.fixture
def pindir():
    root = pin.ensure_bpffs()
    path = os.path.join(root, f"pybpf_test_{uuid.uuid4().hex[:8]}")
    yield path
    if os.path.isdir(path):
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


def test_bpffs_is_found_or_mounted():
    root = pin.ensure_bpffs()
    assert pin.find_bpffs() == root and os.path.isdir(root)


def test_map_pin_open_unpin_round_trip(pindir):
    spec = MapSpec.hash("I", "Q", 8, name="pinned")
    path = os.path.join(pindir, "counts")
    with spec.create() as m:
        m[1] = 2
        assert pin.pin(m, path) == path
        map_id = m.id
    # the pin keeps the map alive after its last fd is closed
    with Map.from_pin(path, spec) as again:
        assert again.id == map_id and again[1] == 2
        again[3] = 4
    with pin.open_pinned(path) as raw:
        assert isinstance(raw, Map) and raw.name == "pinned" and len(raw) == 2
    pin.unpin(path)
    assert not os.path.exists(path)
    with pytest.raises(ObjectNotFound, match="open pinned"):
        Map.from_pin(path)


def test_relative_pin_paths_are_under_bpffs(pindir):
    rel = os.path.relpath(os.path.join(pindir, "rel"), pin.ensure_bpffs())
    with MapSpec.array("I", 1).create() as m:
        full = pin.pin(m, rel)
    assert full == os.path.join(pindir, "rel") and os.path.exists(full)
    pin.unpin(rel)


def test_program_pin_and_kind_check(pindir, prog):
    path = os.path.join(pindir, "prog")
    pin.pin(prog, path)
    with pytest.raises(pin.PinError, match="holds a BPF prog, not a map"):
        Map.from_pin(path)
    opened = pin.open_pinned(path)
    try:
        assert opened.id == prog.id
    finally:
        opened.close()
    pin.unpin(path)


def test_unpin_refuses_paths_outside_bpffs(tmp_path):
    victim = tmp_path / "file"
    victim.write_text("x")
    with pytest.raises(pin.PinError, match="not on a bpf filesystem"):
        pin.unpin(str(victim))
    assert victim.exists()


_DROP_ALL_CAPS = r"""
import ctypes, sys
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
libc = ctypes.CDLL(None, use_errno=True)
# _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set, all zero = no capabilities
if libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()) != 0:
    sys.exit("capset failed")
from pybpf.maps import MapSpec
from pybpf.syscall import BPFPermissionError
try:
    MapSpec.hash("I", "I", 4).create()
except BPFPermissionError as err:
    print(err)
    sys.exit(0)
sys.exit("map created without capabilities")
"""


def test_no_capabilities_gives_a_permission_error_naming_cap_bpf():
    out = subprocess.run([sys.executable, "-c", _DROP_ALL_CAPS], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    msg = out.stdout
    assert "BPF_MAP_CREATE" in msg and "EPERM" in msg
    assert "CAP_BPF" in msg and "root" in msg
