"""What every tool shares: options, the root check, the run loop and output.

Tools print like their BCC namesakes; ``--json`` switches to one JSON object
per event (one per line), which is what scripts and tests read.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Callable, Iterable

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def parser(name: str, description: str, *, pid: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"pybpf tool {name}", description=description)
    if pid:
        p.add_argument("-p", "--pid", type=int, help="trace this process id only")
    p.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.add_argument("-d", "--duration", type=float, help="stop after this many seconds")
    return p


def _effective_caps() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def require_root(name: str) -> None:
    """Exit with a clear message when the process cannot load tracing programs."""
    caps = _effective_caps()
    if caps >> CAP_SYS_ADMIN & 1 or (caps >> CAP_BPF & 1 and caps >> CAP_PERFMON & 1):
        return
    print(f"{name}: must be run as root: it loads eBPF programs into the kernel, which needs "
          f"CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN). Try: sudo pybpf tool {name}",
          file=sys.stderr)
    raise SystemExit(1)


class Stop:
    """Turns SIGINT/SIGTERM and ``--duration`` into a flag the poll loop checks."""

    def __init__(self, duration: float | None):
        self.deadline = None if duration is None else time.monotonic() + duration
        self.signalled = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signalled = True

    def __bool__(self) -> bool:
        return self.signalled or (self.deadline is not None and time.monotonic() >= self.deadline)

    def remaining(self, cap: float = 0.2) -> float:
        if self.deadline is None:
            return cap
        return max(0.0, min(cap, self.deadline - time.monotonic()))

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def run_loop(duration: float | None, poll: Callable[[float], object]) -> None:
    """Call ``poll(timeout)`` until the duration ends or SIGINT/SIGTERM arrives."""
    stop = Stop(duration)
    try:
        while not stop:
            poll(stop.remaining())
    finally:
        stop.restore()


class Output:
    """Prints events as a BCC-style table or as JSON lines, flushing each line."""

    def __init__(self, as_json: bool, columns: Iterable[tuple[str, str]]):
        self.as_json = as_json
        self.columns = list(columns)  # (key, header format such as "%-7s")
        self._fmt = " ".join(f for _, f in self.columns) + "\n"

    def header(self) -> None:
        if not self.as_json:
            self._write(self._fmt % tuple(k.upper() for k, _ in self.columns))

    def event(self, row: dict) -> None:
        if self.as_json:
            import json  # only JSON mode pays for it
            self._write(json.dumps(row) + "\n")
        else:
            self._write(self._fmt % tuple(row[k] for k, _ in self.columns))

    @staticmethod
    def _write(line: str) -> None:
        # One write and a flush per line: print() writes the text and its newline
        # separately, two syscalls when stdout is unbuffered (PYTHONUNBUFFERED).
        out = sys.stdout
        out.write(line)
        out.flush()


def comm_str(raw: bytes) -> str:
    """A task's 16-byte comm as text (NUL-terminated, undecodable bytes replaced)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def tool_pid_filter(pid: int | None) -> int:
    """The tgid a program should filter on (0 = no filter), excluding the tool itself by default."""
    return pid or 0


def own_pid() -> int:
    return os.getpid()


def add_attach_option(p: argparse.ArgumentParser) -> None:
    """``--attach auto|kprobe|tracepoint``: auto picks kprobes where the kernel has them."""
    p.add_argument("--attach", choices=("auto", "kprobe", "tracepoint"), default="auto",
                   help="attach point: kprobe where the kernel has kprobes (auto), else the "
                        "matching tracepoint")


def run_until_stopped(stop: "Stop", poll: Callable[[float], object]) -> None:
    """Poll until ``stop`` is set (SIGINT/SIGTERM or the duration's end), then restore handlers."""
    try:
        while not stop:
            poll(stop.remaining())
    finally:
        stop.restore()
