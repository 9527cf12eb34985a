"""GeneratedProgram: what the program generator returns and the fuzzer passes around.

A generated program keeps its jumps *symbolic* (label targets), so the
minimizer can delete instructions and re-encode without offset arithmetic,
and it carries the map specs its ``ld_imm64`` instructions reference (via
:attr:`Instruction.map`), so it can be loaded, simulated or interpreted as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction, decode, encode

__all__ = ["GeneratedProgram", "symbolize"]


@dataclass(frozen=True, eq=False)
class GeneratedProgram:
    """A program and everything needed to load it again.

    ``insns`` are logical instructions whose jumps may name ``labels``;
    ``maps`` the :class:`~pybpf.maps.MapSpec` objects referenced through
    ``Instruction.map``; ``mutation`` says which near-miss was planted
    (``None`` for a program meant to be accepted); ``packet`` a test input
    generated with it (for BPF_PROG_TEST_RUN and the interpreter).
    """

    insns: tuple[Instruction, ...]
    labels: Mapping[str, int]
    prog_type: Any  # ProgType
    maps: tuple[Any, ...] = ()
    mutation: str | None = None
    packet: bytes = b""
    expected_attach_type: Any = None
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.insns)

    def encode(self) -> bytes:
        """Kernel bytecode (maps encoded with fd 0: the loader relocates them)."""
        return encode(list(self.insns), dict(self.labels))

    def resolved(self) -> list[Instruction]:
        """Instructions with numeric jump offsets, keeping ``map`` and ``source`` metadata.

        This is the form the verifier simulator and the interpreter take.
        """
        out = decode(self.encode())
        for new, old in zip(out, self.insns):
            new.map = old.map
            new.source = old.source
        return out

    def spec(self, name: str = "fuzz"):
        """A :class:`~pybpf.program.ProgramSpec` loading this program."""
        from pybpf.program import ProgramSpec
        return ProgramSpec(list(self.insns), self.prog_type, labels=dict(self.labels), name=name,
                           expected_attach_type=self.expected_attach_type)

    def text(self) -> str:
        """Kernel-syntax assembly, maps named (``map[m0]``), readable by ``pybpf.asm.text``."""
        from pybpf.asm.disasm import disassemble_lines
        insns = self.resolved()
        for insn in insns:
            if insn.map is not None and not isinstance(insn.map, str):
                insn.map = getattr(insn.map, "name", None) or None
        return "\n".join(disassemble_lines(insns)) + "\n"

    def without(self, drop: set[int]) -> "GeneratedProgram":
        """The program minus the instructions at logical indexes ``drop``.

        Labels that pointed at a removed instruction move to the next kept
        one, so every jump still lands on an instruction boundary; a jump whose
        label now points past the end is for the verifier to reject.
        """
        keep = [i for i in range(len(self.insns)) if i not in drop]
        new_index = {}
        n = 0
        for i in range(len(self.insns) + 1):
            new_index[i] = n
            if i < len(self.insns) and i not in drop:
                n += 1
        labels = {name: new_index[idx] for name, idx in self.labels.items()}
        insns = tuple(self.insns[i].replace() for i in keep)
        return GeneratedProgram(insns, labels, self.prog_type, self.maps, self.mutation,
                                self.packet, self.expected_attach_type, self.notes)

    def with_insns(self, insns: Sequence[Instruction], labels: Mapping[str, int]) -> "GeneratedProgram":
        return GeneratedProgram(tuple(insns), dict(labels), self.prog_type, self.maps,
                                self.mutation, self.packet, self.expected_attach_type, self.notes)


def _is_jump(insn: Instruction) -> bool:
    cls = insn.opcode & 0x07
    if cls not in (op.JMP, op.JMP32):
        return False
    code = insn.opcode & 0xF0
    if code == op.EXIT:
        return False
    if code == op.CALL:
        return insn.src == op.PSEUDO_CALL
    return True


def symbolize(insns: Sequence[Instruction], labels: Mapping[str, int] | None = None
              ) -> tuple[list[Instruction], dict[str, int]]:
    """Turn numeric jump offsets into labels (``.pcN``), so instructions can be removed.

    Jumps that already name a label keep it. A numeric target outside the
    program or inside an ld_imm64 is left numeric (it was invalid anyway).
    """
    labels = dict(labels or {})
    slot_of, pos = [], 0
    for insn in insns:
        slot_of.append(pos)
        pos += insn.slots
    index_of_slot = {s: i for i, s in enumerate(slot_of)}
    index_of_slot[pos] = len(insns)
    out = []
    for i, insn in enumerate(insns):
        if insn.target is not None or not (_is_jump(insn) or (insn.opcode == op.LD_IMM64
                                                              and insn.src == op.PSEUDO_FUNC)):
            out.append(insn)
            continue
        if insn.opcode == op.LD_IMM64:
            rel = insn.imm - ((insn.imm & 0x80000000) << 1) if insn.imm < 1 << 32 else None
        elif (insn.opcode & 0xF0) == op.CALL or insn.opcode == op.JMP32 | op.JA:
            rel = insn.imm
        else:
            rel = insn.off
        dest = None if rel is None else index_of_slot.get(slot_of[i] + 1 + rel)
        if dest is None:
            out.append(insn)
            continue
        name = f".pc{dest}"
        labels.setdefault(name, dest)
        if labels[name] != dest:  # a user label of that name: pick another
            name = f".pc{dest}_{i}"
            labels[name] = dest
        field_ = "imm" if insn.opcode == op.LD_IMM64 or (insn.opcode & 0xF0) == op.CALL \
            or insn.opcode == op.JMP32 | op.JA else "off"
        out.append(insn.replace(target=name, **{field_: 0}))
    return out, labels
