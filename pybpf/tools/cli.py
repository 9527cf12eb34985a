"""``pybpf tool NAME [ARGS]``: runs ``pybpf.tools.NAME.main(ARGS)``."""

from __future__ import annotations

import argparse
import importlib

TOOLS = {
    "hello": "print a line for every execve (bpf_trace_printk)",
    "execsnoop": "trace new processes (PID, COMM)",
    "opensnoop": "trace openat() calls with the file name",
    "tcpconnect": "trace outbound TCP connects (IPv4 and IPv6)",
    "readlat": "read() latency as a log2 histogram",
    "xdpcount": "per-protocol packet/byte counts on an interface, optional port drop",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(TOOLS), metavar="NAME",
                        help="one of: " + ", ".join(f"{k} ({v})" for k, v in TOOLS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the tool's own options")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"pybpf.tools.{args.name}")
    return int(module.main(args.args) or 0)
