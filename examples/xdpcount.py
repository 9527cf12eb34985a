#!/usr/bin/env python3
"""Per-protocol packet counts on an interface with XDP, dropping one UDP/TCP port.

    sudo python examples/xdpcount.py eth0 9999
"""

import sys
import time

from pybpf.link import attach_xdp
from pybpf.maps import MapSpec
from pybpf.tools import runtime, xdpcount

interface = sys.argv[1] if len(sys.argv) > 1 else "lo"
drop_port = int(sys.argv[2]) if len(sys.argv) > 2 else 0

with MapSpec.percpu_array(xdpcount.VALUE.size, xdpcount.ENTRIES, name="counters").create() as counters, \
        runtime.load(xdpcount.build_program(counters, drop_port), "xdp", "xdpcount") as prog, \
        attach_xdp(prog, interface):
    try:
        while True:
            time.sleep(1)
            for name, c in sorted(xdpcount.totals(counters).items()):
                print(f"{name:<8} {c['packets']:>8} packets {c['bytes']:>10} bytes "
                      f"{c['dropped']:>6} dropped")
            print()
    except KeyboardInterrupt:
        pass
