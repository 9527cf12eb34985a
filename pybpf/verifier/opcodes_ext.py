"""Opcode values the verifier dispatches on, re-exported from :mod:`pybpf.asm.opcodes`.

``JSET_X`` is the kernel's private "reverse of JSET" code (``BPF_JSET | BPF_X``)
used when refining the fall-through branch of a ``jset``.
"""

from pybpf.asm.opcodes import (  # noqa: F401
    ADD, ALU, ALU64, AND, ARSH, ATOMIC, B, CALL, DIV, DW, END, EXIT, H, IMM, JA, JEQ, JGE, JGT,
    JLE, JLT, JMP, JMP32, JNE, JSET, JSGE, JSGT, JSLE, JSLT, LD, LDX, LSH, MEM, MEMSX, MOD, MOV,
    MUL, NEG, OR, RSH, ST, STX, SUB, W, XOR, K, X, ABS, IND, SIZE_BYTES,
)

JSET_X = JSET | 0x08
