"""Event throughput: records/s that Python consumes from a tracepoint-driven producer.

A separate producer process calls getpid(2) in a tight loop (a small C
program compiled here with gcc; a Python loop if gcc is missing). A
tracepoint program on ``syscalls:sys_enter_getpid``, filtered on the
producer's tgid, emits one 16-byte record per call: {u64 seq, u32 cpu, u32 tgid}.
We measure, for pybpf's ring buffer reader and perf buffer reader, and for
BCC's (``python3-bpfcc``) on the same load in the same run:

* records/s: records consumed / (time from the producer's start to the
  last record consumed). "callback" rows: a trivial per-record callback in
  both (ours gets raw bytes: a ``Sample(cpu, data)`` for perf). "batch" rows:
  ours consumes records decoded into ``(seq, cpu, tgid)`` tuples a batch at a
  time (ring buffer ``read_batch``, perf ``poll_batch``); BCC has no batch API,
  so its row is its per-record callback;
* lost: records the kernel dropped (perf: PERF_RECORD_LOST; ringbuf: seq gaps).

Perf rows: ``w=N`` wakes the reader every N samples; ``wm=B`` (our default)
when B bytes are waiting. Each of our rows is followed by a BCC run with the
wakeup setting named in its label, so noise on the shared machine hits both
sides of a ratio alike; "live" compares whole runs, producer included,
"drain" only the consumer.

BCC runs under /usr/bin/python3 (its bindings live there) with kernel
headers from Debian's linux-headers-amd64, merged into one tree; this script
installs and prepares all of that itself. If BCC cannot be set up, it says
why and still prints pybpf's figures.

    python bench/event_throughput.py [--records N] [--no-bcc]
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "link"))

PRODUCER_C = r"""
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char c;
    if (read(0, &c, 1) != 1) return 2;   /* start when the consumer is ready */
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    return 0;
}
"""

RINGBUF_BYTES = 1 << 25  # 32 MiB: the records of a run at full producer speed fit with room to spare
PERF_PAGES = 4096  # 16 MiB per CPU


def build_producer(workdir: str) -> list[str]:
    if shutil.which("gcc"):
        src = os.path.join(workdir, "producer.c")
        exe = os.path.join(workdir, "producer")
        with open(src, "w") as f:
            f.write(PRODUCER_C)
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
        return [exe]
    code = "import os,sys\nn=int(sys.argv[1]);sys.stdin.read(1)\nfor _ in range(n): os.getpid()\n"
    return [sys.executable, "-c", code]


def start_producer(cmd: list[str], n: int) -> subprocess.Popen:
    return subprocess.Popen(cmd + [str(n)], stdin=subprocess.PIPE)


# --------------------------------------------------------------------------- pybpf
def run_pybpf(kind: str, producer_cmd: list[str], n: int, mode: str, wakeup: int,
              api: str = "callback") -> dict:
    from attachkit import seq_producer
    from pybpf.link import attach_tracepoint
    from pybpf.maps import Map, MapSpec, MapType
    from pybpf.perf import PerfReader
    from pybpf.program import Program, ProgramSpec, ProgType
    from pybpf.ringbuf import RingBuffer

    counter = Map(MapSpec(MapType.ARRAY, 4, 8, 1, key="I"))
    if kind == "ringbuf":
        out = Map(MapSpec(MapType.RINGBUF, 0, 0, RINGBUF_BYTES))
        reader = RingBuffer(out, record_type=struct.Struct("<QII") if api == "batch" else None)
    else:
        out = Map(MapSpec(MapType.PERF_EVENT_ARRAY, 4, 4, os.cpu_count(), key="I"))
        reader = PerfReader(out, pages=PERF_PAGES, wakeup_events=wakeup or None,  # 0: watermark
                            record_type=struct.Struct("<QII") if api == "batch" else None)
    proc = start_producer(producer_cmd, n)
    prog = Program.load(ProgramSpec(seq_producer(counter, out, proc.pid, kind=kind), ProgType.TRACEPOINT),
                        verify=False)
    got = 0

    def callback(record) -> None:
        nonlocal got
        got += 1

    def on_batch(cpu: int, records: list) -> None:
        nonlocal got
        got += len(records)

    with attach_tracepoint(prog, "syscalls:sys_enter_getpid"):
        t0 = time.perf_counter()
        proc.stdin.write(b"g")
        proc.stdin.close()
        if mode == "drain":  # the backlog is all there before consuming starts
            proc.wait()
            t0 = time.perf_counter()
        cpu0 = time.process_time()
        deadline = t0 + 60
        while got < n and time.perf_counter() < deadline:
            if api == "batch" and kind == "perf":  # decoded {seq, cpu, tgid} tuples, a ring at a time
                reader.poll_batch(on_batch, timeout=0.2)
            elif api == "batch":  # decoded {seq, cpu, tgid} tuples, a span at a time
                batch = reader.read_batch()
                got += len(batch)
                if not batch:
                    reader.wait(0.2)
            else:
                reader.poll(callback, timeout=0.2)
            lost = reader.lost if kind == "perf" else 0
            if got + lost >= n and proc.poll() is not None:
                break
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    proc.wait()
    produced = struct.unpack_from("<Q", counter.lookup(0))[0]
    lost = reader.lost if kind == "perf" else produced - got
    reader.close()
    prog.close()
    out.close()
    counter.close()
    wake = (f" w={wakeup}" if wakeup else f" wm={reader.watermark}") if kind == "perf" else ""
    label = f"pybpf {kind}{wake}" + (" batch" if api == "batch" else "")
    return {"consumer": label, "produced": produced, "consumed": got, "lost": lost,
            "seconds": elapsed, "rate": got / elapsed, "consumer_cpu_s": cpu}


# ----------------------------------------------------------------------------- BCC
BCC_SCRIPT = r"""
import ctypes, json, os, subprocess, sys, time
from bcc import BPF

