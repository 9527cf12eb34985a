"""Disagreement files: kernel-syntax assembly with the verdicts and the kernel's log as comments.

The body is what :func:`pybpf.asm.disasm.disassemble` prints, so
:func:`pybpf.asm.text.parse` (and ``pybpf verify FILE``) reads it back. The
header carries what the text alone cannot, in ``# key: value`` comment lines
a replayer can parse::

    # prog_type: xdp
    # map m0: type=hash key_size=4 value_size=16 max_entries=16
    # packet: 0011223344...

:func:`load_case` turns a file back into a :class:`GeneratedProgram`.
"""

from __future__ import annotations

import os
import re

from pybpf.maps import MapSpec, MapType
from pybpf.program.types import prog_type as _prog_type

from .program import GeneratedProgram

__all__ = ["write_case", "format_case", "load_case", "map_line"]

_MAP = re.compile(r"^#\s*map\s+([\w.]+):\s*(.*)$")
_KV = re.compile(r"(\w+)=(\S+)")


def map_line(spec) -> str:
    return (f"# map {spec.name}: type={spec.type.name.lower()} key_size={spec.key_size} "
            f"value_size={spec.value_size} max_entries={spec.max_entries} flags={spec.flags}")


def _comment(text: str, indent: str = "#   ") -> list[str]:
    return [f"{indent}{line}".rstrip() for line in text.rstrip().splitlines()]


def format_case(d, *, seed: int, prog_type_name: str, kernel_log: str = "", sim_log: str = "") -> str:
    """The file text for disagreement ``d`` (a :class:`pybpf.testing.fuzz.Disagreement`)."""
    from .fuzz import KINDS
    prog = d.minimized or d.program
    lines = [f"# pybpf fuzz: {KINDS.get(d.kind, d.kind)} [{d.kind}]",
             f"# prog_type: {prog_type_name}",
             f"# seed: {seed}  program: {d.index}  (regenerate: pybpf fuzz --seed {seed} "
             f"--prog-type {prog_type_name} --start {d.index} --count 1)",
             f"# mutation: {d.program.mutation or 'none (meant to be accepted)'}",
             f"# instructions: {len(prog)} (minimized from {len(d.program)})" if d.minimized
             else f"# instructions: {len(prog)}"]
    lines += [map_line(m) for m in prog.maps]
    lines.append(f"# packet: {prog.packet.hex()}")
    if d.sim is not None:
        lines.append(f"# simulator: {d.sim.describe()}")
    if d.kernel is not None:
        lines.append(f"# kernel: {d.kernel.describe()}")
    if d.vm_run is not None:
        lines.append(f"# kernel test run: {d.kernel_run.describe()}")
        lines.append(f"# vm run: {d.vm_run.describe()}")
    if d.minimized is not None:
        lines.append("# (verdicts above are for the original program; the minimized one shows the "
                     "same disagreement)")
    if kernel_log.strip():
        lines.append("#")
        lines.append("# kernel verifier log (minimized program):")
        lines += _comment(kernel_log)
    if sim_log.strip():
        lines.append("#")
        lines.append("# simulator log (minimized program):")
        lines += _comment(sim_log)
    lines.append("")
    lines.append(prog.text().rstrip())
    if d.minimized is not None:
        lines.append("")
        lines.append("# original program:")
        lines += _comment(d.program.text(), "#   ")
    return "\n".join(lines) + "\n"


def write_case(directory: str, d, text: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{d.program.prog_type.bpftool_name}-{d.index:06d}-{d.kind}.s")
    with open(path, "w") as f:
        f.write(text)
    return path


def load_case(path: str) -> GeneratedProgram:
    """Read a disagreement file back into a loadable :class:`GeneratedProgram`."""
    from pybpf.asm.text import parse
    with open(path) as f:
        text = f.read()
    ptype, packet, maps = None, b"", {}
    for line in text.splitlines():
        if line.startswith("# prog_type:"):
            ptype = _prog_type(line.split(":", 1)[1].strip())
        elif line.startswith("# packet:"):
            packet = bytes.fromhex(line.split(":", 1)[1].strip())
        elif m := _MAP.match(line):
            kv = dict(_KV.findall(m.group(2)))
            maps[m.group(1)] = MapSpec(MapType[kv["type"].upper()], int(kv["key_size"]),
                                       int(kv["value_size"]), int(kv["max_entries"]),
                                       int(kv.get("flags", 0)), name=m.group(1))
    if ptype is None:
        raise ValueError(f"{path}: no '# prog_type:' line")
    asm = parse(text, name=path)
    for i, insn in enumerate(asm.insns):
        if isinstance(insn.map, str):
            if insn.map not in maps:
                raise ValueError(f"{path}: map {insn.map!r} used by insn {i} has no '# map' line")
            insn.map = maps[insn.map]
    return GeneratedProgram(tuple(asm.insns), asm.labels, ptype, tuple(maps.values()), None, packet)
