"""``pybpf feature probe [--json]``: what this kernel supports, like ``bpftool feature probe``."""

from __future__ import annotations

import argparse
import json
import sys

from .cache import probe_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("probe", help="probe program types, map types, helpers and ISA versions")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-helpers", action="store_true", help="skip the per-type helper probes")
    p.add_argument("--cache", action="store_true",
                   help="read/write the on-disk cache (~/.cache/pybpf, keyed by kernel release)")


def _line(name: str, result: dict) -> str:
    """bpftool's words; a refusal (lockdown) is "NOT available" to this process, as bpftool says."""
    status = result["status"]
    text = {"supported": "is available", "unsupported": "is NOT available",
            "inconclusive": "could not be probed"}[status]
    if result.get("refused"):
        text = "is NOT available"
    detail = f" ({result['detail']})" if result.get("detail") and status != "supported" else ""
    return f"{name} {text}{detail}"


def run(args: argparse.Namespace) -> int:
    data = probe_all(helpers=not args.no_helpers, disk_cache=args.cache)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    out = [f"Kernel release is {data['kernel']}", "", "Scanning eBPF program types..."]
    out += [_line(f"eBPF program_type {n}", r) for n, r in data["program_types"].items()]
    out += ["", "Scanning eBPF map types..."]
    out += [_line(f"eBPF map_type {n}", r) for n, r in data["map_types"].items()]
    out += ["", "Scanning eBPF instruction set..."]
    out += [_line(f"ISA {n}", r) for n, r in data["isa"].items() if n != "instructions"]
    out += [_line(f"  {n}", r) for n, r in data["isa"]["instructions"].items()]
    for ptype, helpers in data.get("helpers", {}).items():
        out += ["", f"eBPF helpers supported for program type {ptype}:"]
        out += [f"\t- {h}" for h in helpers]
    print("\n".join(out))
    return 0
