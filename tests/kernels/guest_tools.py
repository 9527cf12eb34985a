"""In-guest checks of the tools' kprobe path: execsnoop, opensnoop and tcpconnect.

Each tool runs as its own process (``python -m pybpf.tools.NAME --attach
kprobe --json``), exactly as a user runs it; the check waits for the ready
line on stderr (``Tracing ... Hit Ctrl-C to end.``), causes the event itself
and looks for it in the JSON lines on stdout, then stops the tool with SIGINT
and requires a clean exit (status 0: every probe detached).

Python and BTF start-up under TCG take seconds per process, so all three tools
are started together the first time any of these checks runs (two vCPUs
overlap their start-up) and each check then uses its own, already started, tool.

tcpconnect's kretprobe reads ``sk->__sk_common`` fields at offsets taken from
the guest kernel's BTF; its event carrying the right ports and addresses on
6.1 and on 6.12 is what proves those offsets are relocated per kernel.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from guest_lib import Skip, check, need

READY = "Hit Ctrl-C to end."
READY_TIMEOUT = 150.0   # start-up of Python + pybpf + BTF under TCG, three at a time
EVENT_TIMEOUT = 30.0    # from the trigger to the JSON line
STOP_TIMEOUT = 30.0
OPEN_PREFIX = f"/tmp/pybpf-opensnoop-{os.getpid()}/"


class Tool:
    """One tool process, its stdout JSON events and its stderr lines, read by threads."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        self.argv = [sys.executable, "-m", f"pybpf.tools.{name}", "--attach", "kprobe", "--json", *args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.events: list[dict] = []
        self.stdout_other: list[str] = []
        self.stderr: list[str] = []
        self.cond = threading.Condition()
        self.ready_after: float | None = None
        for stream, sink in ((self.proc.stdout, self._out), (self.proc.stderr, self._err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink) -> None:
        for line in stream:
            with self.cond:
                sink(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _out(self, line: str) -> None:
        try:
            self.events.append(json.loads(line))
        except ValueError:
            self.stdout_other.append(line)

    def _err(self, line: str) -> None:
        self.stderr.append(line)
        if READY in line and self.ready_after is None:
            self.ready_after = time.monotonic() - self.started

    def _wait(self, pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not pred()):
                    # one last look: the pumps may still hold buffered lines
                    self.cond.wait(0.5)
                    return pred()
                self.cond.wait(min(left, 0.5))
        return True

    def wait_ready(self) -> None:
        if not self._wait(lambda: self.ready_after is not None, READY_TIMEOUT):
            self.stop()
            raise AssertionError(f"{self.name} did not print {READY!r} within {READY_TIMEOUT:g}s "
                                 f"(exit {self.proc.poll()}); stderr: {self.stderr[-10:]}")

    def wait_event(self, match) -> dict:
        found: list[dict] = []

        def pred():
            found[:] = [e for e in self.events if match(e)]
            return bool(found)

        if not self._wait(pred, EVENT_TIMEOUT):
            self.stop()
            raise AssertionError(f"{self.name}: the expected event did not arrive within "
                                 f"{EVENT_TIMEOUT:g}s; events seen: {self.events[-10:]}; "
                                 f"other output: {self.stdout_other[-5:]}; stderr: {self.stderr[-10:]}")
        return found[0]

    def stop(self) -> int:
        """SIGINT, as Ctrl-C; returns the exit status (kills after STOP_TIMEOUT)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -signal.SIGKILL
        return self.proc.returncode

    def finish(self) -> dict:
        rc = self.stop()
        if rc != 0:
            raise AssertionError(f"{self.name} exited {rc} after SIGINT; stderr: {self.stderr[-10:]}")
        return {"ready_after": round(self.ready_after or 0, 2), "exit": rc,
                "announce": next((ln for ln in self.stderr if READY in ln), "")}


_TOOLS: dict[str, Tool] = {}


@atexit.register
def _stop_all() -> None:
    """A failed check leaves its tool running: stop it before the guest powers off."""
    for tool in _TOOLS.values():
        tool.stop()


def _tool(name: str) -> Tool:
    """The running tool ``name``; the first call starts all three together."""
    need(f"pybpf.tools.{name}")
    if not _TOOLS:
        os.makedirs(OPEN_PREFIX, exist_ok=True)
        for n, args in (("execsnoop", []), ("opensnoop", ["--path", OPEN_PREFIX]), ("tcpconnect", [])):
            try:
                need(f"pybpf.tools.{n}")
            except Skip:
                continue
            _TOOLS[n] = Tool(n, args)
    tool = _TOOLS[name]
    tool.wait_ready()
    return tool


def _comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def _expect(event: dict, **want) -> None:
    wrong = {k: (event.get(k), v) for k, v in want.items() if event.get(k) != v}
    if wrong:
        raise AssertionError(f"event {event}: wrong fields (got, want): {wrong}")


@check
def check_tool_execsnoop_kprobe() -> dict:
    tool = _tool("execsnoop")
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    event = tool.wait_event(lambda e: e.get("pid") == child.pid)
    _expect(event, pid=child.pid, comm="true", uid=0)
    return {"event": event, "want_pid": child.pid, **tool.finish()}


@check
def check_tool_opensnoop_kprobe() -> dict:
    tool = _tool("opensnoop")
    path = OPEN_PREFIX + "opened-by-the-check"
    with open(path, "w"):
        pass
    outside = f"/tmp/pybpf-not-{os.getpid()}"      # outside the --path prefix: must not appear
    with open(outside, "w"):
        pass
    event = tool.wait_event(lambda e: e.get("file") == path)
    _expect(event, pid=os.getpid(), comm=_comm(), file=path)
    time.sleep(0.5)
    leaked = [e for e in tool.events if not str(e.get("file", "")).startswith(OPEN_PREFIX)]
    if leaked:
        raise AssertionError(f"opensnoop --path {OPEN_PREFIX} reported files outside it: {leaked[:5]}")
    return {"event": event, "want_pid": os.getpid(), **tool.finish()}


@check
def check_tool_tcpconnect_kprobe() -> dict:
    tool = _tool("tcpconnect")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            sport = client.getsockname()[1]
            server.accept()[0].close()
    event = tool.wait_event(lambda e: e.get("dport") == port)
    _expect(event, pid=os.getpid(), comm=_comm(), ip=4, saddr="127.0.0.1", daddr="127.0.0.1",
            dport=port, sport=sport)
    offsets = need("pybpf.tools.tcpconnect.sock_offsets")()
    return {"event": event, "want_dport": port, "want_sport": sport, "sock_offsets": offsets,
            **tool.finish()}
