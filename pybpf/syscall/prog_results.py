"""Result records of BPF_PROG_TEST_RUN, BPF_OBJ_GET_INFO_BY_FD (programs) and BPF_PROG_QUERY.

Part of :mod:`pybpf.syscall.prog_cmds`, which exports these names; kept apart
so that loading a program (a tool's start-up) does not create them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .attr_prog import ProgInfo

__all__ = ["TestRunOutput", "ProgInfoFull", "QueryResult"]


@dataclass(frozen=True)
class TestRunOutput:
    """What BPF_PROG_TEST_RUN wrote back (sizes are the kernel's, outputs are trimmed to them)."""

    __test__ = False
    retval: int
    data_out: bytes | None
    data_size_out: int
    ctx_out: bytes | None
    ctx_size_out: int
    duration: int


@dataclass(frozen=True)
class ProgInfoFull:
    info: ProgInfo
    xlated: bytes
    jited: bytes
    map_ids: tuple[int, ...]


@dataclass(frozen=True)
class QueryResult:
    attach_flags: int
    prog_ids: tuple[int, ...]
    prog_attach_flags: tuple[int, ...]
    link_ids: tuple[int, ...]
    revision: int
