"""eBPF opcode fields, as defined by the kernel UAPI (include/uapi/linux/bpf.h, bpf_common.h).

An opcode byte is ``class | (size|mode)`` for memory instructions and
``class | op | source`` for ALU and jump instructions. These are facts copied
from the UAPI; plain ints so that building an instruction stays cheap.
"""

# Instruction classes (low 3 bits).
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
CLASS_NAMES = ("ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64")

# Sizes (bits 3-4) for memory classes.
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
SIZE_BYTES = {W: 4, H: 2, B: 1, DW: 8}
BYTES_SIZE = {4: W, 2: H, 1: B, 8: DW}
SIZE_NAMES = {W: "u32", H: "u16", B: "u8", DW: "u64"}

# Modes (bits 5-7) for memory classes.
IMM, ABS, IND, MEM, MEMSX, ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0

# Source bit for ALU/JMP.
K, X = 0x00, 0x08

# ALU operations (bits 4-7).
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
NEG, MOD, XOR, MOV, ARSH, END = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
ALU_OPS = {
    "add": ADD, "sub": SUB, "mul": MUL, "div": DIV, "or": OR, "and": AND,
    "lsh": LSH, "rsh": RSH, "neg": NEG, "mod": MOD, "xor": XOR, "mov": MOV,
    "arsh": ARSH, "end": END,
}
# Byte-order conversion: source bit of an END opcode in class ALU; ALU64|END is bswap.
TO_LE, TO_BE = 0x00, 0x08

# Jump operations (bits 4-7).
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
CALL, EXIT, JLT, JLE, JSLT, JSLE = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
JMP_OPS = {
    "ja": JA, "jeq": JEQ, "jgt": JGT, "jge": JGE, "jset": JSET, "jne": JNE,
    "jsgt": JSGT, "jsge": JSGE, "call": CALL, "exit": EXIT, "jlt": JLT,
    "jle": JLE, "jslt": JSLT, "jsle": JSLE,
}
# Conditional jumps and the operator the kernel prints for each.
COND_SYMBOLS = {
    JEQ: "==", JGT: ">", JGE: ">=", JSET: "&", JNE: "!=", JSGT: "s>", JSGE: "s>=",
    JLT: "<", JLE: "<=", JSLT: "s<", JSLE: "s<=",
}

# Atomic operations, carried in imm of STX|ATOMIC.
ATOMIC_ADD, ATOMIC_OR, ATOMIC_AND, ATOMIC_XOR = 0x00, 0x40, 0x50, 0xA0
FETCH = 0x01
XCHG = 0xE0 | FETCH
CMPXCHG = 0xF0 | FETCH
LOAD_ACQ = 0x100  # since 6.15
STORE_REL = 0x110  # since 6.15

# Pseudo source registers of ld_imm64 (BPF_LD|BPF_IMM|BPF_DW).
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_BTF_ID = 3
PSEUDO_FUNC = 4
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6
PSEUDO_NAMES = {
    PSEUDO_MAP_FD: "map_fd", PSEUDO_MAP_VALUE: "map_value", PSEUDO_BTF_ID: "btf_id",
    PSEUDO_FUNC: "func", PSEUDO_MAP_IDX: "map_idx", PSEUDO_MAP_IDX_VALUE: "map_idx_value",
}

# Pseudo source registers of call.
PSEUDO_CALL = 1
PSEUDO_KFUNC_CALL = 2

# Frequently used whole opcodes.
LD_IMM64 = LD | IMM | DW  # 0x18
CALL_OP = JMP | CALL  # 0x85
EXIT_OP = JMP | EXIT  # 0x95
JA_OP = JMP | JA  # 0x05

MAX_REG = 10  # r10 is the read-only frame pointer


def opclass(opcode: int) -> int:
    return opcode & 0x07


def is_ld_imm64(opcode: int) -> bool:
    return opcode == LD_IMM64

# Added by the text-assembler owner (additive): ISA v4 forms the disassembler prints.
JCOND = 0xE0  # BPF_JMP|BPF_JCOND with src=BPF_MAY_GOTO is ``may_goto``
MAY_GOTO = 0
JCOND_OP = JMP | JCOND  # 0xe5
ADDR_SPACE_CAST = 1  # off of ALU64|MOV|X: ``rX = addr_space_cast(rY, dst_as, src_as)``
LDSX_NAMES = {W: "s32", H: "s16", B: "s8"}  # BPF_LDX|BPF_MEMSX sizes
