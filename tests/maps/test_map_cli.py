"""``pybpf map list|dump`` agree with bpftool on the same maps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mapkit import needs_root
from pybpf import pin
from pybpf.maps import MapSpec

pytestmark = [pytest.mark.kernel, needs_root]


def pybpf_json(*args: str):
    out = subprocess.run([sys.executable, "-m", "pybpf", "map", *args, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def bpftool_json(*args: str):
    if not shutil.which("bpftool"):
        pytest.skip("bpftool not installed")
    out = subprocess.run(["bpftool", "-j", "map", *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_list_contains_our_map_with_bpftool_fields():
    with MapSpec.hash("I", "Q", 16, name="cli_list").create() as m:
        ours = {r["id"]: r for r in pybpf_json("list")}
        assert ours[m.id]["name"] == "cli_list" and ours[m.id]["type"] == "hash"
        theirs = {r["id"]: r for r in bpftool_json("list")}
        for field in ("type", "name", "flags", "bytes_key", "bytes_value", "max_entries",
                      "bytes_memlock", "frozen"):
            assert ours[m.id][field] == theirs[m.id][field], field


@pytest.mark.parametrize("spec,content", [
    (MapSpec.hash("I", "Q", 64, name="cli_h"), {i: i * 7 for i in range(40)}),
    (MapSpec.percpu_hash("I", "I", 8, name="cli_pc"), {1: 3, 2: 4}),
    (MapSpec.array("Q", 5, name="cli_a"), {2: 9}),
])
def test_dump_matches_bpftool(spec, content):
    with spec.create() as m:
        for k, v in content.items():
            m[k] = v
        ours = pybpf_json("dump", "id", str(m.id))
        theirs = bpftool_json("dump", "id", str(m.id))
        key = (lambda r: r["key"])
        assert sorted(ours, key=key) == sorted(theirs, key=key)
        assert len(ours) == len(content) if spec.type != 2 else len(ours) == 5


def test_dump_pinned_path_and_text_output():
    root = pin.ensure_bpffs()
    path = os.path.join(root, f"pybpf_cli_{os.getpid()}")
    with MapSpec.hash("I", "I", 4, name="cli_pin").create() as m:
        m[1] = 2
        pin.pin(m, path)
    try:
        assert pybpf_json("dump", "pinned", path) == [
            {"key": ["0x01", "0x00", "0x00", "0x00"], "value": ["0x02", "0x00", "0x00", "0x00"]}]
        out = subprocess.run([sys.executable, "-m", "pybpf", "map", "dump", path],
                             capture_output=True, text=True, timeout=60)
        assert out.stdout == "key: 01 00 00 00  value: 02 00 00 00\nFound 1 element\n"
    finally:
        pin.unpin(path)


def test_missing_map_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "pybpf", "map", "dump", "id", "4000000000"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no map with id 4000000000" in out.stderr


def test_bpffs_directory_is_not_blamed_on_permissions():
    """BPF_OBJ_GET of a bpffs directory is EACCES: say it is a directory, not a privilege problem."""
    root = pin.ensure_bpffs()
    out = subprocess.run([sys.executable, "-m", "pybpf", "map", "show", root],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"{root} is a directory, not a pinned map" in out.stderr
    assert "EACCES" not in out.stderr and "lockdown" not in out.stderr
