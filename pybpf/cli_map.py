"""``pybpf map list|show|dump``: the kernel's maps, printed the way ``bpftool map`` prints them.

Maps are addressed like bpftool does: ``42``, ``id 42`` or ``pinned /sys/fs/bpf/x``
(a bare path works too). Dumps use batch lookups where the map type allows.
"""

from __future__ import annotations

import argparse
import json
import sys

from pybpf.maps.map import Map
from pybpf.maps.types import MapType
from pybpf.syscall.errors import BPFError, NotSupported
from pybpf.syscall.map_cmds import map_get_info, open_objects

__all__ = ["add_arguments", "run", "iter_maps", "map_record", "dump_records", "UsageError",
           "object_ref", "fdinfo"]

REF_FORMS = "ID, 'id ID', PINNED_PATH or 'pinned PINNED_PATH'"


class UsageError(ValueError):
    """The command line names no object (``pinned`` without a path): exit status 2, like argparse."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("list", "list all maps"), ("show", "show one map"),
                       ("dump", "dump all entries of a map")):
        p = sub.add_parser(name, help=text)
        if name != "list":
            p.add_argument("map", nargs="+", metavar="MAP",
                           help="ID, 'id ID', PINNED_PATH or 'pinned PINNED_PATH'")
        p.add_argument("--json", "-j", action="store_true", help="print JSON like bpftool -j")


def fdinfo(fd: int) -> dict[str, int]:
    """The numeric fields of /proc/self/fdinfo/FD (``memlock``, ``frozen``...): what bpftool reads."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                key, _, val = line.partition(":")
                val = val.strip()
                if val.isdigit():
                    out[key] = int(val)
    except OSError:
        pass
    return out


def _type_name(t: int) -> str:
    return MapType(t).bpftool_name if t in MapType._value2member_map_ else f"type {t}"


def map_record(fd: int) -> dict:
    """bpftool's JSON fields for one map fd."""
    info = map_get_info(fd)
    extra = fdinfo(fd)
    rec = {"id": info.id, "type": _type_name(info.type),
           "name": info.name.decode(errors="replace"), "flags": info.map_flags,
           "bytes_key": info.key_size, "bytes_value": info.value_size,
           "max_entries": info.max_entries}
    if "memlock" in extra:
        rec["bytes_memlock"] = extra["memlock"]
    rec["frozen"] = extra.get("frozen", 0)
    if info.btf_id:
        rec["btf_id"] = info.btf_id
    return rec


def iter_maps():
    """Records of every map; maps freed while we walk are skipped."""
    for fd in open_objects("map"):
        yield map_record(fd.fd)


def format_record(rec: dict) -> str:
    name = f"  name {rec['name']}" if rec["name"] else ""
    line2 = (f"\tkey {rec['bytes_key']}B  value {rec['bytes_value']}B  "
             f"max_entries {rec['max_entries']}")
    if "bytes_memlock" in rec:
        line2 += f"  memlock {rec['bytes_memlock']}B"
    if rec.get("frozen"):
        line2 += "\n\tfrozen"
    return f"{rec['id']}: {rec['type']}{name}  flags {rec['flags']:#x}\n{line2}"


def object_ref(words: list[str], noun: str) -> tuple[str, str | int]:
    """``("id", 42)`` or ``("pinned", PATH)`` from bpftool's ways of naming a map or program.

    ``ID``, ``id ID``, ``PINNED_PATH`` or ``pinned PINNED_PATH``; a keyword
    without its argument is a usage error, not a path named ``pinned``.
    """
    if len(words) == 1 and words[0] in ("id", "pinned"):
        what = "id" if words[0] == "id" else "path"
        raise UsageError(f"missing {what} after '{words[0]}' (expected {REF_FORMS})")
    if len(words) == 2 and words[0] in ("id", "pinned"):
        kind, target = words
    elif len(words) == 1:
        kind, target = ("id" if words[0].isdigit() else "pinned"), words[0]
    else:
        raise UsageError(f"cannot parse {noun} reference {' '.join(words)!r}: expected {REF_FORMS}")
    if kind == "pinned":
        return kind, target
    try:
        return kind, int(target, 10)
    except ValueError:
        raise UsageError(f"{noun} id {target!r} is not a number") from None


def open_map(words: list[str]) -> Map:
    """Open a map named like bpftool: ``ID``, ``id ID``, ``PATH`` or ``pinned PATH``."""
    kind, target = object_ref(words, "map")
    if kind == "id":
        return Map.from_id(int(target))
    return Map.from_pin(target)  # a directory or a path off bpffs: PinError saying so


def _raw(value, size: int) -> bytes:
    return value.to_bytes(size, sys.byteorder) if isinstance(value, int) else bytes(value)


def dump_records(m: Map) -> list[dict]:
    """Entries as bpftool's JSON: ``key``/``value`` hex byte lists (``values`` per CPU)."""
    hexes = (lambda b: [f"0x{x:02x}" for x in b])
    if m.type in (MapType.QUEUE, MapType.STACK, MapType.RINGBUF):
        return []
    try:
        keys, values = m.lookup_batch()
    except NotSupported:
        return [{"key": hexes(k), "value": "<cannot read>"} for k in m.iter_raw_keys()]
    out = []
    for k, v in zip(keys, values):
        rec: dict = {"key": hexes(_raw(k, m.key_size))}
        if isinstance(v, list):
            rec["values"] = [{"cpu": i, "value": hexes(_raw(x, m.value_size))}
                             for i, x in enumerate(v)]
        else:
            rec["value"] = hexes(_raw(v, m.value_size))
        out.append(rec)
    return out


def _text(hexlist) -> str:
    return " ".join(h[2:] for h in hexlist) if isinstance(hexlist, list) else hexlist


def format_dump(records: list[dict]) -> str:
    lines = []
    for rec in records:
        if "values" in rec:
            lines.append(f"key:\n{_text(rec['key'])}")
            lines += [f"value (CPU {v['cpu']:02d}): {_text(v['value'])}" for v in rec["values"]]
        else:
            lines.append(f"key: {_text(rec['key'])}  value: {_text(rec['value'])}")
    n = len(records)
    lines.append(f"Found {n} element{'s' if n != 1 else ''}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            recs = list(iter_maps())
            result: object = recs
            text = "\n".join(format_record(r) for r in recs)
        else:
            with open_map(args.map) as m:
                if args.action == "show":
                    result = map_record(m.fd)
                    text = format_record(result)
                else:
                    result = dump_records(m)
                    text = format_dump(result)
    except UsageError as exc:
        print(f"pybpf map {args.action}: {exc}", file=sys.stderr)
        return 2
    except (BPFError, ValueError, OSError) as exc:
        print(f"pybpf map {args.action}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(result, sys.stdout)
        print()
    elif text:
        print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from pybpf.cli import main
    sys.exit(main(["map", *sys.argv[1:]]))
