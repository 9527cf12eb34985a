"""opensnoop: open files under a temporary prefix and find them, with pid and comm."""

import os
import subprocess
import sys
import time

import pytest

from toolkit import ATTACH_MODES, requires_root
from pybpf.tools import opensnoop

def own_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def has_tracepoint(name: str) -> bool:
    from pybpf.tracefs import tracefs_path
    return os.path.exists(tracefs_path("events", "syscalls", name))


class Child:
    """A python child that runs ``code`` in ``cwd``, then stays alive until stopped.

    Alive, so that user space can still read its /proc/PID/cwd and fds when the
    event arrives (a relative name is resolved there).
    """

    def __init__(self, code: str, cwd: str = "/"):
        script = code + "\nimport sys\nprint('done', flush=True)\nsys.stdin.readline()\n"
        self.proc = subprocess.Popen([sys.executable, "-c", script], cwd=cwd, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout.readline().strip() == "done"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.communicate("\n", timeout=10)


@pytest.mark.kernel
@requires_root
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
    # Absolute names all passed the in-kernel prefix check. (A relative name from some
    # other process that exited before it could be resolved is printed as passed.)
    files = {e["file"] for e in t.events() if e["file"].startswith("/")} | {event["file"]}
    assert files == {str(target)}


@pytest.mark.kernel
@requires_root
def test_short_prefix_and_pid_filter(tool, tmp_path):
    # "/tmp/" ends inside the first 8-byte chunk: the masked compare.
    assert str(tmp_path).startswith("/tmp/")
    t = tool("opensnoop", "--path", "/tmp/", "--pid", str(os.getpid()))
    open(tmp_path / "in-tmp.txt", "w").close()
    open("/dev/null").close()                          # our pid, outside the prefix
    event = t.wait_for(lambda e: e["file"].endswith("in-tmp.txt"))
    assert event["file"] == str(tmp_path / "in-tmp.txt") and event["pid"] == os.getpid()
    assert t.stop() == 0
    assert all(e["file"].startswith("/tmp/") and e["pid"] == os.getpid() for e in t.events())


@pytest.mark.kernel
@requires_root
def test_open_and_openat2_syscalls_are_reported(tool, tmp_path):
    """open(2) (where the architecture has it) and openat2(2), not only openat(2)."""
    with_open = has_tracepoint("sys_enter_open") and os.uname().machine == "x86_64"
    t = tool("opensnoop", "--path", f"{tmp_path}/")
    via_open, via_openat2 = tmp_path / "via-open", tmp_path / "via-openat2"
    via_open.write_text("x")
    via_openat2.write_text("x")
    child = Child(f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
if {with_open}:
    fd = libc.syscall(2, {str(via_open).encode()!r}, os.O_RDONLY)       # __NR_open (x86_64)
    assert fd >= 0, ctypes.get_errno()
    os.close(fd)
how = (ctypes.c_uint64 * 3)(os.O_RDONLY, 0, 0)                          # struct open_how
fd = libc.syscall(437, -100, {str(via_openat2).encode()!r}, ctypes.byref(how), 24)
assert fd >= 0, ctypes.get_errno()                                      # __NR_openat2, AT_FDCWD
os.close(fd)
""")
    try:
        wanted = {str(via_openat2)} | ({str(via_open)} if with_open else set())
        seen = set()
        while seen != wanted:
            seen.add(t.wait_for(lambda e: e["pid"] == child.pid and e["file"] in wanted)["file"])
    finally:
        child.stop()
    assert t.stop() == 0


@pytest.mark.kernel
@requires_root
def test_relative_names_are_resolved_and_filtered_in_user_space(tool, tmp_path):
    watched, other = tmp_path / "watched", tmp_path / "other"
    watched.mkdir()
    other.mkdir()
    for d in (watched, other):
        (d / "secret").write_text("x")
    (watched / "by-dirfd").write_text("x")
    t = tool("opensnoop", "--path", f"{watched}/")
    # cwd in the prefix; a ../ name into it from elsewhere; a dirfd into it; and a
    # relative open outside the prefix, which user space must filter out.
    inside = Child("open('secret').close()", cwd=str(watched))
    climbing = Child("open('../watched/secret').close()\nopen('secret').close()", cwd=str(other))
    by_dirfd = Child(f"""
import os
d = os.open({str(watched)!r}, os.O_RDONLY | os.O_DIRECTORY)
os.close(os.open("by-dirfd", os.O_RDONLY, dir_fd=d))                    # openat(d, ...)
""")
    try:
        for child, name in ((inside, "secret"), (climbing, "secret"), (by_dirfd, "by-dirfd")):
            event = t.wait_for(lambda e: e["pid"] == child.pid and e["file"].endswith(name))
            assert event["file"] == str(watched / name)
    finally:
        for child in (inside, climbing, by_dirfd):
            child.stop()
    assert t.stop() == 0
    leaked = [e for e in t.events() if e["file"] == str(other / "secret")]
    assert leaked == []


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("json_mode", [True, False])
def test_file_names_that_are_not_utf8(tool, tmp_path, monkeypatch, json_mode):
    monkeypatch.setenv("PYTHONIOENCODING", "utf-8")    # strict, as in a UTF-8 locale
    t = tool("opensnoop", "--path", f"{tmp_path}/", json_mode=json_mode)
    name = os.fsencode(tmp_path) + b"/\xff\xfe"
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
    expected = name.decode("utf-8", "replace")         # what BCC prints
    if json_mode:
        event = t.wait_for(lambda e: e["file"] == expected)
        assert event["pid"] == os.getpid()
        assert t.stop() == 0
        assert not any(0xD800 <= ord(c) < 0xE000 for c in "".join(t.stdout))  # valid Unicode
    else:
        deadline = time.monotonic() + 10
        while not any(expected in line for line in t.stdout) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert t.stop() == 0, t.stderr
        assert any(expected in line and str(os.getpid()) in line for line in t.stdout), t.stdout
    assert "codec" not in "".join(t.stderr)


@pytest.mark.kernel
@requires_root
def test_prefix_that_is_not_utf8(tool, tmp_path):
    raw_dir = os.fsencode(tmp_path) + b"/\xff-dir"
    os.mkdir(raw_dir)
    # A non-UTF-8 argument reaches the tool as these bytes; os.fsdecode is what Python
    # makes of them in sys.argv.
    t = tool("opensnoop", "--path", os.fsdecode(raw_dir + b"/"))
    os.close(os.open(raw_dir + b"/f", os.O_CREAT | os.O_WRONLY, 0o600))
    event = t.wait_for(lambda e: e["file"].endswith("-dir/f"))
    assert event["file"] == (raw_dir + b"/f").decode("utf-8", "replace")
    assert t.stop() == 0


def test_too_long_prefix_is_a_usage_error(tool):
    t = tool("opensnoop", "--path", "/" + "x" * 300, ready=False)
    assert t.finish() == 2
    err = "".join(t.stderr)
    assert err.startswith("usage: pybpf tool opensnoop")
    assert "the prefix is 301 bytes long; at most 255 bytes fit" in err


def test_prefix_bytes_and_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert opensnoop.prefix_bytes("/etc/") == b"/etc/"
    assert opensnoop.prefix_bytes(os.fsdecode(b"/tmp/\xff")) == b"/tmp/\xff"
    assert opensnoop.prefix_bytes("") == b""
    assert opensnoop.prefix_bytes("sub/") == os.fsencode(tmp_path) + b"/sub/"
    assert opensnoop.prefix_bytes("./a/../b") == os.fsencode(tmp_path) + b"/b"
    me = os.getpid()
    assert opensnoop.resolve(me, opensnoop.AT_FDCWD, b"x/../y") == os.fsencode(tmp_path) + b"/y"
    assert opensnoop.resolve(me, 12345, b"y") == b"y"                 # no such fd: unchanged
    assert opensnoop.resolve(me, opensnoop.AT_FDCWD, b"/abs") == b"/abs"
    r, w = os.pipe()
    try:
        assert opensnoop.resolve(me, r, b"y") == b"y"                  # "pipe:[...]"
    finally:
        os.close(r)
        os.close(w)
