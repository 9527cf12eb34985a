#!/usr/bin/env python3
"""Who opens files under a directory? opensnoop with the prefix checked in the kernel.

    sudo python examples/opensnoop.py /etc/        # then: cat /etc/hostname

Uses the tool's program builder (``pybpf.tools.opensnoop.build_program``, one
commented function) and wires it up by hand: events channel, load, attach, read.
"""

import sys

from pybpf.asm import listing
from pybpf.link import attach_tracepoint
from pybpf.tools import opensnoop, runtime

prefix = sys.argv[1].encode() if len(sys.argv) > 1 else b"/etc/"

with runtime.Events(opensnoop.RECORD) as events:
    program = opensnoop.build_program("tracepoint", events, prefix=prefix,
                                      filename_at=opensnoop.filename_offset())
    for line in listing(program.insns[:6]).splitlines():
        print("   ", line)                       # the first instructions, as the verifier prints them
    print("    ...")
    with runtime.load(program, "tracepoint", "opensnoop") as prog, \
            attach_tracepoint(prog, "syscalls:sys_enter_openat"):
        def show(rec):
            pid, uid, comm, fname = rec
            name, path = comm.split(b"\0")[0].decode(), fname.split(b"\0")[0].decode()
            print(f"{pid:<7} {name:<16} {path}", flush=True)
        events.open(show)
        print(f"{'PID':<7} {'COMM':<16} FILE   (files under {prefix.decode()}; Ctrl-C to stop)")
        try:
            while True:
                events.poll(1.0)
        except KeyboardInterrupt:
            pass
