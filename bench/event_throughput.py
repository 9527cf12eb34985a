"""Event throughput: records/s that Python consumes from a tracepoint-driven producer.

Producer: a separate process calls getpid(2) in a tight loop (a small C
program compiled here with gcc; a Python loop if gcc is missing) and reports
how long its loop took. A tracepoint program on ``syscalls:sys_enter_getpid``,
filtered on the producer's tgid, emits one 16-byte record per call,
``struct event {u64 seq; u32 cpu; u32 tgid;}``, with ``seq`` from a counter
map (so ``produced`` is exact, and lost = produced - consumed).

Methodology (what each side does per record, all user-visible):

* Every consumer gets each record as a decoded object with fields
  ``seq``, ``cpu``, ``tgid``, counts it, and adds ``seq + tgid`` to a
  checksum. A run is "chk ok" when nothing was lost and the checksum equals
  sum(0..produced-1) + produced * tgid, so no side can skip the decoding.
* BCC (``python3-bpfcc``, the idiomatic consumer): ``open_perf_buffer(cb)`` +
  ``perf_buffer_poll()``, or ``open_ring_buffer(cb)`` + ``ring_buffer_poll()``;
  ``cb`` does ``ev = b["events"].event(data)`` (a ctypes struct over the
  record) and reads ``ev.seq`` and ``ev.tgid``. Both sides finish with the
  library's non-blocking drain (``perf_buffer_consume``/``ring_buffer_consume``,
  ours ``poll(timeout=0)``), so records below a wakeup threshold count.
* pybpf "callback": ``poll(cb)``, records decoded to a namedtuple ``Event``
  (``record_type=(Event, "<QII")``); perf's ``cb`` gets a ``Sample(cpu, data)``
  and reads ``sample.data.seq``. "callback(cpu, data)": perf's
  ``poll(cb, sample=False)`` (no Sample built; BCC's callbacks also get the CPU
  as an argument).
* pybpf "batch": ``poll_batch(on_batch)`` gets a list of ``Event`` per span
  (perf: per CPU ring) and sums the fields with ``sum(map(attrgetter("seq"),
  ...))``: the same objects and checksum, done the way a batch API allows.

Two loads, each consumed by every reader in turn in the same run (compare the
ratios within a run; the 2-core machine is shared and noisy):

* drain: the records are produced first into large buffers (nothing can be
  lost), then consumed: pure consumer speed. The producer's own rate here,
  with nobody consuming, is "the rate one producer core can generate".
* live: the consumer runs while the producer runs flat out, with moderate
  buffers (the same size on both sides). A consumer that keeps up consumes at
  the producer's rate with 0 lost; one that falls behind loses records. If
  BCC keeps up too, both are producer-bound and the live ratio says nothing
  about the consumers (printed with that caveat); if BCC loses records, the
  live ratio of consumed records/s is meaningful.

Records/s = records consumed / (time from the producer's start (live) or from
the end of production (drain) to the last record consumed). Live loops wait at
most 10 ms at a time on both sides, to notice the producer's exit.

The producer is pinned to the first CPU and the consumer to the last (both
sides), so the producer has a core to itself.

"others" is the share of all CPUs that tasks other than the consumer and its
producer used during the run (/proc/stat minus both processes' CPU time). The
machine is shared: another job at 100% of one CPU time-slices with the
producer or the consumer (nice cannot help: autogroup scheduling gives every
session an equal share), the consumer then gets ~55% of its core and falls
behind. Compare live losses only between runs where "others" is near 0%.

Perf wakeups: ours use the default page watermark; BCC has no watermark
option, so it gets ``wakeup_events=64`` (its default of 1 costs the producer an
irq_work per record and slows it ~10x).

BCC runs under /usr/bin/python3 (its bindings live there; also CPython 3.11)
with kernel headers from Debian's linux-headers-amd64, merged into one tree;
this script installs and prepares all of that itself. If BCC cannot be set
up, it says why and still prints pybpf's figures.

    python bench/event_throughput.py [--records N] [--drain-records N] [--no-bcc]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from operator import attrgetter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "link"))

PRODUCER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char c;
    struct timespec t0, t1;
    if (read(0, &c, 1) != 1) return 2;   /* start when the consumer is ready */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.9f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
"""
PRODUCER_PY = ("import os,sys,time\nn=int(sys.argv[1]);sys.stdin.read(1)\nt=time.monotonic()\n"
               "for _ in range(n): os.getpid()\nprint(time.monotonic()-t)\n")

