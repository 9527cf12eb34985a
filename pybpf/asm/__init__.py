"""Instructions, the builder DSL, and the text assembler/disassembler.

Pure Python, no kernel: everything here works on any machine.
"""

from . import opcodes
from .builder import Builder
from .disasm import disassemble, listing, validate
from .helpers import HELPER_IDS, HELPER_NAMES, helper_id
from .text import assemble, parse
from .errors import AssemblerError
from .instruction import Instruction, decode, encode, slot_offsets
from .registers import FP, R, W, Reg, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10

__all__ = [
    "opcodes", "Builder", "assemble", "parse", "disassemble", "listing", "validate",
    "HELPER_IDS", "HELPER_NAMES", "helper_id", "AssemblerError", "Instruction", "decode", "encode", "slot_offsets",
    "Reg", "R", "W", "FP",
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10",
    "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10",
]
