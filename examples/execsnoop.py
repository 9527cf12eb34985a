#!/usr/bin/env python3
"""execsnoop in one screen: a BPF program built in Python, a perf buffer, a tracepoint.

    sudo python examples/execsnoop.py        # Ctrl-C to stop

The full tool (kprobe/tracepoint choice, --pid, --json, --duration) is
``pybpf tool execsnoop``; this is the same idea with nothing else around it.
"""

import signal
import struct

from pybpf.asm import Builder, r0, r1, r2, r3, r4, r5, r6, r10, w3
from pybpf.link import attach_tracepoint
from pybpf.maps import MapSpec
from pybpf.perf import PerfReader
from pybpf.program import ProgramSpec

EVENT = struct.Struct("<I16s")                  # struct event { u32 pid; char comm[16]; }

events = MapSpec.perf_event_array(name="events").create()

# --- the BPF program: runs in the kernel after every successful exec ----------------
b = Builder()
b.mov(r6, r1)                                   # keep the tracepoint context
b.call("get_current_pid_tgid")
b.rsh(r0, 32)                                   # tgid = the process id
b.stx(r10, -24, r0)                             # event.pid (8 bytes: zero padding too)
b.stack_ptr(r1, -20)
b.mov(r2, 16)
b.call("get_current_comm")                      # event.comm: the new program's name
b.mov(r1, r6)
b.ld_map_fd(r2, events)
b.mov(w3, -1)                                   # BPF_F_CURRENT_CPU
b.stack_ptr(r4, -24)
b.mov(r5, EVENT.size)
b.call("perf_event_output")
b.ret(0)

prog = ProgramSpec(b, "tracepoint", name="execsnoop").load()
link = attach_tracepoint(prog, "sched:sched_process_exec")


def show(sample):
    pid, comm = EVENT.unpack_from(sample.data)
    name = comm.split(b"\0")[0].decode()
    print(f"{pid:<7} {name}", flush=True)


running = True
signal.signal(signal.SIGINT, lambda *_: globals().update(running=False))
print(f"{'PID':<7} COMM")
with PerfReader(events) as reader:
    while running:
        reader.poll(show, timeout=0.2)
link.detach()
prog.close()
events.close()
