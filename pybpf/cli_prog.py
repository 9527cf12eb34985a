"""``pybpf prog list|show``: the loaded programs, as ``bpftool prog`` prints them."""

from __future__ import annotations

import argparse
import json
import sys

from pybpf.program.info import ProgramInfo, read_info
from pybpf.syscall.errors import BPFError, ObjectNotFound
from pybpf.syscall.map_cmds import open_objects, prog_get_fd_by_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("list", help="list loaded programs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("show", help="show one program")
    p.add_argument("id", type=int, help="program id")
    p.add_argument("--json", action="store_true", help="print JSON")


def iter_programs():
    """Info of every loaded program; programs freed while we walk are skipped."""
    for fd in open_objects("prog"):
        yield read_info(fd.fd, xlated=False)


def format_text(info: ProgramInfo) -> str:
    d = info.as_dict()
    name = f"  name {info.name}" if info.name else ""
    gpl = "  gpl" if info.gpl_compatible else ""
    lines = [f"{info.id}: {d['type']}{name}  tag {info.tag}{gpl}",
             f"\tloaded_at {info.loaded_at.astimezone().strftime('%Y-%m-%dT%H:%M:%S%z')}  "
             f"uid {info.created_by_uid}"]
    sizes = f"\txlated {info.xlated_size}B  "
    sizes += f"jited {info.jited_size}B" if info.jited_size else "not jited"
    if info.map_ids:
        sizes += f"  map_ids {','.join(map(str, info.map_ids))}"
    lines.append(sizes)
    if info.run_cnt:
        lines.append(f"\trun_time_ns {info.run_time_ns} run_cnt {info.run_cnt}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            infos = list(iter_programs())
        else:
            try:
                with prog_get_fd_by_id(args.id) as fd:
                    infos = [read_info(fd.fd, xlated=False)]
            except ObjectNotFound:
                print(f"pybpf prog show: no program with id {args.id}", file=sys.stderr)
                return 1
    except BPFError as exc:
        print(f"pybpf prog: {exc}", file=sys.stderr)
        return 1
    if args.json:
        data = [i.as_dict() for i in infos]
        json.dump(data if args.action == "list" else data[0], sys.stdout)
        print()
    else:
        for info in infos:
            print(format_text(info))
    return 0
