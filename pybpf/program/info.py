"""ProgramInfo: struct bpf_prog_info as a frozen dataclass, with the xlated code decoded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pybpf.asm.errors import AssemblerError
from pybpf.asm.instruction import Instruction, decode
from pybpf.syscall import prog_cmds

from .types import ProgType

if TYPE_CHECKING:  # datetime is imported when a load time is first asked for, not at start-up
    from datetime import datetime

__all__ = ["ProgramInfo", "read_info", "boot_ns_to_datetime"]


def boot_ns_to_datetime(ns: int) -> datetime:
    """Wall-clock time of a CLOCK_BOOTTIME timestamp (bpf_prog_info.load_time)."""
    from datetime import datetime, timezone

    offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return datetime.fromtimestamp(offset + ns / 1e9, tz=timezone.utc)


@dataclass(frozen=True)
class ProgramInfo:
    """What the kernel reports about a loaded program (OBJ_GET_INFO_BY_FD)."""

    id: int
    type: ProgType | int
    name: str
    tag: str
    gpl_compatible: bool
    load_time_ns: int
    created_by_uid: int
    verified_insns: int
    xlated_size: int
    jited_size: int
    map_ids: tuple[int, ...]
    run_time_ns: int
    run_cnt: int
    recursion_misses: int
    btf_id: int
    attach_btf_id: int
    xlated: bytes = field(repr=False, default=b"")

    @property
    def loaded_at(self) -> datetime:
        return boot_ns_to_datetime(self.load_time_ns)

    @property
    def insns(self) -> list[Instruction]:
        """The kernel's rewritten (xlated) program, decoded; empty if the kernel withheld it."""
        return decode(self.xlated) if self.xlated else []

    def disassembly(self) -> str | None:
        """The xlated program in the verifier log's ``N: (xx) text`` layout."""
        if not self.xlated:
            return None
        try:
            from pybpf.asm.disasm import listing
        except ImportError:
            return None
        try:
            return listing(self.insns)
        except AssemblerError as exc:  # an opcode newer than our disassembler
            return f"; cannot disassemble: {exc}"

    def as_dict(self) -> dict:
        """bpftool-style JSON fields."""
        tname = self.type.bpftool_name if isinstance(self.type, ProgType) else self.type
        return {
            "id": self.id, "type": tname, "name": self.name, "tag": self.tag,
            "gpl_compatible": self.gpl_compatible,
            "loaded_at": int(self.loaded_at.timestamp()), "uid": self.created_by_uid,
            "bytes_xlated": self.xlated_size, "jited": self.jited_size > 0,
            "bytes_jited": self.jited_size, "map_ids": list(self.map_ids),
            "verified_insns": self.verified_insns, "run_time_ns": self.run_time_ns,
            "run_cnt": self.run_cnt, "recursion_misses": self.recursion_misses,
            "btf_id": self.btf_id,
        }


def read_info(fd: int, *, xlated: bool = True) -> ProgramInfo:
    full = prog_cmds.prog_info_full(fd, xlated=xlated)
    i = full.info
    try:
        ptype: ProgType | int = ProgType(i.type)
    except ValueError:
        ptype = i.type
    return ProgramInfo(
        id=i.id, type=ptype, name=i.name.decode(errors="replace"), tag=bytes(i.tag).hex(),
        gpl_compatible=bool(i.gpl_compatible & 1), load_time_ns=i.load_time,
        created_by_uid=i.created_by_uid, verified_insns=i.verified_insns,
        xlated_size=i.xlated_prog_len, jited_size=i.jited_prog_len, map_ids=full.map_ids,
        run_time_ns=i.run_time_ns, run_cnt=i.run_cnt, recursion_misses=i.recursion_misses,
        btf_id=i.btf_id, attach_btf_id=i.attach_btf_id, xlated=full.xlated)
