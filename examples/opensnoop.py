#!/usr/bin/env python3
"""Who opens files under a directory? opensnoop with the prefix checked in the kernel.

    sudo python examples/opensnoop.py /etc/        # then: cat /etc/hostname

Uses the tool's program builder (``pybpf.tools.opensnoop.build_program``, one
commented function) and wires it up by hand: events channel, load, attach, read.
open, openat and openat2 have their own tracepoints; those whose records put
``filename`` and ``dfd`` at the same offsets share a program.
"""

import os
import sys

from pybpf.asm import listing
from pybpf.link import attach_tracepoint
from pybpf.tools import common, opensnoop, runtime

prefix = os.fsencode(sys.argv[1]) if len(sys.argv) > 1 else b"/etc/"



def show(rec):
    pid, tid, uid, dfd, comm, fname = rec
    name = opensnoop.resolve(tid, dfd, fname.split(b"\0")[0])  # relative: from cwd or dfd
    if name.startswith(prefix) or not name.startswith(b"/"):
        command = common.cstr(comm)
        print(f"{pid:<7} {command:<16} {common.cstr(name)}", flush=True)


with runtime.Events(opensnoop.RECORD) as events, runtime.ExitStack() as stack:
    events.open(show)                            # before attaching: no event is lost
    for (filename_at, dfd_at), tracepoints in opensnoop.tracepoint_layouts().items():
        program = opensnoop.build_program("tracepoint", events, prefix=prefix,
                                          filename_at=filename_at, dfd_at=dfd_at)
        dfd = "no dfd (AT_FDCWD)" if dfd_at is None else f"dfd at +{dfd_at}"
        print(f"{', '.join(tracepoints)}: filename at +{filename_at}, {dfd}")
        for line in listing(program.insns[:8]).splitlines():
            print("   ", line)                   # the first instructions, as the verifier prints them
        print("    ...")
        prog = stack.enter_context(runtime.load(program, "tracepoint", "opensnoop"))
        for name in tracepoints:
            stack.enter_context(attach_tracepoint(prog, "syscalls", name))
    print(f"{'PID':<7} {'COMM':<16} FILE   (files under {common.cstr(prefix)}; Ctrl-C to stop)")
    try:
        while True:
            events.poll(1.0)
    except KeyboardInterrupt:
        pass
