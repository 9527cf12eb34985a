"""Running a tool as a subprocess, waiting until it is attached, reading its JSON lines.

Every tool prints ``Tracing ... Hit Ctrl-C to end.`` on stderr once all its
probes are attached: that line is the "ready" signal. Events are JSON lines
on stdout (``--json``).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

READY = "Hit Ctrl-C to end."


def is_root() -> bool:
    return os.geteuid() == 0


def kprobes_supported() -> bool:
    from pybpf.link.kprobe import kprobes_supported as supported
    return supported()


ATTACH_MODES = [
    "tracepoint",
    pytest.param("kprobe", marks=pytest.mark.skipif(
        "not __import__('pybpf.link.kprobe', fromlist=['x']).kprobes_supported()",
        reason="this kernel has no kprobes")),
]


def bpf_objects(pid: int) -> tuple[set[int], set[int]]:
    """(link ids, program ids) process ``pid`` holds, from /proc/PID/fdinfo."""
    links, progs = set(), set()
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "link_id":
                links.add(int(value))
            elif key == "prog_id" and "link_type" not in text:
                progs.add(int(value))
    return links, progs


class Tool:
    """``python -m pybpf.tools.NAME --json ARGS`` with stdout/stderr read by threads."""

    def __init__(self, name: str, *args: str, prefix: tuple[str, ...] = (), json_mode: bool = True,
                 module: str | None = None, env: dict[str, str] | None = None):
        cmd = [*prefix, sys.executable, "-m", module or f"pybpf.tools.{name}"]
        if module == "pybpf":
            cmd += ["tool", name]
        cmd += (["--json"] if json_mode else []) + list(args)
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            if READY in line:
                self.ready.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.finish(timeout=5)
                raise AssertionError(f"{self.cmd} not ready (rc={self.proc.returncode}):\n"
                                     f"{''.join(self.stderr)}{''.join(self.stdout)}")

    def events(self, timeout: float = 0.0):
        """Parsed JSON lines as they arrive, until ``timeout`` seconds pass without one."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                return
            line = line.strip()
            if line.startswith("{"):
                yield json.loads(line)

    def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        """The first event matching ``predicate``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            line = line.strip()
            if not line.startswith("{"):
                continue
            seen += 1
            event = json.loads(line)
            if predicate(event):
                return event
        raise AssertionError(f"no matching event in {timeout}s ({seen} events seen); "
                             f"stderr: {''.join(self.stderr)}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 10.0) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for t in self._threads:
            t.join(2)
        return rc

    def bpf_objects(self) -> tuple[set[int], set[int]]:
        """(link ids, program ids) the tool's process holds, from /proc/PID/fdinfo."""
        return bpf_objects(self.pid)

    def __enter__(self) -> "Tool":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish(5)


@pytest.fixture
def tool():
    """Factory: ``tool(name, *args)`` starts a tool and waits until it is attached."""
    started: list[Tool] = []

    def start(name: str, *args: str, ready: bool = True, **kw) -> Tool:
        t = Tool(name, *args, **kw)
        started.append(t)
        if ready:
            t.wait_ready()
        return t

    yield start
    for t in started:
        if t.proc.poll() is None:
            t.proc.kill()
        t.finish(5)


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (loads BPF programs)")
