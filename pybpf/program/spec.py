"""ProgramSpec: a plain, deterministic description of a program; no kernel involved.

Turning a spec into a loaded :class:`~pybpf.program.load.Program` is the one
step that touches the kernel (map creation, fd relocation, BPF_PROG_LOAD), so
specs can be built, compared and checked without root.
"""

from __future__ import annotations

from pybpf._record import Record
from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction, decode, encode, slot_offsets

from .types import AttachType, ProgType, attach_type
from .types import prog_type as prog_type_

TYPE_CHECKING = False  # typing is not imported at run time: see pybpf._record
if TYPE_CHECKING:
    from typing import Any

    from .load import Program

__all__ = ["ProgramSpec"]

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")
BPF_OBJ_NAME_LEN = 16


class ProgramSpec(Record):
    """What to load: instructions, program type and the load attributes.

    ``insns`` is a list of :class:`~pybpf.asm.instruction.Instruction`, an
    object with ``.insns`` and ``.labels`` (a :class:`~pybpf.asm.builder.Builder`),
    or raw bytecode. ``ld_imm64`` instructions whose ``map`` is set are
    relocated to that map's fd at load time; a map *spec* there is created and
    owned by the loaded program. Specs are immutable; two specs are equal only
    if they are the same object (instruction lists are not compared).
    """

    __slots__ = ("insns", "prog_type", "license", "name", "expected_attach_type",
                 "attach_btf_id", "attach_prog_fd", "prog_flags", "kern_version", "labels",
                 "prog_btf_fd", "func_info", "func_info_rec_size", "line_info",
                 "line_info_rec_size", "ifindex", "fd_array")
    _compare = ()

    insns: Any
    prog_type: ProgType
    license: str
    name: str
    expected_attach_type: AttachType | None
    attach_btf_id: int | None
    attach_prog_fd: int | None  # also attach_btf_obj_fd (a union in bpf_attr)
    prog_flags: int
    kern_version: int
    labels: dict[str, int] | None
    prog_btf_fd: int | None
    func_info: bytes | None
    func_info_rec_size: int
    line_info: bytes | None
    line_info_rec_size: int
    ifindex: int
    fd_array: tuple[int, ...]

    def __init__(self, insns: Any, prog_type: ProgType | int | str, license: str = "GPL",
                 name: str = "", expected_attach_type: AttachType | int | str | None = None,
                 attach_btf_id: int | None = None, attach_prog_fd: int | None = None,
                 prog_flags: int = 0, kern_version: int = 0,
                 labels: dict[str, int] | None = None, prog_btf_fd: int | None = None,
                 func_info: bytes | None = None, func_info_rec_size: int = 0,
                 line_info: bytes | None = None, line_info_rec_size: int = 0, ifindex: int = 0,
                 fd_array: tuple[int, ...] = ()) -> None:
        if not isinstance(name, str) or len(name) >= BPF_OBJ_NAME_LEN or \
                not _NAME_CHARS.issuperset(name):
            raise ValueError(f"invalid program name {name!r}: the kernel accepts at most "
                             f"{BPF_OBJ_NAME_LEN - 1} characters from [A-Za-z0-9_.]")
        if not isinstance(insns, (bytes, bytearray, memoryview, list, tuple)) \
                and not hasattr(insns, "insns"):
            raise TypeError(f"insns must be a list of Instruction, a Builder (.insns/.labels) or "
                            f"bytecode, not {type(insns).__name__}")
        if isinstance(insns, (bytes, bytearray, memoryview)) and len(insns) % 8:
            raise ValueError(f"bytecode length {len(insns)} is not a multiple of 8 "
                             f"(truncated instruction at byte offset {len(insns) // 8 * 8})")
        if expected_attach_type is not None:
            expected_attach_type = attach_type(expected_attach_type)
        self._assign(insns=insns, prog_type=prog_type_(prog_type), license=license, name=name,
                     expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id,
                     attach_prog_fd=attach_prog_fd, prog_flags=prog_flags,
                     kern_version=kern_version, labels=labels, prog_btf_fd=prog_btf_fd,
                     func_info=func_info, func_info_rec_size=func_info_rec_size,
                     line_info=line_info, line_info_rec_size=line_info_rec_size,
                     ifindex=ifindex, fd_array=fd_array)

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
