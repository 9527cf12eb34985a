"""Instructions, the builder DSL, and the text assembler/disassembler.

Pure Python, no kernel: everything here works on any machine.

The text assembler and the disassembler are imported on first use
(PEP 562 ``__getattr__``): a tool that only builds and loads a program
should not pay for their regular expressions and dataclasses at start-up.
"""

from pybpf._lazy import lazy_exports

from . import opcodes
from .builder import Builder
from .errors import AssemblerError
from .helpers import HELPER_IDS, HELPER_NAMES, helper_id
from .instruction import Instruction, decode, encode, slot_offsets
from .registers import FP, R, W, Reg, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10

# name -> submodule that defines it, imported when the name is first looked up
_LAZY = {
    "disassemble": "disasm", "listing": "disasm", "validate": "disasm",
    "assemble": "text", "parse": "text",
}
_LAZY_MODULES = ("disasm", "text")

__all__ = [
    "opcodes", "Builder", "assemble", "parse", "disassemble", "listing", "validate",
    "HELPER_IDS", "HELPER_NAMES", "helper_id", "AssemblerError", "Instruction", "decode", "encode", "slot_offsets",
    "Reg", "R", "W", "FP",
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10",
    "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, _LAZY_MODULES)
