"""opensnoop: open files under a temporary prefix and find them, with pid and comm."""

import os

import pytest

from toolkit import ATTACH_MODES, requires_root

pytestmark = [pytest.mark.kernel, requires_root]


def own_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


@pytest.mark.parametrize("mode", ATTACH_MODES)
def test_open_under_prefix_is_reported_and_others_are_filtered(tool, tmp_path, mode):
    watched = tmp_path / "watched"
    other = tmp_path / "other"
    watched.mkdir()
    other.mkdir()
    prefix = f"{watched}/"
    t = tool("opensnoop", "--attach", mode, "--path", prefix)
    (other / "ignored.txt").write_text("x")           # outside the prefix
    target = watched / "some-longer-file-name.conf"
    target.write_text("x")                             # openat(O_CREAT)
    with open(target) as f:                            # openat(O_RDONLY)
        f.read()
    event = t.wait_for(lambda e: e["file"] == str(target))
    assert event["pid"] == os.getpid()
    assert event["comm"] == own_comm()
    assert t.stop() == 0
    files = {e["file"] for e in t.events()} | {event["file"]}
    assert files == {str(target)}                       # the in-kernel prefix check held


def test_prefix_shorter_than_eight_bytes_and_pid_filter(tool, tmp_path, monkeypatch):
    # "/tmp/" style prefixes end inside the first 8-byte chunk: the masked compare.
    monkeypatch.chdir(tmp_path)
    t = tool("opensnoop", "--path", "rel", "--pid", str(os.getpid()))
    open("relative.txt", "w").close()
    open("elsewhere.txt", "w").close()
    event = t.wait_for(lambda e: e["file"].startswith("rel"))
    assert event["file"] == "relative.txt" and event["pid"] == os.getpid()
    assert t.stop() == 0
    assert all(e["file"].startswith("rel") for e in t.events())


def test_too_long_prefix_is_a_clear_error(tool):
    t = tool("opensnoop", "--path", "/" + "x" * 300, ready=False)
    assert t.finish() == 1
    assert "at most 255 fit" in "".join(t.stderr)
