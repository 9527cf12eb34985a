"""Errors raised by the userspace interpreter."""

from __future__ import annotations


class VMError(RuntimeError):
    """A program did something the kernel would not allow, or the VM cannot do.

    ``slot`` is the kernel's instruction index (ld_imm64 counts two slots, as
    in verifier logs), ``index`` the logical index into the instruction list,
    ``source`` the Python ``file:line`` that emitted the instruction and
    ``address`` the faulting address of a memory access, when there is one.
    Errors raised inside helpers start without a location; the run loop fills
    it in before the error reaches the caller.
    """

    def __init__(self, message: str, *, index: int | None = None, slot: int | None = None,
                 source: str | None = None, address: int | None = None):
        self.reason = message
        self.index = index
        self.slot = slot
        self.source = source
        self.address = address
        super().__init__(message)

    def locate(self, index: int, slot: int, source: str | None) -> "VMError":
        if self.slot is None:
            self.index, self.slot, self.source = index, slot, source
        return self

    def __str__(self) -> str:
        where = []
        if self.slot is not None:
            where.append(f"insn {self.slot}")
        if self.source:
            where.append(f"at {self.source}")
        text = self.reason
        if self.address is not None and "address" not in text:
            text += f" (address {self.address:#x})"
        return f"{', '.join(where)}: {text}" if where else text
