"""Time to first event: pybpf's execsnoop/opensnoop against bpftrace and BCC.

For each tool and implementation: start the process, keep triggering the
event (exec /bin/true, or open a marker file, every 2 ms), and measure the
wall time from process start until the first event line appears on its
stdout, and the CPU time the process had used by then (summed over its
threads from /proc/PID/task/*/schedstat, read when the line arrives); then
SIGINT it and read its total CPU time and peak RSS (``wait4`` rusage).
Several runs each, the implementations interleaved run by run so that a
burst of load hits all of them alike; medians, ratios and the goals are
printed.

pybpf is run the two ways users run it: ``python -m pybpf.tools.NAME``
(``pybpf``) and the installed console script ``pybpf tool NAME``
(``pybpf-cli``; the script pip wrote next to the interpreter, not a pyenv
shim, which would add a bash and pyenv start-up of its own). A
``python -c pass`` row shows what any Python program pays here before its
first line runs (the interpreter, and ``site`` with the environment's .pth
files); it is part of pybpf's figures, as it is for every Python tool.

By default those rows run in a venv that the setup below makes afresh from
this checkout (``python -m venv`` and a non-editable ``pip install .``,
what the README's main job gives a user). ``--interpreter self`` measures
the interpreter running this script instead: a developer's environment,
whose .pth files (an editable install's import finder, a sandbox's
certificate hook) site runs in every process, tens of milliseconds that
are that environment's, not pybpf's. ``--python NAME=PATH`` adds the same
rows for another interpreter (``pybpf[NAME]``, ``pybpf-cli[NAME]``,
``floor[NAME]``), with its own ``python -c pass`` row. Each interpreter's
pybpf location is printed.

A ``floor`` row (execsnoop only) runs ``bench/floor_execsnoop.py``: the same
tool written by hand with ctypes and no pybpf, the least any Python program
pays here for this job; pybpf's distance from it is what pybpf itself costs.

Goal: pybpf's first event in at most half of bpftrace's time and a tenth of
BCC's.

    python bench/startup.py [--runs 5] [--no-install] [--only pybpf,pybpf-cli,bpftrace]
                            [--interpreter venv|self] [--python NAME=/path/to/python]

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
from typing import NamedTuple

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


def console_script(python: str = sys.executable) -> str:
    """The ``pybpf`` script pip installed beside ``python`` (else the one on PATH)."""
    beside = os.path.join(os.path.dirname(python), "pybpf")
    return beside if os.access(beside, os.X_OK) else (shutil.which("pybpf") or beside)


#: The hand-written execsnoop with no pybpf (see its docstring): the floor for any Python tool.
FLOOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_execsnoop.py")

#: Interpreters whose pybpf is measured: "" is the default rows' (see ``--interpreter``).
PYTHONS: dict[str, str] = {"": sys.executable}

#: The default rows' venv, made anew by every run from this checkout.
VENV = "/tmp/pybpf-bench-venv"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def commands(tool: str) -> dict[str, list[str]]:
    cmds = {}
    for name, py in PYTHONS.items():
        tag = f"[{name}]" if name else ""
        cmds["pybpf" + tag] = [py, "-m", f"pybpf.tools.{tool}"]
        cmds["pybpf-cli" + tag] = [console_script(py), "tool", tool]
        if tool == "execsnoop":
            cmds["floor" + tag] = [py, FLOOR]
    cmds["bpftrace"] = ["bpftrace", "-e", BPFTRACE[tool]]
    cmds["bcc"] = ["/usr/bin/python3", "-c",
                   BCC_EXECSNOOP if tool == "execsnoop" else BCC_OPENSNOOP]
    return cmds


def where_pybpf(python: str) -> str:
    """Where ``python`` imports pybpf from, and whether through an editable-install finder."""
    code = ("import sys, pybpf; print(pybpf.__path__[0], "
            "any('editable' in m for m in sys.modules))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd="/",
                         env=os.environ)
    if out.returncode:
        return "pybpf not importable"
    path, editable = out.stdout.split()
    return path + (" (editable-install finder loaded by site)" if editable == "True" else "")


# ----------------------------------------------------------------------- setup
def make_venv() -> str:
    """A fresh venv with this checkout installed as a user installs it; returns its python.

    ``--clear`` and a non-editable install every run: the rows measure the code
    checked out now, with the bytecode pip compiles at install time.
    """
    print(f"setup: python -m venv {VENV} && pip install {ROOT}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    python = os.path.join(VENV, "bin", "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", ROOT], check=True, cwd="/")
    return python


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
    # An installed package has its bytecode compiled (pip does it at install time); a
    # checkout run with PYTHONDONTWRITEBYTECODE would recompile every module at every start
    # instead. So let the runs use and write caches as an ordinary install does, and compile
    # a checkout's pybpf once, as pip would (--interpreter self; same interpreter, default
    # timestamp checks). Nothing else is warmed: the first run of each implementation is
    # timed like the others.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return missing


def compile_checkout() -> None:
    """Byte-compile the pybpf that this interpreter imports (see the end of :func:`setup`)."""
    import compileall
    import pybpf
    compileall.compile_dir(os.path.dirname(pybpf.__file__), quiet=1)


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
def task_cpu(pid: int) -> float | None:
    """CPU seconds used so far by every thread of ``pid`` (schedstat: nanoseconds on CPU)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # the thread exited meanwhile
    except OSError:
        return None
    return total / 1e9


