"""``pybpf disasm FILE|-``: bytecode (raw, hex text or a C array) to the kernel's syntax.

:func:`read_program_input` is the one reader of program files for the CLI:
``pybpf disasm`` and ``pybpf verify`` both take whatever ``pybpf asm``
writes (raw bytes, hex text, a C array of ``struct bpf_insn``), so a
pipeline ``pybpf asm x.s | pybpf verify -`` works with asm's default output,
and each command can say what it got when it is the wrong thing (assembly
text given to the disassembler).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from .disasm import disassemble_insn, validate_program
from .errors import AssemblerError
from .instruction import decode

__all__ = ["add_arguments", "run", "ProgramInput", "read_program_input", "classify_input",
           "parse_hex", "parse_c_array", "looks_like_hex"]

_HEX_TEXT = re.compile(rb"^[0-9a-fA-FxX\s,;:{}\\]*$")
# One initializer of `pybpf asm --format c` (or any designated-initializer bpf_insn array).
_C_ELEMENT = re.compile(r"\{([^{}]*\.code\s*=[^{}]*)\}")
_C_FIELD = re.compile(r"\.\s*(\w+)\s*=\s*([^,}]*)")
_C_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_C_RANGES = {"code": (0, 0xFF), "dst_reg": (0, 15), "src_reg": (0, 15),
             "off": (-(1 << 15), (1 << 16) - 1), "imm": (-(1 << 31), (1 << 32) - 1)}
_TEXT_CONTROLS = set("\t\n\r\f\v")


@dataclass(frozen=True)
class ProgramInput:
    """A program file as read.

    ``kind`` is how it was written: ``"raw"``, ``"hex"`` or ``"c"`` (bytecode,
    decoded into ``code``) or ``"asm"`` (kernel-syntax text, in ``text``).
    """

    name: str
    kind: str
    code: bytes = b""
    text: str = ""

    @property
    def is_bytecode(self) -> bool:
        return self.kind != "asm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="bytecode file: raw, hex text or a C array as `pybpf asm` "
                                     "writes them (autodetected); '-' for stdin")
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


def parse_c_array(text: str) -> bytes:
    """Bytecode from ``{ .code = 0xb7, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 1 },`` lines.

    Fields left out are zero, as in C. Raises AssemblerError naming the
    element (slot) and field that is not a number or out of range.
    """
    out = bytearray()
    for slot, m in enumerate(_C_ELEMENT.finditer(_C_COMMENT.sub(" ", text))):
        values = dict.fromkeys(_C_RANGES, 0)
        for name, raw in _C_FIELD.findall(m.group(1)):
            if name not in _C_RANGES:
                raise AssemblerError(f"C array element {slot}: unknown field .{name} "
                                     f"(struct bpf_insn has .code, .dst_reg, .src_reg, .off, .imm)")
            try:
                value = int(raw.strip().rstrip("uUlL"), 0)
            except ValueError:
                raise AssemblerError(f"C array element {slot}: .{name} = {raw.strip()!r} is not "
                                     f"a number") from None
            lo, hi = _C_RANGES[name]
            if not lo <= value <= hi:
                raise AssemblerError(f"C array element {slot}: .{name} = {value} is out of range "
                                     f"{lo}..{hi}")
            values[name] = value
        out += bytes((values["code"], values["dst_reg"] | values["src_reg"] << 4))
        out += (values["off"] & 0xFFFF).to_bytes(2, "little")
        out += (values["imm"] & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(out)


def _as_text(data: bytes) -> str | None:
    """``data`` as text if it is UTF-8 without control characters (bytecode never is)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(c < " " and c not in _TEXT_CONTROLS or c == "\x7f" for c in text):
        return None
    return text


def classify_input(data: bytes, name: str = "<input>") -> ProgramInput:
    """Tell apart hex text, a C array, assembly text and raw bytecode; decode the bytecode.

    Hex comes first (assembly always has letters beyond a-f: ``exit``), then
    text with ``.code =`` initializers, then any other text, which is taken
    for assembly; everything else is raw bytecode.
    """
    if not data.strip():
        raise AssemblerError("no instructions in input (it is empty)")
    if looks_like_hex(data):
        return ProgramInput(name, "hex", parse_hex(data))
    text = _as_text(data)
    if text is None:
        return ProgramInput(name, "raw", bytes(data))
    if _C_ELEMENT.search(_C_COMMENT.sub(" ", text)):
        return ProgramInput(name, "c", parse_c_array(text))
    if "struct bpf_insn" in text:
        raise AssemblerError("a C array of struct bpf_insn is read only in the designated-initializer "
                             "form `pybpf asm --format c` writes ({ .code = 0x.., .dst_reg = .., ... })")
    return ProgramInput(name, "asm", text=text)


def read_program_input(path: str) -> ProgramInput:
    """Read FILE (``-``: stdin) and classify it; OSError if unreadable, AssemblerError if malformed."""
    name = "<stdin>" if path == "-" else path
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    return classify_input(data, name)


def run(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.file == "-" else args.file
    try:
        inp = read_program_input(args.file)
    except OSError as exc:
        print(f"pybpf disasm: error: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except AssemblerError as exc:
        print(f"pybpf disasm: error: {name}: {exc}", file=sys.stderr)
        return 1
    if not inp.is_bytecode:
        shown = "-" if args.file == "-" else args.file
        print(f"pybpf disasm: error: {name}: this looks like assembly text, not bytecode; "
              f"`pybpf asm {shown}` assembles it (`pybpf verify` reads it as it is)", file=sys.stderr)
        return 1
    try:
        insns = validate_program(decode(inp.code))
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