kind, n, mode, wakeup, producer = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:]
proc = subprocess.Popen(producer + [str(n)], stdin=subprocess.PIPE)
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
    text = text % ("BPF_RINGBUF_OUTPUT(events, %d);" % (RINGBUF_BYTES // 4096),
                   "events.ringbuf_output(&e, sizeof(e), 0);")
else:
    text = text % ("BPF_PERF_OUTPUT(events);", "events.perf_submit(args, &e, sizeof(e));")
b = BPF(text=text.replace("TGID", str(proc.pid)))
got = 0
lost = 0
def cb(*a):
    global got
    got += 1
def lost_cb(count):
    global lost
    lost += count
if kind == "ringbuf":
    b["events"].open_ring_buffer(cb)
    poll = lambda: b.ring_buffer_poll(200)
else:
    b["events"].open_perf_buffer(cb, page_cnt=PERF_PAGES, lost_cb=lost_cb, wakeup_events=wakeup)
    poll = lambda: b.perf_buffer_poll(200)
t0 = time.perf_counter()
proc.stdin.write(b"g"); proc.stdin.close()
if mode == "drain":
    proc.wait()
    t0 = time.perf_counter()
cpu0 = time.process_time()
deadline = t0 + 60
while got < n and time.perf_counter() < deadline:
    poll()
    if got + lost >= n and proc.poll() is not None:
        break
elapsed = time.perf_counter() - t0
cpu = time.process_time() - cpu0
proc.wait()
produced = b["counter"][ctypes.c_int(0)].value
if kind == "ringbuf":
    lost = produced - got
print(json.dumps({"consumer": "BCC " + kind + (" w=%d" % wakeup if kind == "perf" else ""), "produced": produced, "consumed": got, "lost": lost,
                  "seconds": elapsed, "rate": got / elapsed, "consumer_cpu_s": cpu}))
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


def run_bcc(kind: str, producer_cmd: list[str], n: int, mode: str, wakeup: int,
            env: dict) -> tuple[dict | None, str]:
    script = BCC_SCRIPT.replace("RINGBUF_BYTES", str(RINGBUF_BYTES)).replace("PERF_PAGES", str(PERF_PAGES))
    r = subprocess.run(["/usr/bin/python3", "-c", script, kind, str(n), mode, str(wakeup)] + producer_cmd,
                       capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        return None, f"BCC {kind} run failed (exit {r.returncode}): {r.stderr.strip()[-600:]}"
    return json.loads(lines[-1]), ""


def show(row: dict) -> None:
    print(f"  {row['consumer']:<20} {row['rate'] / 1e6:8.3f} M records/s  consumed {row['consumed']:>9}"
          f"  lost {row['lost']:>7}  in {row['seconds']:.2f} s (consumer CPU {row['consumer_cpu_s']:.2f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="getpid calls per run")
    ap.add_argument("--no-bcc", action="store_true", help="skip the BCC baseline")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (bpf(2), tracepoints)")
        return 1
    with tempfile.TemporaryDirectory() as work:
        producer = build_producer(work)
        print(f"producer: {' '.join(producer)} ({args.records} getpid calls per run), "
              f"{os.cpu_count()} CPUs; ring buffer {RINGBUF_BYTES >> 20} MiB, perf buffer "
              f"{PERF_PAGES * 4 >> 10} MiB per CPU")
        # (kind, our wakeup_events (0: the default page watermark), API, BCC's wakeup_events).
        # Perf rows compare like with like (same wakeups), and our default against BCC's faster
        # setting (BCC has no watermark option; its default is a wakeup per sample).
        configs = [("ringbuf", 1, "callback", 1), ("ringbuf", 1, "batch", 1),
                   ("perf", 1, "callback", 1), ("perf", 1, "batch", 1),
                   ("perf", 64, "callback", 64), ("perf", 64, "batch", 64),
                   ("perf", 0, "callback", 64), ("perf", 0, "batch", 64)]
        env, why = (None, "--no-bcc given") if args.no_bcc else setup_bcc()
        if env is None:
            print(f"BCC baseline unavailable: {why}")
        for mode, n in (("live", args.records), ("drain", min(args.records, 400_000))):
            print(f"\n{mode}: " + ("consumer runs while the producer runs (records/s over the whole run)"
                                   if mode == "live" else
                                   f"{n} records produced first, then consumed (pure consumer speed)"))
            for kind, wakeup, api, bcc_wakeup in configs:
                # A wakeup per sample slows the producer ~10x for both readers: fewer records.
                count = n // 5 if mode == "live" and kind == "perf" and wakeup == 1 else n
                ours = run_pybpf(kind, producer, count, mode, wakeup, api)
                show(ours)
                if env is None:
                    continue
                bcc, err = run_bcc(kind, producer, count, mode, bcc_wakeup, env)
                if bcc is None:
                    print("  " + err)
                    continue
                show(bcc)
                if bcc["consumed"] + bcc["lost"] < count:  # stalled until the deadline: no fair rate
                    print(f"  BCC stopped short ({bcc['consumed']} of {count}): no ratio")
                    continue
                ratio = ours["rate"] / bcc["rate"]
                # Records per second of consumer CPU: steadier than wall time on a shared machine.
                cpu_ratio = (ours["consumed"] / max(ours["consumer_cpu_s"], 1e-3)) / \
                    (bcc["consumed"] / max(bcc["consumer_cpu_s"], 1e-3))
                ok = ratio >= 2 and ours["lost"] == 0
                print(f"  ratio pybpf/BCC: {ratio:.2f}x  (goal >= 2x with 0 lost: {'met' if ok else 'NOT met'}); "
                      f"per consumer CPU second: {cpu_ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
