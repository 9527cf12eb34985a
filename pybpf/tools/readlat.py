"""readlat: read() latency across all processes, as a log2 histogram in microseconds.

    # pybpf tool readlat --duration 5
    Tracing read() latency via tracepoints syscalls:sys_{enter,exit}_read... Hit Ctrl-C to end.
         usecs               : count     distribution
             0 -> 1          : 1542     |****************************************|
             2 -> 3          : 210      |*****                                   |
             ...

On entry the program stores ``bpf_ktime_get_ns()`` in a hash map keyed by
the thread id; on return it looks the timestamp up, deletes it, and adds one
to the bucket ``bpf_log2l(delta_usecs)`` of an array map. The histogram is
printed in BCC's ``print_log2_hist`` layout when tracing ends (Ctrl-C,
SIGTERM or ``--duration``).

Attach points: ``syscalls:sys_enter_read`` / ``sys_exit_read`` tracepoints,
or a kprobe/kretprobe pair on the ``read`` syscall where the kernel has kprobes.
"""

from __future__ import annotations

import sys
import time

from pybpf.asm import Builder, r0, r1, r2, r6, r7, r10

from . import common, runtime
from .histogram import format_log2_hist

NAME = "readlat"
BUCKETS = 64


def build_entry_program(start, pid: int = 0) -> Builder:
    """On read() entry: start[tid] = now."""
    b = Builder()
    b.call("get_current_pid_tgid")
    b.mov(r6, r0)
    if pid:
        b.rsh(r0, 32)
        b.jump_if(r0, "!=", pid, "out")
    b.stx(r10, -4, r6, "u32")                      # key: the thread id (low half of pid_tgid)
    b.call("ktime_get_ns")
    b.stx(r10, -16, r0)                            # value: the entry timestamp
    b.map_update(start, -4, -16)
    b.label("out")
    b.ret(0)
    return b


def build_return_program(start, hist) -> Builder:
    """On read() return: hist[log2(usecs since start[tid])] += 1; delete start[tid]."""
    b = Builder()
    b.call("get_current_pid_tgid")
    b.stx(r10, -4, r0, "u32")
    b.map_lookup(start, -4)
    b.jump_if(r0, "==", 0, "out")                  # entry not seen (or filtered by --pid)
    b.ldx(r6, r0, 0)                               # r6 = start timestamp
    b.call("ktime_get_ns")
    b.sub(r0, r6)
    b.div(r0, 1000)                                # r0 = delta in microseconds
    b.mov(r6, r0)
    # r7 = BCC's bpf_log2l(r6): floor(log2(v)) + 1, and 1 for v == 0 (so 0 and 1 share
    # the "0 -> 1" row, as in BCC)
    b.mov(r7, 1)
    for shift in (32, 16, 8, 4, 2, 1):             # binary search for the highest set bit
        b.mov(r1, r6)
        b.rsh(r1, shift)
        with b.if_(r1, "!=", 0):
            b.mov(r6, r1)
            b.add(r7, shift)
    with b.if_(r7, ">=", BUCKETS):
        b.mov(r7, BUCKETS - 1)
    b.stx(r10, -8, r7, "u32")
    b.map_lookup(hist, -8)
    with b.if_(r0, "!=", 0):
        b.mov(r1, 1)
        b.atomic_add(r0, 0, r1)                    # lock *(u64 *)(r0 + 0) += 1
    b.ld_map_fd(r1, start)
    b.stack_ptr(r2, -4)
    b.call("map_delete_elem")
    b.label("out")
    b.ret(0)
    return b


def histogram_json(counts: list[int]) -> str:
    rows = []
    for i, n in enumerate(counts):
        if n:
            low, high = (1 << i) >> 1, (1 << i) - 1
            rows.append({"bucket": i, "low": max(0, low - (low == high)), "high": high, "count": n})
    import json  # only --json pays for it (json brings re)
    return json.dumps({"unit": "usecs", "total": sum(counts), "buckets": rows})


def options() -> common.Options:
    """readlat's command-line options (parsed in :func:`main`, checked by the tests)."""
    p = common.parser(NAME, "Summarize read() latency as a log2 histogram (microseconds).",
                      json_help="print the histogram as one JSON object when tracing ends")
    common.add_attach_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = options()
    args = p.parse(argv)
    common.require_root(NAME)
    maps = {}

    def start(stack):
        from pybpf.maps import MapSpec
        mode = runtime.attach_mode(args.attach)
        maps["start"] = stack.enter_context(MapSpec.hash("I", "Q", 10240, name="start").create())
        maps["hist"] = stack.enter_context(MapSpec.array("Q", BUCKETS, name="hist").create())
        kind = runtime.program_type(mode)
        entry = stack.enter_context(runtime.load(
            build_entry_program(maps["start"], args.pid or 0), kind, "readlat_entry"))
        ret = stack.enter_context(runtime.load(
            build_return_program(maps["start"], maps["hist"]), kind, "readlat_return"))
        stack.enter_context(runtime.attach(entry, mode, kprobe="sys_read",
                                           tracepoint="syscalls:sys_enter_read")[0])
        stack.enter_context(runtime.attach(ret, mode, kretprobe="sys_read",
                                           tracepoint="syscalls:sys_exit_read")[0])
        where = "kprobe/kretprobe sys_read" if mode == "kprobe" else \
            "tracepoints syscalls:sys_{enter,exit}_read"
        return f"read() latency via {where}", time.sleep

    def finish() -> None:
        hist = maps["hist"]
        counts = [hist[i] for i in range(BUCKETS)]
        if args.json:
            common.write_out(histogram_json(counts) + "\n")
        else:
            print(file=sys.stderr)
            common.write_out(format_log2_hist(counts, "usecs") + "\n")

    return runtime.run(NAME, args.duration, start, finish=finish)


if __name__ == "__main__":
    sys.exit(main())
