"""Ending a tool whose output nobody reads, or that has no output at all.

A tool writing to a full pipe (``tool | slow-reader`` where the reader
stopped reading) is blocked inside write(). SIGINT, SIGTERM and ``--duration``
must still end it, with everything detached. The pipe here is shrunk to one
page, so a few dozen events fill it.
"""

import errno
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from toolkit import READY, bpf_objects, requires_root

pytestmark = [pytest.mark.kernel, requires_root]

F_SETPIPE_SZ = 1031
INSTANCES = "/sys/kernel/tracing/instances"


class Blocked:
    """``python -m pybpf.tools.NAME --json ARGS`` with stdout a one-page pipe never read."""

    def __init__(self, name: str, *args: str):
        self.read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
        self.proc = subprocess.Popen([sys.executable, "-m", f"pybpf.tools.{name}", "--json", *args],
                                     stdout=write_end, stderr=subprocess.PIPE, text=True)
        os.close(write_end)
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read_err, daemon=True)
        self._reader.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            if READY in line:
                self.ready.set()

    def wchan(self) -> str:
        try:
            with open(f"/proc/{self.proc.pid}/wchan") as f:
                return f.read()
        except OSError:
            return ""

    def block(self, timeout: float = 20.0) -> None:
        """Wait until attached, then exec /bin/true in a loop until the tool blocks writing."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                f"not ready: {''.join(self.stderr)}"
        execs = subprocess.Popen(["sh", "-c", "while :; do /bin/true; done"])
        try:
            while "pipe_write" not in self.wchan():
                assert self.proc.poll() is None, f"exited before blocking: {''.join(self.stderr)}"
                assert time.monotonic() < deadline, f"never blocked (wchan {self.wchan()!r})"
                time.sleep(0.01)
            time.sleep(0.05)
            assert "pipe_write" in self.wchan()  # still blocked: nobody reads
        finally:
            execs.kill()
            execs.wait()

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None (and the tool killed) if it did not end in ``timeout`` s."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(2)
        os.close(self.read_end)


@pytest.fixture
def blocked():
    started = []

    def start(name: str, *args: str) -> Blocked:
        started.append(Blocked(name, *args))
        return started[-1]
    yield start
    for b in started:
        b.close()


def assert_detached(links: set[int], pid: int) -> None:
    from pybpf.link import link_ids
    assert links, "the tool held no bpf_link while tracing"
    assert links.isdisjoint(set(link_ids()))
    assert not [d for d in os.listdir(INSTANCES) if d.startswith(f"pybpf_{pid}_")]


@pytest.mark.parametrize("name", ["execsnoop", "hello"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_ends_a_tool_blocked_on_a_full_pipe(blocked, name, sig):
    t = blocked(name)
    t.block()
    links, _ = bpf_objects(t.proc.pid)
    t.proc.send_signal(sig)
    rc = t.wait(10)
    assert rc == 0, f"rc={rc} (None: still blocked in {t.wchan()!r}); {''.join(t.stderr)}"
    assert "Traceback" not in "".join(t.stderr)
    assert_detached(links, t.proc.pid)


def test_duration_ends_a_tool_blocked_on_a_full_pipe(blocked):
    t = blocked("execsnoop", "--duration", "3")
    start = time.monotonic()
    t.block()
    links, _ = bpf_objects(t.proc.pid)
    rc = t.wait(15)
    assert rc == 0, f"rc={rc} (None: still blocked in {t.wchan()!r}); {''.join(t.stderr)}"
    assert time.monotonic() - start < 15
    assert_detached(links, t.proc.pid)


def test_a_burst_of_signals_still_cleans_up(blocked):
    # The first SIGTERM abandons the blocked write; the others land in the clean-up,
    # which must neither die of them (SIGTERM's default action) nor stop half way.
    t = blocked("hello")
    t.block()
    links, _ = bpf_objects(t.proc.pid)
    for _ in range(200):
        if t.proc.poll() is not None:
            break
        t.proc.send_signal(signal.SIGTERM)
        time.sleep(0.0005)
    rc = t.wait(10)
    # 0, or SIGTERM's default action once the handlers are restored after the clean-up
    # (the tracing instance, which outlives the process, shows the clean-up did finish).
    assert rc in (0, -signal.SIGTERM), f"rc={rc}; {''.join(t.stderr)}"
    assert "Traceback" not in "".join(t.stderr)
    assert_detached(links, t.proc.pid)


@pytest.mark.parametrize("name", ["hello", "execsnoop", "readlat", "tcpconnect"])
def test_closed_stdout_is_an_error_before_attaching(name):
    res = subprocess.run(["sh", "-c", f'exec "$0" -m pybpf tool {name} -d 1 >&-', sys.executable],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr == f"{name}: standard output is closed\n"


def test_a_stop_signal_that_interrupts_loading_is_a_clean_exit(capsys):
    # A signal during BPF_PROG_LOAD makes the kernel verifier give up with EAGAIN: the user
    # asked to stop, so that is a clean exit, not an error. Without the signal it is one.
    from pybpf.tools import runtime

    def interrupted(stack):
        os.kill(os.getpid(), signal.SIGINT)  # recorded by the tool's handler
        raise OSError(errno.EAGAIN, "BPF_PROG_LOAD: verifier interrupted")

    def failing(stack):
        raise OSError(errno.EAGAIN, "BPF_PROG_LOAD: verifier interrupted")

    assert runtime.run("t", None, interrupted) == 0
    assert capsys.readouterr().err == ""
    assert runtime.run("t", None, failing) == 1
    assert "verifier interrupted" in capsys.readouterr().err
