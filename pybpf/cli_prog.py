"""``pybpf prog list|show``: the loaded programs, as ``bpftool prog`` prints them.

Programs are addressed as maps are (see :mod:`pybpf.cli_map`): ``42``,
``id 42`` or ``pinned /sys/fs/bpf/x`` (a bare path works too).
"""

from __future__ import annotations

import argparse
import json
import sys

from pybpf.cli_map import REF_FORMS, UsageError, fdinfo, object_ref
from pybpf.program.info import ProgramInfo, read_info
from pybpf.syscall.errors import BPFError
from pybpf.syscall.map_cmds import open_objects, prog_get_fd_by_id

__all__ = ["add_arguments", "run", "iter_programs", "prog_record", "format_text"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("list", help="list loaded programs")
    p.add_argument("--json", "-j", action="store_true", help="print JSON like bpftool -j")
    p = sub.add_parser("show", help="show one program")
    p.add_argument("prog", nargs="+", metavar="PROG", help=REF_FORMS)
    p.add_argument("--json", "-j", action="store_true", help="print JSON like bpftool -j")


def prog_record(fd: int) -> tuple[ProgramInfo, dict]:
    """The info of one program fd and bpftool's JSON fields for it (with ``bytes_memlock``).

    The kernel reports memlock only in /proc/self/fdinfo, not in bpf_prog_info.
    """
    info = read_info(fd, xlated=False)
    rec = info.as_dict()
    memlock = fdinfo(fd).get("memlock")
    if memlock is not None:  # bpftool's order: after the jited size
        items = list(rec.items())
        at = [k for k, _ in items].index("bytes_jited") + 1
        rec = dict(items[:at] + [("bytes_memlock", memlock)] + items[at:])
    return info, rec


def iter_programs():
    """(info, record) of every loaded program; programs freed while we walk are skipped."""
    for fd in open_objects("prog"):
        yield prog_record(fd.fd)


def format_text(info: ProgramInfo, rec: dict | None = None) -> str:
    rec = info.as_dict() if rec is None else rec
    name = f"  name {info.name}" if info.name else ""
    gpl = "  gpl" if info.gpl_compatible else ""
    lines = [f"{info.id}: {rec['type']}{name}  tag {info.tag}{gpl}",
             f"\tloaded_at {info.loaded_at.astimezone().strftime('%Y-%m-%dT%H:%M:%S%z')}  "
             f"uid {info.created_by_uid}"]
    sizes = f"\txlated {info.xlated_size}B  "
    sizes += f"jited {info.jited_size}B" if info.jited_size else "not jited"
    if "bytes_memlock" in rec:
        sizes += f"  memlock {rec['bytes_memlock']}B"
    if info.map_ids:
        sizes += f"  map_ids {','.join(map(str, info.map_ids))}"
    lines.append(sizes)
    if info.run_cnt:
        lines.append(f"\trun_time_ns {info.run_time_ns} run_cnt {info.run_cnt}")
    return "\n".join(lines)


def _open(words: list[str]):
    """An owned fd of the program named like bpftool names it."""
    kind, target = object_ref(words, "program")
    if kind == "id":
        return prog_get_fd_by_id(int(target))  # ObjectNotFound: "no program with id N"
    from pybpf.pin import open_pinned_fd
    fd, _ = open_pinned_fd(target, "prog")
    return fd


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            records = list(iter_programs())
        else:
            with _open(args.prog) as fd:
                records = [prog_record(fd.fd)]
    except UsageError as exc:
        print(f"pybpf prog {args.action}: {exc}", file=sys.stderr)
        return 2
    except (BPFError, ValueError, OSError) as exc:
        print(f"pybpf prog {args.action}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        data = [rec for _, rec in records]
        json.dump(data if args.action == "list" else data[0], sys.stdout)
        print()
    else:
        for info, rec in records:
            print(format_text(info, rec))
    return 0
