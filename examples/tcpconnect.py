#!/usr/bin/env python3
"""Outbound TCP connects through a ring buffer (``sock:inet_sock_set_state``).

    sudo python examples/tcpconnect.py             # then: curl http://localhost:8000/
"""

from pybpf.link import attach_tracepoint
from pybpf.tools import runtime, tcpconnect

with runtime.Events(tcpconnect.RECORD, ringbuf=True) as events:
    program = tcpconnect.build_tracepoint_program(events, tcpconnect.tracepoint_fields())
    with runtime.load(program, "tracepoint", "tcpconnect") as prog, \
            attach_tracepoint(prog, "sock:inet_sock_set_state"):
        def show(rec):
            e = tcpconnect.decode(rec)
            print(f"{e['pid']:<7} {e['comm']:<16} {e['ip']}  {e['saddr']:<16} {e['daddr']:<16} "
                  f"{e['dport']}", flush=True)
        events.open(show)
        print(f"{'PID':<7} {'COMM':<16} IP SADDR            DADDR            DPORT")
        try:
            while True:
                events.poll(1.0)
        except KeyboardInterrupt:
            pass
