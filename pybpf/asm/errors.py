"""Errors raised while building, encoding or parsing instructions."""

from __future__ import annotations


class AssemblerError(ValueError):
    """Bad input to the assembler, naming where it is.

    ``index`` is the logical instruction index (ld_imm64 counts once),
    ``source`` the Python ``file:line`` (or text line) that emitted it, and
    ``column`` (text only, 1-based) where on that line the bad token starts.
    """

    def __init__(self, message: str, *, index: int | None = None, source: str | None = None,
                 column: int | None = None):
        self.reason = message
        self.index = index
        self.source = source
        self.column = column
        where = []
        if index is not None:
            where.append(f"insn {index}")
        if source:
            where.append(f"at {source}:{column}" if column else f"at {source}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