# drain: everything a run produces fits (nothing can be lost).
BIG_RINGBUF = 1 << 25  # 32 MiB
BIG_PERF_PAGES = 4096  # 16 MiB per CPU
# live defaults: moderate buffers, the same for both sides.
LIVE_RINGBUF = 1 << 22  # 4 MiB
LIVE_PERF_PAGES = 256  # 1 MiB per CPU
BCC_PERF_WAKEUP = 64

Event = namedtuple("Event", "seq cpu tgid")
# Read once at start: pin() narrows this process to one CPU for a run, and a later run
# (or the BCC subprocess, which inherits our affinity) must not take that one CPU as
# all there is, or producer and consumer end up sharing it.
CPUS = sorted(os.sched_getaffinity(0))


def build_producer(workdir: str) -> list[str]:
    if shutil.which("gcc"):
        src = os.path.join(workdir, "producer.c")
        exe = os.path.join(workdir, "producer")
        with open(src, "w") as f:
            f.write(PRODUCER_C)
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
        return [exe]
    return [sys.executable, "-c", PRODUCER_PY]


def start_producer(cmd: list[str], n: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd + [str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pin(proc.pid)
    return proc


def pin(producer_pid: int) -> None:
    """Producer on the first CPU, consumer (this process) on the last: one core each, as the
    goal says, instead of the scheduler's wake-affine placing both on one core at times."""
    if len(CPUS) > 1:  # the CPUs we started with: after one run our own affinity is one CPU
        os.sched_setaffinity(producer_pid, {CPUS[0]})
        os.sched_setaffinity(0, {CPUS[-1]})


def producer_seconds(proc: subprocess.Popen) -> float:
    out = proc.stdout.read()
    proc.wait()
    return float(out.split()[-1])


def busy_seconds() -> float:
    """CPU seconds all CPUs spent running anything (from /proc/stat; steal excluded)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and its reaped children (the producer, once polled)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# --------------------------------------------------------------------------- pybpf
def run_pybpf(kind: str, api: str, producer_cmd: list[str], n: int, mode: str, size: int) -> dict:
    """One run: ``size`` is the ring buffer's bytes or the perf buffer's pages per CPU."""
    from attachkit import seq_producer
    from pybpf.link import attach_tracepoint
    from pybpf.maps import Map, MapSpec, MapType
    from pybpf.perf import PerfReader
    from pybpf.program import Program, ProgramSpec, ProgType
    from pybpf.ringbuf import RingBuffer

    counter = Map(MapSpec(MapType.ARRAY, 4, 8, 1, key="I"))
    record_type = (Event, "<QII")
    if kind == "ringbuf":
        out = Map(MapSpec(MapType.RINGBUF, 0, 0, size))
        reader = RingBuffer(out, record_type=record_type)
    else:
        out = Map(MapSpec(MapType.PERF_EVENT_ARRAY, 4, 4, os.cpu_count(), key="I"))
        reader = PerfReader(out, pages=size, record_type=record_type)
    proc = start_producer(producer_cmd, n)
    prog = Program.load(ProgramSpec(seq_producer(counter, out, proc.pid, kind=kind), ProgType.TRACEPOINT),
                        verify=False)
    got = chk = 0

    def on_event(ev) -> None:  # ring buffer: the decoded Event
        nonlocal got, chk
        got += 1
        chk += ev.seq + ev.tgid

    def on_sample(sample) -> None:  # perf: Sample(cpu, Event)
        nonlocal got, chk
        ev = sample.data
        got += 1
        chk += ev.seq + ev.tgid

    def on_cpu_event(cpu, ev) -> None:  # perf, sample=False
        nonlocal got, chk
        got += 1
        chk += ev.seq + ev.tgid

    seq, tgid = attrgetter("seq"), attrgetter("tgid")

    def on_batch(*args) -> None:  # (records) or (cpu, records)
        nonlocal got, chk
        records = args[-1]
        got += len(records)
        chk += sum(map(seq, records)) + sum(map(tgid, records))

    if api == "batch":
        poll = lambda timeout: reader.poll_batch(on_batch, timeout)  # noqa: E731
    elif api == "callback(cpu, data)":
        poll = lambda timeout: reader.poll(on_cpu_event, timeout, sample=False)  # noqa: E731
    else:
        cb = on_event if kind == "ringbuf" else on_sample
        poll = lambda timeout: reader.poll(cb, timeout)  # noqa: E731

    with attach_tracepoint(prog, "syscalls:sys_enter_getpid"):
        t0 = time.perf_counter()
        proc.stdin.write(b"g")
        proc.stdin.close()
        if mode == "drain":  # the backlog is all there before consuming starts
            prod_s = producer_seconds(proc)
            t0 = time.perf_counter()
        cpu0 = time.process_time()
        busy0, own0 = busy_seconds(), own_seconds()
        last = t0  # when the last record was consumed (not when an idle wait timed out)
        while mode == "live" and proc.poll() is None:
            if poll(0.01):
                last = time.perf_counter()
        while poll(0):  # the rest, below any wakeup threshold too
            last = time.perf_counter()
        elapsed = last - t0
        cpu = time.process_time() - cpu0
        others = (busy_seconds() - busy0) - (own_seconds() - own0)
    if mode == "live":
        prod_s = producer_seconds(proc)
    produced = struct.unpack_from("<Q", counter.lookup(0))[0]
    lost = reader.lost if kind == "perf" else produced - got
    reader.close()
    prog.close()
    out.close()
    counter.close()
    os.sched_setaffinity(0, CPUS)  # the next run (and BCC's subprocess) starts from all CPUs
    where = f"{size >> 10} KiB" if kind == "ringbuf" else f"{size} pages/CPU, page watermark"
    return result(f"pybpf {kind} {api}", where, produced, got, chk, proc.pid, elapsed, cpu, prod_s, lost,
                  others)


def result(label: str, buffer: str, produced: int, got: int, chk: int, tgid: int, elapsed: float,
           cpu: float, prod_s: float, lost: int, others: float) -> dict:
    ok = None if got != produced else chk == produced * (produced - 1) // 2 + produced * tgid
    return {"consumer": label, "buffer": buffer, "produced": produced, "consumed": got, "lost": lost,
            "checksum_ok": ok, "seconds": elapsed, "rate": got / elapsed, "consumer_cpu_s": cpu,
            "producer_rate": produced / prod_s,
            "others_cpu_s": max(others, 0.0)}


# ----------------------------------------------------------------------------- BCC
BCC_SCRIPT = r"""
import ctypes, json, os, subprocess, sys, time
from bcc import BPF

kind, n, mode, size, wakeup, producer = (sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]),
                                         int(sys.argv[5]), sys.argv[6:])
