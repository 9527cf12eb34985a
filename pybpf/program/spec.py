"""ProgramSpec: a plain, deterministic description of a program; no kernel involved.

Turning a spec into a loaded :class:`~pybpf.program.load.Program` is the one
step that touches the kernel (map creation, fd relocation, BPF_PROG_LOAD), so
specs can be built, compared and checked without root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction, decode, encode, slot_offsets

from .types import AttachType, ProgType, attach_type, prog_type

if TYPE_CHECKING:
    from .load import Program

__all__ = ["ProgramSpec"]

_NAME = re.compile(r"^[A-Za-z0-9_.]*$")
BPF_OBJ_NAME_LEN = 16


@dataclass(frozen=True, eq=False)
class ProgramSpec:
    """What to load: instructions, program type and the load attributes.

    ``insns`` is a list of :class:`~pybpf.asm.instruction.Instruction`, an
    object with ``.insns`` and ``.labels`` (a :class:`~pybpf.asm.builder.Builder`),
    or raw bytecode. ``ld_imm64`` instructions whose ``map`` is set are
    relocated to that map's fd at load time; a map *spec* there is created and
    owned by the loaded program.
    """

    insns: Any
    prog_type: ProgType | int | str
    license: str = "GPL"
    name: str = ""
    expected_attach_type: AttachType | int | str | None = None
    attach_btf_id: int | None = None
    attach_prog_fd: int | None = None  # also attach_btf_obj_fd (a union in bpf_attr)
    prog_flags: int = 0
    kern_version: int = 0
    labels: dict[str, int] | None = None
    prog_btf_fd: int | None = None
    func_info: bytes | None = None
    func_info_rec_size: int = 0
    line_info: bytes | None = None
    line_info_rec_size: int = 0
    ifindex: int = 0
    fd_array: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "prog_type", prog_type(self.prog_type))
        if self.expected_attach_type is not None:
            object.__setattr__(self, "expected_attach_type", attach_type(self.expected_attach_type))
        if len(self.name) >= BPF_OBJ_NAME_LEN or not _NAME.match(self.name):
            raise ValueError(f"invalid program name {self.name!r}: the kernel accepts at most "
                             f"{BPF_OBJ_NAME_LEN - 1} characters from [A-Za-z0-9_.]")
        if not isinstance(self.insns, (bytes, bytearray, memoryview, list, tuple)) \
                and not hasattr(self.insns, "insns"):
            raise TypeError(f"insns must be a list of Instruction, a Builder (.insns/.labels) or "
                            f"bytecode, not {type(self.insns).__name__}")
        if isinstance(self.insns, (bytes, bytearray, memoryview)) and len(self.insns) % 8:
            raise ValueError(f"bytecode length {len(self.insns)} is not a multiple of 8 "
                             f"(truncated instruction at byte offset {len(self.insns) // 8 * 8})")

    # ------------------------------------------------------------ instructions
    @property
    def is_bytecode(self) -> bool:
        return isinstance(self.insns, (bytes, bytearray, memoryview))

    def instructions(self) -> list[Instruction]:
        """The logical instructions (decoded, for bytecode specs)."""
        if self.is_bytecode:
            return decode(bytes(self.insns))
        if hasattr(self.insns, "insns"):
            return list(self.insns.insns)
        return list(self.insns)

    def label_map(self) -> dict[str, int] | None:
        if self.labels is not None:
            return self.labels
        return getattr(self.insns, "labels", None)

    def encode(self, insns: list[Instruction] | None = None) -> bytes:
        """Bytecode of ``insns`` (default: this spec's, unrelocated), labels resolved."""
        if insns is None and self.is_bytecode:
            return bytes(self.insns)
        return encode(self.instructions() if insns is None else insns, self.label_map())

    def source_line(self, slot: int | None) -> str | None:
        """The Python ``file:line`` that emitted the instruction at kernel (slot) index ``slot``."""
        if slot is None or self.is_bytecode:
            return None
        insns = self.instructions()
        try:
            index = slot_offsets(insns).index(slot)
        except ValueError:
            return None
        return insns[index].source

    def map_references(self) -> list[object]:
        """The distinct map objects (maps or map specs) the instructions reference, in order."""
        seen: dict[int, object] = {}
        if self.is_bytecode:
            return []
        for insn in self.instructions():
            if insn.opcode == op.LD_IMM64 and insn.map is not None:
                seen.setdefault(id(insn.map), insn.map)
        return list(seen.values())

    def helper_calls(self) -> list[int]:
        """Helper ids called (``call imm`` with src 0), in order of first use."""
        out: list[int] = []
        for insn in self.instructions():
            if insn.opcode == op.CALL_OP and insn.src == 0 and insn.imm not in out:
                out.append(insn.imm)
        return out

    # ------------------------------------------------------------------ load
    def load(self, **kwargs) -> "Program":
        """Load into the kernel: same as ``Program.load(self, **kwargs)``."""
        from .load import Program
        return Program.load(self, **kwargs)
