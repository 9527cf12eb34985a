"""``pybpf tool NAME [ARGS]``: runs ``pybpf.tools.NAME.main(ARGS)``."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing and argparse are not imported at run time (start-up cost)
if TYPE_CHECKING:
    import argparse

TOOLS = {
    "hello": "print a line for every execve (bpf_trace_printk)",
    "execsnoop": "trace new processes (PID, COMM)",
    "opensnoop": "trace open(), openat() and openat2() calls with the file name",
    "tcpconnect": "trace outbound TCP connects (IPv4 and IPv6)",
    "readlat": "read() latency as a log2 histogram",
    "xdpcount": "per-protocol packet/byte counts on an interface, optional port drop",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    import argparse  # already imported by whoever built ``parser``
    parser.add_argument("name", choices=sorted(TOOLS), metavar="NAME",
                        help="one of: " + ", ".join(f"{k} ({v})" for k, v in TOOLS.items()))
    rest = parser.add_argument("args", nargs=argparse.REMAINDER, help="the tool's own options")
    rest.required = False  # argparse marks REMAINDER positionals required: "required: NAME, args"


def parse_plain(argv: list[str]) -> object | None:
    """What :func:`add_arguments`' parser makes of ``argv``, without argparse; None if unsure.

    A tool is judged on its start-up time and ``import argparse`` is a good
    part of it (see :class:`pybpf.tools.common.Options`). ``pybpf tool NAME
    ARGS`` is read here when NAME is a tool and ARGS has no ``--`` (which
    argparse's REMAINDER treats specially); anything else returns None for the
    caller to hand to argparse, which prints the help and the errors. The tool
    then parses ARGS itself.
    """
    if not argv or argv[0] not in TOOLS or "--" in argv[1:]:
        return None
    from types import SimpleNamespace
    return SimpleNamespace(name=argv[0], args=list(argv[1:]))


def run(args: argparse.Namespace) -> int:
    name = f"pybpf.tools.{args.name}"
    __import__(name)  # importlib.import_module without importing importlib (start-up cost)
    module = sys.modules[name]
    return int(module.main(args.args) or 0)
