"""Errors shared across layers.

:class:`VerifierError` is raised both by the kernel load path and by the
verifier simulator (which runs before any syscall), so it lives here, below
both, with no kernel dependency.
"""

from __future__ import annotations

import errno

from pybpf.asm.errors import AssemblerError
from pybpf.syscall.errors import (BadFD, BPFError, BPFPermissionError, Busy, IndexOutOfRange,
                                  InvalidArgument, KeyExists, KeyNotFound, MapFull, NotSupported,
                                  TooBig, WrongObjectKind)


class VerifierError(BPFError):
    """A program was rejected by the verifier (the kernel's, or the simulator's).

    ``error`` is the verifier's own reason line (not necessarily the last line
    of the log: newer kernels append summary blocks), ``insn`` the kernel's
    instruction (slot) index, ``source_line`` the Python ``file:line`` that
    emitted that instruction, ``log`` the whole log, and ``origin`` says who
    rejected it: ``"kernel"`` or ``"simulator"``.
    """

    def __init__(self, error: str, *, log: str = "", insn: int | None = None,
                 source_line: str | None = None, origin: str = "kernel",
                 err: int = errno.EACCES, command: str = "BPF_PROG_LOAD", hint: str = ""):
        self.error = error
        self.log = log
        self.insn = insn
        self.source_line = source_line
        self.origin = origin
        where = []
        if insn is not None:
            where.append(f"insn {insn}")
        if source_line:
            where.append(f"emitted at {source_line}")
        summary = error + (f" ({', '.join(where)})" if where else "")
        who = "verifier" if origin == "kernel" else "verifier simulator"
        super().__init__(err, command, f"{who} rejected the program: {summary}", hint)


__all__ = [
    "AssemblerError", "BPFError", "VerifierError", "NotSupported", "BPFPermissionError",
    "KeyNotFound", "KeyExists", "TooBig", "MapFull", "IndexOutOfRange", "InvalidArgument", "BadFD",
    "Busy", "WrongObjectKind",
]