proc = subprocess.Popen(producer + [str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
cpus = sorted(os.sched_getaffinity(0))
if len(cpus) > 1:  # as pin() does for pybpf
    os.sched_setaffinity(proc.pid, {cpus[0]})
    os.sched_setaffinity(0, {cpus[-1]})
text = '''
struct event { u64 seq; u32 cpu; u32 tgid; };
BPF_ARRAY(counter, u64, 1);
%s
TRACEPOINT_PROBE(syscalls, sys_enter_getpid) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (tgid != TGID) return 0;
    int zero = 0;
    u64 *c = counter.lookup(&zero);
    if (!c) return 0;
    struct event e = {};
    e.seq = __sync_fetch_and_add(c, 1);
    e.cpu = bpf_get_smp_processor_id();
    e.tgid = tgid;
    %s
    return 0;
}
'''
if kind == "ringbuf":
    text = text % ("BPF_RINGBUF_OUTPUT(events, %d);" % (size // 4096),
                   "events.ringbuf_output(&e, sizeof(e), 0);")
else:
    text = text % ("BPF_PERF_OUTPUT(events);", "events.perf_submit(args, &e, sizeof(e));")
b = BPF(text=text.replace("TGID", str(proc.pid)))
got = chk = lost = 0
def cb(cpu_or_ctx, data, size):  # what BCC's documentation and tools do
    global got, chk
    ev = b["events"].event(data)
    got += 1
    chk += ev.seq + ev.tgid
def lost_cb(count):
    global lost
    lost += count
if kind == "ringbuf":
    b["events"].open_ring_buffer(cb)
    poll = lambda: b.ring_buffer_poll(10)
    consume = b.ring_buffer_consume
else:
    b["events"].open_perf_buffer(cb, page_cnt=size, lost_cb=lost_cb, wakeup_events=wakeup)
    poll = lambda: b.perf_buffer_poll(10)
    consume = b.perf_buffer_consume
t0 = time.perf_counter()
proc.stdin.write(b"g"); proc.stdin.close()
if mode == "drain":
    prod_s = float(proc.stdout.read().split()[-1])
    t0 = time.perf_counter()
def busy_seconds():
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
def own_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
cpu0 = time.process_time()
busy0, own0 = busy_seconds(), own_seconds()
last = t0  # when the last record was consumed (not when an idle wait timed out)
while mode == "live" and proc.poll() is None:
    before = got
    poll()
    if got != before:
        last = time.perf_counter()
before = -1
while got != before:  # the rest, below any wakeup threshold too
    before = got
    consume()
    if got != before:
        last = time.perf_counter()
elapsed = last - t0
cpu = time.process_time() - cpu0
others = (busy_seconds() - busy0) - (own_seconds() - own0)
if mode == "live":
    prod_s = float(proc.stdout.read().split()[-1])
proc.wait()
produced = b["counter"][ctypes.c_int(0)].value
if kind == "ringbuf":
    lost = produced - got
print(json.dumps({"produced": produced, "consumed": got, "chk": chk, "lost": lost, "tgid": proc.pid,
                  "seconds": elapsed, "cpu": cpu, "prod_s": prod_s, "others": others}))
"""


def setup_bcc() -> tuple[dict | None, str]:
    """Install BCC and kernel headers if needed; returns (env for BCC, "") or (None, why not)."""
    py = "/usr/bin/python3"
    if not os.path.exists(py):
        return None, "/usr/bin/python3 does not exist (BCC's bindings need the distribution's Python)"
    have = subprocess.run([py, "-c", "import bcc"], capture_output=True).returncode == 0
    headers = sorted(glob.glob("/usr/src/linux-headers-*-amd64"))
    if not have or not headers:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        steps = [["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "bpfcc-tools", "python3-bpfcc", "linux-headers-amd64"]]
        for cmd in steps:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode:
                return None, f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()[-400:]}"
        headers = sorted(glob.glob("/usr/src/linux-headers-*-amd64"))
    if not headers:
        return None, "linux-headers-amd64 installed no /usr/src/linux-headers-*-amd64 tree"
    amd64 = headers[-1]
    common = amd64[:-len("-amd64")] + "-common"
    merged = os.path.join(tempfile.gettempdir(), "pybpf-bench-kernel-src", os.path.basename(amd64))
    if not os.path.exists(os.path.join(merged, "Makefile")):
        os.makedirs(merged, exist_ok=True)
        for src in (common, amd64):  # -amd64 (generated headers, config) overrides -common
            if os.path.isdir(src):
                subprocess.run(["cp", "-asf", src + "/.", merged], check=True, capture_output=True)
    env = dict(os.environ, BCC_KERNEL_SOURCE=merged)
    env.pop("PYTHONPATH", None)
    return env, ""



def run_bcc(kind: str, producer_cmd: list[str], n: int, mode: str, size: int,
            env: dict) -> tuple[dict | None, str]:
    r = subprocess.run(["/usr/bin/python3", "-c", BCC_SCRIPT, kind, str(n), mode, str(size),
                        str(BCC_PERF_WAKEUP)] + producer_cmd,
                       capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        return None, f"BCC {kind} run failed (exit {r.returncode}): {r.stderr.strip()[-600:]}"
    d = json.loads(lines[-1])
    where = f"{size >> 10} KiB" if kind == "ringbuf" else f"{size} pages/CPU, w={BCC_PERF_WAKEUP}"
    return result(f"BCC {kind} callback + .event()", where, d["produced"], d["consumed"], d["chk"],
                  d["tgid"], d["seconds"], d["cpu"], d["prod_s"], d["lost"], d["others"]), ""


def show(row: dict) -> None:
    chk = {None: "n/a", True: "ok", False: "BAD"}[row["checksum_ok"]]
    print(f"  {row['consumer']:<33} {row['rate'] / 1e6:6.3f} M rec/s  consumed {row['consumed']:>8}"
          f"  lost {row['lost']:>7}  chk {chk:<3} {row['seconds']:5.2f} s  consumer CPU "
          f"{row['consumer_cpu_s']:5.2f} s  producer {row['producer_rate'] / 1e6:5.2f} M/s  "
          f"others {row['others_cpu_s'] / (row['seconds'] * (os.cpu_count() or 1)):4.0%}  [{row['buffer']}]")


def compare(mode: str, row: dict, bcc: dict) -> str:
    ratio = row["rate"] / bcc["rate"]
    # Records per second of consumer CPU: steadier than wall time on a shared machine.
    cpu_ratio = (row["consumed"] / max(row["consumer_cpu_s"], 1e-3)) / \
        (bcc["consumed"] / max(bcc["consumer_cpu_s"], 1e-3))
    line = (f"{mode:<5} {row['consumer']:<33} {ratio:5.2f}x BCC  (per consumer CPU s {cpu_ratio:5.2f}x);"
            f" lost {row['lost']} vs BCC {bcc['lost']}")
    if mode == "drain":
        ok = ratio >= 2 and row["lost"] == 0 and row["checksum_ok"]
        return line + f"; goal >= 2x: {'met' if ok else 'NOT met'}"
    if row["lost"] == 0 and bcc["lost"] == 0:
        return line + "; both kept up with the producer: producer-bound, not a consumer comparison"
    if bcc["lost"] and not row["lost"]:
        return line + "; BCC fell behind the producer, pybpf kept up"
    busy = row["others_cpu_s"] / (row["seconds"] * (os.cpu_count() or 1))
    if busy >= 0.1:  # another job took part of the producer's or the consumer's core
        return line + f"; pybpf fell behind the producer while other tasks used {busy:.0%} of the CPUs"
    return line + "; pybpf fell behind the producer"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="getpid calls per live run")
    ap.add_argument("--drain-records", type=int, default=300_000, help="getpid calls per drain run")
    ap.add_argument("--live-ringbuf-kib", type=int, default=LIVE_RINGBUF >> 10,
                    help="ring buffer size in live runs (both sides)")
    ap.add_argument("--live-perf-pages", type=int, default=LIVE_PERF_PAGES,
                    help="perf buffer pages per CPU in live runs (both sides)")
    ap.add_argument("--kinds", default="ringbuf,perf", help="comma-separated: ringbuf, perf")
    ap.add_argument("--modes", default="drain,live", help="comma-separated: drain, live")
    ap.add_argument("--no-bcc", action="store_true", help="skip the BCC baseline")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (bpf(2), tracepoints)")
        return 1
    all_cpus = os.sched_getaffinity(0)
    try:
        with tempfile.TemporaryDirectory() as work:
            return measure(args, build_producer(work))
    finally:
        os.sched_setaffinity(0, all_cpus)


def measure(args: argparse.Namespace, producer: list[str]) -> int:
    apis = {"ringbuf": ["callback", "batch"], "perf": ["callback", "callback(cpu, data)", "batch"]}
    print(f"producer: {' '.join(producer)}; {os.cpu_count()} CPUs; every consumer decodes each "
          f"record into an object with fields and checksums seq + tgid (see the docstring)")
    env, why = (None, "--no-bcc given") if args.no_bcc else setup_bcc()
    if env is None:
        print(f"BCC baseline unavailable: {why}")
    summary = []
    for mode in args.modes.split(","):
        n = args.drain_records if mode == "drain" else args.records
        print(f"\n{mode}: " + (f"{n} records produced first into large buffers, then consumed "
                               "(consumer speed; 'producer' = its rate with nobody consuming)"
                               if mode == "drain" else
                               f"{n} records consumed while the producer runs flat out"))
        for kind in args.kinds.split(","):
            if mode == "drain":
                size = BIG_RINGBUF if kind == "ringbuf" else BIG_PERF_PAGES
            else:
                size = args.live_ringbuf_kib << 10 if kind == "ringbuf" else args.live_perf_pages
            rows = []
            for api in apis[kind]:
                rows.append(run_pybpf(kind, api, producer, n, mode, size))
                show(rows[-1])
            if env is None:
                continue
            bcc, err = run_bcc(kind, producer, n, mode, size, env)
            if bcc is None:
                print("  " + err)
                continue
            show(bcc)
            summary += [compare(mode, row, bcc) for row in rows]
    if summary:
        print("\nratios (pybpf / BCC records/s, same run)")
        for line in summary:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
