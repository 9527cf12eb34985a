"""``pybpf asm FILE [-o OUT] [--format bin|hex|c]``: kernel-syntax text to bytecode."""

from __future__ import annotations

import argparse
import sys

from .disasm import disassemble_insn, validate_program
from .errors import AssemblerError
from .instruction import encode
from .text import parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="assembly text in the kernel's syntax ('-' for stdin)")
    parser.add_argument("-o", "--output", help="output file (default: stdout)")
    parser.add_argument("--format", choices=("bin", "hex", "c"),
                        help="raw bytes, hex (one 8-byte slot a line) or a C array of struct bpf_insn "
                             "(default: bin with -o, hex on stdout)")


def format_hex(code: bytes) -> str:
    return "".join(" ".join(f"{b:02x}" for b in code[i:i + 8]) + "\n" for i in range(0, len(code), 8))


def format_c(insns, code: bytes, name: str = "prog") -> str:
    """A C initializer, one ``struct bpf_insn`` a slot, with the instruction text as comment."""
    lines = [f"struct bpf_insn {name}[] = {{"]
    pos = 0
    for insn in insns:
        text = disassemble_insn(insn)
        for k in range(insn.slots):
            slot = code[(pos + k) * 8:(pos + k + 1) * 8]
            imm = int.from_bytes(slot[4:8], "little", signed=True)
            off = int.from_bytes(slot[2:4], "little", signed=True)
            comment = f"  /* {text} */" if k == 0 else ""
            lines.append(f"\t{{ .code = 0x{slot[0]:02x}, .dst_reg = {slot[1] & 0xF}, .src_reg = {slot[1] >> 4}, "
                         f".off = {off}, .imm = {imm} }},{comment}")
        pos += insn.slots
    lines.append("};")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.file == "-" else args.file
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as f:
                text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"pybpf asm: error: cannot read {name}: {exc}", file=sys.stderr)
        return 1
    try:
        asm = parse(text, name=name)
        code = asm.encode()
        validate_program(asm.resolved())
    except AssemblerError as exc:
        print(f"pybpf asm: error: {exc}", file=sys.stderr)
        return 1
    if asm.maps:
        print(f"pybpf asm: note: map references by name ({', '.join(asm.maps)}) are encoded with fd 0; "
              f"a loader relocates them", file=sys.stderr)
    fmt = args.format or ("bin" if args.output else "hex")
    if fmt == "bin":
        data = code
    elif fmt == "hex":
        data = format_hex(code).encode()
    else:
        data = format_c(asm.resolved(), code).encode()
    if args.output:
        try:
            with open(args.output, "wb") as f:
                f.write(data)
        except OSError as exc:
            print(f"pybpf asm: error: cannot write {args.output}: {exc}", file=sys.stderr)
            return 1
    else:
        if fmt == "bin" and sys.stdout.isatty():
            print("pybpf asm: error: refusing to write binary to a terminal; use -o or --format hex",
                  file=sys.stderr)
            return 1
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
