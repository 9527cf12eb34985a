"""``pybpf disasm FILE|-``: bytecode (raw, or hex text) to the kernel's syntax."""

from __future__ import annotations

import argparse
import re
import sys

from .disasm import disassemble_insn, validate_program
from .errors import AssemblerError
from .instruction import decode

_HEX_TEXT = re.compile(rb"^[0-9a-fA-FxX\s,;:{}\\]*$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="bytecode file, raw or hex text (autodetected); '-' for stdin")
    parser.add_argument("--plain", action="store_true",
                        help="instruction text only, without the verifier log's 'N: (xx) ' prefix")


def parse_hex(data: bytes) -> bytes:
    """Hex text in the usual spellings: ``b7 00 ..``, ``b700..``, ``0xb7, 0x00``, ``\\xb7``.

    A token is one byte (two digits) or a run of whole bytes; ``0x``/``\\x``
    prefixes and commas are separators.
    """
    text = data.decode("ascii")
    text = re.sub(r"(?i)0x|\\x", " ", text)
    out = bytearray()
    for token in re.split(r"[\s,;:{}]+", text):
        if not token:
            continue
        if len(token) % 2:
            raise AssemblerError(f"hex input: odd number of digits in {token!r} "
                                 f"(after byte offset {len(out)})")
        out += bytes.fromhex(token)
    return bytes(out)


def looks_like_hex(data: bytes) -> bool:
    """Raw bytecode almost never consists only of hex digits and separators."""
    return bool(data.strip()) and _HEX_TEXT.match(data) is not None


def run(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.file == "-" else args.file
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                data = f.read()
    except OSError as exc:
        print(f"pybpf disasm: error: cannot read {name}: {exc}", file=sys.stderr)
        return 1
    try:
        code = parse_hex(data) if looks_like_hex(data) else data
        if not code:
            raise AssemblerError("no instructions in input")
        insns = validate_program(decode(code))
    except AssemblerError as exc:
        print(f"pybpf disasm: error: {name}: {exc}", file=sys.stderr)
        return 1
    out = []
    pos = 0
    for insn in insns:
        text = disassemble_insn(insn)
        out.append(text if args.plain else f"{pos}: ({insn.opcode:02x}) {text}")
        pos += insn.slots
    sys.stdout.write("\n".join(out) + "\n")
    return 0