class Result(NamedTuple):
    first: float | None     # seconds from start to the first event line
    cpu_first: float | None  # CPU seconds used by then
    cpu_total: float         # user + system CPU of the whole run, teardown included
    rss_kib: int
    stderr: str


def first_event(cmd: list[str], timeout: float = 120.0) -> Result:
    """Start ``cmd``, wait for its first event line, stop it; see :class:`Result`.

    The CPU times say what the wall time means on a loaded machine, where a
    process waits for a core.
    """
    start = time.monotonic()
    # cwd: not the checkout, whose pybpf ``python -m`` would import instead of the installed one
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ, start_new_session=True, cwd=MARKER_DIR)
    seen = cpu_first = None
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
                    cpu_first = task_cpu(proc.pid)
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
    return Result(seen, cpu_first, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
                  err.decode(errors="replace")[-400:])


def python_startup(runs: int, python: str = sys.executable) -> tuple[float, float]:
    """Median wall and CPU seconds of ``python -c pass``: the interpreter and site alone."""
    wall, cpu = [], []
    for _ in range(runs):
        t = time.monotonic()
        proc = subprocess.Popen([python, "-c", "pass"], env=os.environ)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        wall.append(time.monotonic() - t)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(wall), statistics.median(cpu)


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
    p.add_argument("--only", default="pybpf,pybpf-cli,floor,bpftrace,bcc")
    p.add_argument("--period", type=float, default=2.0,
                   help="milliseconds between triggered events (the first event waits for the "
                        "next trigger: half a period on average, for every implementation; "
                        "with 10 ms, medians jump in 10 ms steps)")
    p.add_argument("--tools", default="execsnoop,opensnoop")
    p.add_argument("--interpreter", choices=("venv", "self"), default="venv",
                   help="the default rows' python: a fresh venv with this checkout installed "
                        "(default), or the one running this script")
    p.add_argument("--python", action="append", default=[], metavar="NAME=PATH",
                   help="also measure the pybpf of this interpreter (rows pybpf[NAME], "
                        "pybpf-cli[NAME], floor[NAME])")
    args = p.parse_args()
    for spec in args.python:
        name, _, path = spec.partition("=")
        if not name or not path:
            p.error(f"--python {spec!r}: expected NAME=PATH")
        PYTHONS[name] = path
    if os.geteuid() != 0:
        print("startup.py: must be run as root", file=sys.stderr)
        return 1
    missing = setup(not args.no_install)
    if args.interpreter == "venv":
        PYTHONS[""] = make_venv()
    else:
        compile_checkout()
    with open("/proc/loadavg") as f:
        print(f"load average: {' '.join(f.read().split()[:3])} on {os.cpu_count()} CPUs "
              "(wall times stretch with load; the CPU column does not)", flush=True)
    impls = [i for i in args.only.split(",") if i]
    for name in PYTHONS:  # the extra interpreters' rows follow the default ones
        if name:
            impls += [f"{i}[{name}]" for i in ("pybpf", "pybpf-cli", "floor") if i in impls]
    for name, py in PYTHONS.items():
        print(f"pybpf{f'[{name}]' if name else ''}: {py} imports {where_pybpf(py)}")
    tools = [t for t in args.tools.split(",") if t]
    results: dict[tuple[str, str], list[Result]] = {}
    failed: set[tuple[str, str]] = set()
    for impl in impls:
        if missing.get(impl):
            print(f"{impl:14s} skipped: {missing[impl]}")
    for tool in tools:
        runnable = [i for i in impls if not missing.get(i) and i in commands(tool)]
        for _ in range(args.runs):
            for impl in runnable:  # interleaved: load bursts hit every implementation alike
                if (tool, impl) in failed:
                    continue
                with Trigger(tool, args.period / 1000):
                    r = first_event(commands(tool)[impl])
                if r.first is None:
                    print(f"{tool:10s} {impl:14s} no event; stderr: {r.stderr.strip()}")
                    failed.add((tool, impl))
                    continue
                results.setdefault((tool, impl), []).append(r)
                time.sleep(0.2)
        for impl in runnable:
            if (tool, impl) in results and (tool, impl) not in failed:
                print(f"{tool:10s} {impl:14s} runs: "
                      + " ".join(f"{r.first * 1000:.0f}" for r in results[(tool, impl)]) + " ms",
                      flush=True)
    print()
    print(f"{'tool':10s} {'impl':14s} {'median ms':>10s} {'min ms':>7s} {'vs pybpf':>9s} "
          f"{'CPU@first':>10s} {'CPU total':>10s} {'RSS MiB':>8s}")
    for name, py in PYTHONS.items():
        py_wall, py_cpu = python_startup(max(args.runs, 5), py)
        label = f"(python{f'[{name}]' if name else ''} -c pass)"
        print(f"{label:25s} {py_wall * 1000:10.0f} {'':7s} {'':9s} "
              f"{py_cpu * 1000:10.0f}   (interpreter + site: paid by every Python tool here)")
    ok = True
    for tool in tools:
        base = results.get((tool, "pybpf"))
        base_med = statistics.median(r.first for r in base) if base else None
        for impl in impls:
            rs = results.get((tool, impl))
            if not rs or (tool, impl) in failed:
                continue
            med = statistics.median(r.first for r in rs)
            ratio = f"{med / base_med:.2f}x" if base_med else "-"
            cpu_first = [r.cpu_first for r in rs if r.cpu_first is not None]
            cf = f"{statistics.median(cpu_first) * 1000:10.0f}" if cpu_first else f"{'-':>10s}"
            print(f"{tool:10s} {impl:14s} {med * 1000:10.0f} {min(r.first for r in rs) * 1000:7.0f} "
                  f"{ratio:>9s} {cf} {statistics.median(r.cpu_total for r in rs) * 1000:10.0f} "
                  f"{max(r.rss_kib for r in rs) / 1024:8.1f}")
        for mine in [i for i in impls if i.startswith(("pybpf", "floor"))]:
            if (tool, mine) not in results or (tool, mine) in failed:
                continue
            pb = statistics.median(r.first for r in results[(tool, mine)])
            for impl, goal in (("bpftrace", 0.5), ("bcc", 0.1)):
                if (tool, impl) in results and (tool, impl) not in failed:
                    other = statistics.median(r.first for r in results[(tool, impl)])
                    met = pb <= goal * other
                    if mine.startswith("pybpf"):  # the floor row is a reference, not a goal
                        ok &= met
                    print(f"  goal {tool}: {mine} <= {goal:g} x {impl}: {pb * 1000:.0f} ms vs "
                          f"{goal * other * 1000:.0f} ms ({pb / other:.2f}x) -> "
                          f"{'met' if met else 'NOT met'}")
    # What pybpf itself costs: its distance from the hand-written floor on the same interpreter.
    for tool in tools:
        for name in PYTHONS:
            tag = f"[{name}]" if name else ""
            floor = results.get((tool, "floor" + tag))
            if not floor or (tool, "floor" + tag) in failed:
                continue
            f_med = statistics.median(r.first for r in floor)
            f_cpu = statistics.median(r.cpu_first for r in floor if r.cpu_first is not None)
            for impl in ("pybpf" + tag, "pybpf-cli" + tag):
                rs = results.get((tool, impl))
                if rs and (tool, impl) not in failed:
                    med = statistics.median(r.first for r in rs)
                    cpu = statistics.median(r.cpu_first for r in rs if r.cpu_first is not None)
                    print(f"  {tool}: {impl} over {'floor' + tag}: {(med - f_med) * 1000:+.0f} ms "
                          f"wall, {(cpu - f_cpu) * 1000:+.0f} ms CPU before the first event")
    shutil.rmtree(MARKER_DIR, ignore_errors=True)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
