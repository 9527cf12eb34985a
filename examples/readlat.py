#!/usr/bin/env python3
"""read() latency histogram for a few seconds, in BCC's print_log2_hist layout.

    sudo python examples/readlat.py 5
"""

import sys
import time

from pybpf.link import attach_tracepoint
from pybpf.maps import MapSpec
from pybpf.tools import readlat, runtime
from pybpf.tools.histogram import format_log2_hist

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
with MapSpec.hash("I", "Q", 10240, name="start").create() as start, \
        MapSpec.array("Q", readlat.BUCKETS, name="hist").create() as hist, \
        runtime.load(readlat.build_entry_program(start), "tracepoint", "read_entry") as entry, \
        runtime.load(readlat.build_return_program(start, hist), "tracepoint", "read_return") as ret, \
        attach_tracepoint(entry, "syscalls:sys_enter_read"), \
        attach_tracepoint(ret, "syscalls:sys_exit_read"):
    print(f"Tracing read() for {seconds:g} s...")
    time.sleep(seconds)
    print(format_log2_hist([hist[i] for i in range(readlat.BUCKETS)], "usecs"))
