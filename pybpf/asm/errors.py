"""Errors raised while building, encoding or parsing instructions."""

from __future__ import annotations


class AssemblerError(ValueError):
    """Bad input to the assembler, naming where it is.

    ``index`` is the logical instruction index (ld_imm64 counts once),
    ``source`` the Python ``file:line`` (or text line) that emitted it.
    """

    def __init__(self, message: str, *, index: int | None = None, source: str | None = None):
        self.reason = message
        self.index = index
        self.source = source
        where = []
        if index is not None:
            where.append(f"insn {index}")
        if source:
            where.append(f"at {source}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
