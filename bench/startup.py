"""Time to first event: pybpf's execsnoop/opensnoop against bpftrace and BCC.

For each tool and implementation: start the process, keep triggering the
event (exec /bin/true, or open a marker file, every 10 ms), and measure the
wall time from process start until the first event line appears on its
stdout; then SIGINT it and read its peak RSS (``wait4`` rusage). Several runs
each; medians, ratios against pybpf, and the goals are printed.

Goal: pybpf's first event in at most half of bpftrace's time and a tenth of
BCC's.

    python bench/startup.py [--runs 5] [--no-install] [--only pybpf,bpftrace]

Setup (done here, root needed): ``apt-get install bpftrace bpfcc-tools
python3-bpfcc linux-headers-amd64``; BCC needs kernel headers, so the
Debian ``-common`` and ``-amd64`` header folders are merged into one tree with
``cp -as`` and ``BCC_KERNEL_SOURCE`` points at it. BCC runs under
/usr/bin/python3 (its bindings are installed for the system Python). The
BCC and bpftrace programs attach to the same tracepoints as pybpf (this
kernel has no kprobes, which the stock ``execsnoop-bpfcc`` needs).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HEADERS = "/tmp/pybpf-bench-kernel-headers"
MARKER_DIR = tempfile.mkdtemp(prefix="pybpf-bench-")
MARKER = os.path.join(MARKER_DIR, "marker")

BCC_EXECSNOOP = r'''
from bcc import BPF
b = BPF(text="""
struct data_t { u32 pid; char comm[16]; };
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(sched, sched_process_exec) {
    struct data_t d = {};
    d.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&d.comm, sizeof(d.comm));
    events.perf_submit(args, &d, sizeof(d));
    return 0;
}
""")
print("%-7s %s" % ("PID", "COMM"), flush=True)
def show(cpu, data, size):
    e = b["events"].event(data)
    print("%-7d %s" % (e.pid, e.comm.decode()), flush=True)
b["events"].open_perf_buffer(show)
while True:
    try:
        b.perf_buffer_poll()
    except KeyboardInterrupt:
        break
'''

BCC_OPENSNOOP = r'''
from bcc import BPF
b = BPF(text="""
struct data_t { u32 pid; char comm[16]; char fname[256]; };
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_openat) {
    struct data_t d = {};
    d.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&d.comm, sizeof(d.comm));
    bpf_probe_read_user_str(&d.fname, sizeof(d.fname), args->filename);
    events.perf_submit(args, &d, sizeof(d));
    return 0;
}
""")
print("%-7s %-16s %s" % ("PID", "COMM", "FILE"), flush=True)
def show(cpu, data, size):
    e = b["events"].event(data)
    print("%-7d %-16s %s" % (e.pid, e.comm.decode(), e.fname.decode(errors="replace")), flush=True)
b["events"].open_perf_buffer(show)
while True:
    try:
        b.perf_buffer_poll()
    except KeyboardInterrupt:
        break
'''

BPFTRACE = {
    "execsnoop": 'tracepoint:sched:sched_process_exec { printf("%d %s\\n", pid, comm); }',
    "opensnoop": 'tracepoint:syscalls:sys_enter_openat '
                 '{ printf("%d %s %s\\n", pid, comm, str(args->filename)); }',
}

EVENT_LINE = re.compile(r"^\s*\d+\s+\S")   # "PID COMM ..." rows; headers and banners do not match


def commands(tool: str) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "pybpf": [py, "-m", f"pybpf.tools.{tool}"],
        "bpftrace": ["bpftrace", "-e", BPFTRACE[tool]],
        "bcc": ["/usr/bin/python3", "-c", BCC_EXECSNOOP if tool == "execsnoop" else BCC_OPENSNOOP],
    }


# ----------------------------------------------------------------------- setup
def setup(install: bool) -> dict[str, str | None]:
    """Install bpftrace and BCC if missing; build the merged headers tree. Returns why not."""
    missing: dict[str, str | None] = {"bpftrace": None, "bcc": None}
    need = []
    if not shutil.which("bpftrace"):
        need.append("bpftrace")
    if subprocess.run(["/usr/bin/python3", "-c", "import bcc"], capture_output=True).returncode:
        need += ["bpfcc-tools", "python3-bpfcc"]
    if not glob.glob("/usr/src/linux-headers-*-common"):
        need.append("linux-headers-amd64")
    if need and install:
        print(f"setup: apt-get install {' '.join(need)}", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", *need], env=env, check=False,
                       stdout=subprocess.DEVNULL)
    if not shutil.which("bpftrace"):
        missing["bpftrace"] = "bpftrace not installed"
    if subprocess.run(["/usr/bin/python3", "-c", "import bcc"], capture_output=True).returncode:
        missing["bcc"] = "python3-bpfcc not installed"
    common = sorted(glob.glob("/usr/src/linux-headers-*-common"))
    if not common:
        missing["bcc"] = missing["bcc"] or "linux-headers-amd64 not installed"
    elif not os.path.isdir(HEADERS):
        arch = common[-1][:-len("-common")] + "-amd64"
        tmp = HEADERS + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for src in (common[-1], arch):
            if os.path.isdir(src):
                subprocess.run(["cp", "-asf", src + "/.", tmp], check=True)
        os.rename(tmp, HEADERS)
    os.environ["BCC_KERNEL_SOURCE"] = HEADERS
    # An installed package has its bytecode compiled (pip does it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would recompile every module at every start instead.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall
    import pybpf
    compileall.compile_dir(os.path.dirname(pybpf.__file__), quiet=1)
    return missing


# ----------------------------------------------------------------------- triggers
class Trigger:
    """Causes the traced event every ``period`` seconds until stopped."""

    def __init__(self, tool: str, period: float = 0.01):
        self.tool, self.period = tool, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            if self.tool == "execsnoop":
                subprocess.run(["/bin/true"])
            else:
                with open(MARKER, "w"):
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------- measuring
def first_event(cmd: list[str], timeout: float = 120.0) -> tuple[float | None, int, float, str]:
    """(seconds from start to the first event line, peak RSS in KiB, CPU seconds, stderr tail).

    The CPU time (user + system, whole run including teardown) says what the
    wall time means on a loaded machine, where a process waits for a core.
    """
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ, start_new_session=True)
    seen = None
    buf = b""
    err = b""
    deadline = start + timeout
    fds = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
    while seen is None and time.monotonic() < deadline and fds:
        ready, _, _ = select.select(list(fds), [], [], 0.5)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                del fds[fd]
                continue
            if fds[fd] == "err":
                err += chunk
                continue
            buf += chunk
            for line in buf.split(b"\n")[:-1]:
                if EVENT_LINE.match(line.decode(errors="replace")):
                    seen = time.monotonic() - start
                    break
            buf = buf[buf.rfind(b"\n") + 1:]
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        # BCC's Python callback swallows KeyboardInterrupt: give up on a clean exit after 3 s.
        _, status, usage = _wait4(proc, 3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    for f in (proc.stdout, proc.stderr):
        f.close()
    return seen, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, err.decode(errors="replace")[-400:]


def _wait4(proc, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.02)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-install", action="store_true", help="do not apt-get install anything")
    p.add_argument("--only", default="pybpf,bpftrace,bcc")
    p.add_argument("--tools", default="execsnoop,opensnoop")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("startup.py: must be run as root", file=sys.stderr)
        return 1
    missing = setup(not args.no_install)
    with open("/proc/loadavg") as f:
        print(f"load average: {' '.join(f.read().split()[:3])} on {os.cpu_count()} CPUs "
              "(wall times stretch with load; the CPU column does not)", flush=True)
    impls = [i for i in args.only.split(",") if i]
    results: dict[tuple[str, str], tuple[list[float], list[int], list[float]]] = {}
    for tool in args.tools.split(","):
        for impl in impls:
            if missing.get(impl):
                print(f"{tool:10s} {impl:9s} skipped: {missing[impl]}")
                continue
            cmd = commands(tool)[impl]
            times, rss, cpu = [], [], []
            for _ in range(args.runs):
                with Trigger(tool):
                    t, kib, secs, err = first_event(cmd)
                if t is None:
                    print(f"{tool:10s} {impl:9s} no event; stderr: {err.strip()}")
                    break
                times.append(t)
                rss.append(kib)
                cpu.append(secs)
                time.sleep(0.2)
            if times:
                results[(tool, impl)] = (times, rss, cpu)
                print(f"{tool:10s} {impl:9s} runs: " + " ".join(f"{x * 1000:.0f}" for x in times)
                      + " ms", flush=True)
    print()
    print(f"{'tool':10s} {'impl':9s} {'median ms':>10s} {'min ms':>8s} {'vs pybpf':>9s} "
          f"{'CPU ms':>7s} {'peak RSS MiB':>13s}")
    ok = True
    for tool in args.tools.split(","):
        base = results.get((tool, "pybpf"))
        for impl in impls:
            if (tool, impl) not in results:
                continue
            times, rss, cpu = results[(tool, impl)]
            med = statistics.median(times)
            ratio = f"{med / statistics.median(base[0]):.1f}x" if base else "-"
            print(f"{tool:10s} {impl:9s} {med * 1000:10.0f} {min(times) * 1000:8.0f} {ratio:>9s} "
                  f"{statistics.median(cpu) * 1000:7.0f} {max(rss) / 1024:13.1f}")
        if base:
            pb = statistics.median(base[0])
            for impl, goal in (("bpftrace", 0.5), ("bcc", 0.1)):
                if (tool, impl) in results:
                    other = statistics.median(results[(tool, impl)][0])
                    met = pb <= goal * other
                    ok &= met
                    print(f"  goal {tool}: pybpf <= {goal:g} x {impl}: {pb * 1000:.0f} ms vs "
                          f"{goal * other * 1000:.0f} ms -> {'met' if met else 'NOT met'}")
    shutil.rmtree(MARKER_DIR, ignore_errors=True)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
