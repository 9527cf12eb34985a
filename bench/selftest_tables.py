"""Read the kernel's ``struct bpf_test`` verifier tables into pybpf programs.

The kernel's BPF selftests (tools/testing/selftests/bpf/verifier/*.c, GPL)
describe each test as a C initializer: a description, ``.insns`` built from the
BPF_* instruction macros of tools/include/linux/filter.h, ``.result``,
``.errstr``, ``.prog_type`` and ``.fixup_map_*`` lists of the instruction
slots that load a map fd. They are read at benchmark time from a Debian
linux-source package (nothing of them is stored in this repository), and
this module turns each into a list of :class:`pybpf.asm.instruction.Instruction`
with ``map`` set on the map-loading ``ld_imm64``\\ s, the same shape the
verifier corpus uses.

It is a small C reader, not a C compiler: a token-level preprocessor for the
``#define``\\ s of the table file and test_verifier.c, an expression evaluator
(integers, casts, ``sizeof``/``offsetof`` against the struct layouts read from
the tree's include/uapi/linux/bpf.h) and one Python function per instruction
macro. Anything else raises :class:`Unsupported` naming it, and the test is
counted as skipped for that reason.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "verifier", "corpus"))

from dsl import MapDef  # noqa: E402

from pybpf.asm.helpers import HELPER_IDS  # noqa: E402
from pybpf.asm.instruction import decode  # noqa: E402


class Unsupported(Exception):
    """A construct this reader does not evaluate; the message names it."""


# --- tokens -------------------------------------------------------------------

_TOK = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:\\.|[^"\\])*")
  | (?P<chr>'(?:\\.|[^'\\])')
  | (?P<num>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<op>\#\#|<<|>>|<=|>=|==|!=|&&|\|\||->|\.\.\.|[-+*/%&|^~!<>=?:;,.(){}\[\]\#])
""", re.X)


def tokenize(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOK.match(text, pos)
        if not m:
            raise Unsupported(f"character {text[pos]!r}")
        if m.lastgroup != "ws":
            out.append(m.group())
        pos = m.end()
    return out


def strip_comments(text: str) -> str:
    def repl(m):
        s = m.group()
        return s if s[0] in "\"'" else (" " if s.startswith("/*") else "")
    return re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'|/\*.*?\*/|//[^\n]*', repl, text, flags=re.S)


@dataclass
class Macro:
    params: list | None  # None: object-like
    body: list


def preprocess(text: str, macros: dict) -> str:
    """Collect #defines into ``macros`` and drop directives; ``#if`` keeps its first branch
    (the tables only use it for __BYTE_ORDER__ == little endian)."""
    text = strip_comments(text).replace("\\\n", " ")
    out, skip = [], []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            d = s[1:].strip()
            if d.startswith("if"):
                skip.append(False)
            elif d.startswith("else") or d.startswith("elif"):
                if skip:
                    skip[-1] = True
            elif d.startswith("endif"):
                if skip:
                    skip.pop()
            elif d.startswith("define") and not any(skip):
                m = re.match(r"define\s+(\w+)(\((.*?)\))?\s*(.*)", d)
                if m:
                    params = None if m.group(2) is None else [p.strip() for p in m.group(3).split(",") if p.strip()]
                    macros[m.group(1)] = Macro(params, tokenize(m.group(4)))
            out.append("")
            continue
        out.append("" if any(skip) else line)
    return "\n".join(out)


def _past_group(toks, i):
    """toks[i] == '{'; the index just past its matching '}'."""
    depth = 0
    while True:
        depth += toks[i] == "{"
        depth -= toks[i] == "}"
        i += 1
        if depth == 0:
            return i


def _split_args(toks, i):
    """toks[i] == '('; returns (args, index after ')')."""
    depth, args, cur = 0, [], []
    j = i
    while j < len(toks):
        t = toks[j]
        if t in "({[":
            depth += 1
            if depth > 1:
                cur.append(t)
        elif t in ")}]":
            depth -= 1
            if depth == 0:
                if cur or args:
                    args.append(cur)
                return args, j + 1
            cur.append(t)
        elif t == "," and depth == 1:
            args.append(cur)
            cur = []
        else:
            cur.append(t)
        j += 1
    raise Unsupported("unbalanced parentheses")


def expand(toks: list, macros: dict, depth: int = 0) -> list:
    if depth > 20:
        raise Unsupported("macro recursion")
    out, i, changed = [], 0, False
    while i < len(toks):
        t = toks[i]
        m = macros.get(t)
        if m is None:
            out.append(t)
            i += 1
            continue
        if m.params is None:
            out += m.body
            i += 1
            changed = True
            continue
        if i + 1 >= len(toks) or toks[i + 1] != "(":
            out.append(t)
            i += 1
            continue
        args, i = _split_args(toks, i + 1)
        env = dict(zip(m.params, args))
        body, k = [], 0
        while k < len(m.body):
            b = m.body[k]
            if b == "##" and body and k + 1 < len(m.body):
                nxt = m.body[k + 1]
                nxt_toks = env.get(nxt, [nxt])
                body[-1] = body[-1] + (nxt_toks[0] if nxt_toks else "")
                body += nxt_toks[1:]
                k += 2
                continue
            body += env.get(b, [b])
            k += 1
        out += body
        changed = True
    return expand(out, macros, depth + 1) if changed else out


# --- struct layouts and constants from uapi bpf.h ---------------------------

_SIZES = {"__u8": 1, "__s8": 1, "__u16": 2, "__s16": 2, "__u32": 4, "__s32": 4, "__u64": 8,
          "__s64": 8, "__be16": 2, "__be32": 4, "int": 4, "char": 1, "u32": 4, "u64": 8,
          "long": 8, "short": 2, "__sum16": 2, "__wsum": 4}


@dataclass
class Layout:
    size: int
    align: int
    fields: dict = field(default_factory=dict)  # name -> (offset, size)


class Uapi:
    """Struct layouts, enum values and #define constants of one kernel's uapi bpf.h."""

    def __init__(self, path: str):
        text = strip_comments(open(path).read()).replace("\\\n", " ")
        self.consts: dict[str, int] = {}
        self.structs: dict[str, Layout] = {}
        for m in re.finditer(r"^#define\s+(BPF_\w+|XDP_\w+|SK_\w+)\s+([-\w \t<|()]+?)[ \t]*$", text, re.M):
            try:
                self.consts[m.group(1)] = self.eval_simple(m.group(2))
            except Exception:
                pass
        for m in re.finditer(r"enum\s*\w*\s*\{(.*?)\}", text, re.S):
            val = -1
            for item in m.group(1).split(","):
                item = item.strip()
                if not item or not re.match(r"\w", item):
                    continue
                name, _, expr = item.partition("=")
                name = name.strip()
                if not re.fullmatch(r"\w+", name):
                    continue
                try:
                    val = self.eval_simple(expr) if expr.strip() else val + 1
                except Exception:
                    val += 1
                self.consts[name] = val
        self._text = text
        # test_verifier.c's own value structs, and x86-64's bpf_perf_event_data (pt_regs is 168 bytes)
        self.structs["struct test_val"] = Layout(48, 4, {"index": (0, 4), "foo": (4, 44)})
        self.structs["struct other_val"] = Layout(16, 8, {"foo": (0, 8), "bar": (8, 8)})
        self.structs["struct bpf_perf_event_data"] = Layout(
            184, 8, {"regs": (0, 168), "sample_period": (168, 8), "addr": (176, 8)})

    def eval_simple(self, expr: str) -> int:
        expr = re.sub(r"(\d)[uUlL]+\b", r"\1", expr)
        return int(eval(expr, {"__builtins__": {}}, dict(self.consts)))

    def layout(self, kind: str, name: str) -> Layout:
        key = f"{kind} {name}"
        if key in self.structs:
            return self.structs[key]
        m = re.search(rf"\b{kind}\s+{name}\s*\{{", self._text)
        if not m:
            raise Unsupported(f"{key} not in uapi bpf.h")
        body, _ = self._body(m.end())
        lay = self._parse_body(body, kind == "union")
        self.structs[key] = lay
        return lay

    def _body(self, start):
        depth, i = 1, start
        while depth:
            c = self._text[i]
            depth += c == "{"
            depth -= c == "}"
            i += 1
        return self._text[start:i - 1], i

    def _parse_body(self, body: str, is_union: bool) -> Layout:
        toks = tokenize(body)
        lay = Layout(0, 1)
        off = 0
        i = 0

        def place(name, size, align, sub=None):
            nonlocal off
            o = 0 if is_union else (off + align - 1) // align * align
            if name:
                lay.fields[name] = (o, size)
            if sub:
                for fn, (fo, fs) in sub.fields.items():
                    lay.fields.setdefault(fn, (o + fo, fs))
            lay.align = max(lay.align, align)
            if is_union:
                lay.size = max(lay.size, size)
            else:
                off = o + size

        while i < len(toks):
            t = toks[i]
            if t == "__bpf_md_ptr":
                args, i = _split_args(toks, i + 1)
                place(args[-1][-1], 8, 8)
                while toks[i] != ";":
                    i += 1
                i += 1
                continue
            if t in ("struct", "union") and i + 1 < len(toks) and (toks[i + 1] == "{" or toks[i + 2] == "{"):
                j = i + 1 if toks[i + 1] == "{" else i + 2
                k = _past_group(toks, j)
                sub = self._parse_body(" ".join(toks[j + 1:k - 1]), t == "union")
                sub.size = (sub.size + sub.align - 1) // sub.align * sub.align
                name = toks[k] if toks[k] != ";" else None
                while toks[k] != ";":
                    k += 1
                place(name, sub.size, sub.align, sub if name is None else None)
                i = k + 1
                continue
            # plain declaration up to ';'
            k = i
            while toks[k] != ";":
                k += 1
            decl = toks[i:k]
            i = k + 1
            if "(" in decl or not decl:
                continue
            if decl[0] in ("struct", "union"):
                if "*" in decl:
                    place(decl[-1], 8, 8)
                    continue
                sub = self.layout(decl[0], decl[1])
                name = decl[2]
                size, align = sub.size, sub.align
            else:
                dims = []
                while decl and decl[-1] == "]":
                    lb = len(decl) - 1 - decl[::-1].index("[")
                    dims.append(self.eval_simple(" ".join(decl[lb + 1:-1])))
                    decl = decl[:lb]
                if ":" in decl:  # bitfield such as ``__u32 :32``
                    base = _SIZES.get(decl[0], 4)
                    bits = int(decl[-1])
                    place(None, bits // 8, base)
                    continue
                if "*" in decl:
                    place(decl[-1], 8, 8)
                    continue
                tname = next((d for d in decl if d in _SIZES), None)
                if tname is None:
                    raise Unsupported(f"type {' '.join(decl)}")
                align = _SIZES[tname]
                size = align
                for d in dims:
                    size *= d
                name = decl[-1]
                if "aligned" in " ".join(decl):
                    align = 8
                place(name, size, align)
                continue
            place(name, size, align)
        lay.size = max(lay.size, off)
        lay.size = (lay.size + lay.align - 1) // lay.align * lay.align
        return lay

    def offsetof(self, kind, name, member) -> tuple[int, int]:
        lay = self.layout(kind, name)
        parts = member.split(".")
        base = 0
        fld = parts[0]
        arr = re.fullmatch(r"(\w+)\[(\d+)\]", fld)
        if arr:
            o, s = lay.fields[arr.group(1)]
            # element size: take it from the declaration's base type
            esz = self._elem_size(kind, name, arr.group(1))
            return base + o + int(arr.group(2)) * esz, esz
        if fld not in lay.fields:
            raise Unsupported(f"offsetof({kind} {name}, {member})")
        return lay.fields[fld]

    def _elem_size(self, kind, name, field_name):
        if name == "test_val":
            return 4
        m = re.search(rf"\b{kind}\s+{name}\s*\{{", self._text)
        body, _ = self._body(m.end())
        d = re.search(rf"(\w+)\s+{field_name}\s*\[", body)
        return _SIZES.get(d.group(1), 4) if d else 4


# --- expressions --------------------------------------------------------------

OPC = {
    "BPF_LD": 0x00, "BPF_LDX": 0x01, "BPF_ST": 0x02, "BPF_STX": 0x03, "BPF_ALU": 0x04,
    "BPF_JMP": 0x05, "BPF_JMP32": 0x06, "BPF_ALU64": 0x07,
    "BPF_W": 0x00, "BPF_H": 0x08, "BPF_B": 0x10, "BPF_DW": 0x18,
    "BPF_IMM": 0x00, "BPF_ABS": 0x20, "BPF_IND": 0x40, "BPF_MEM": 0x60, "BPF_MEMSX": 0x80,
    "BPF_ATOMIC": 0xC0, "BPF_XADD": 0xC0,
    "BPF_ADD": 0x00, "BPF_SUB": 0x10, "BPF_MUL": 0x20, "BPF_DIV": 0x30, "BPF_OR": 0x40,
    "BPF_AND": 0x50, "BPF_LSH": 0x60, "BPF_RSH": 0x70, "BPF_NEG": 0x80, "BPF_MOD": 0x90,
    "BPF_XOR": 0xA0, "BPF_MOV": 0xB0, "BPF_ARSH": 0xC0, "BPF_END": 0xD0,
    "BPF_JA": 0x00, "BPF_JEQ": 0x10, "BPF_JGT": 0x20, "BPF_JGE": 0x30, "BPF_JSET": 0x40,
    "BPF_JNE": 0x50, "BPF_JSGT": 0x60, "BPF_JSGE": 0x70, "BPF_CALL": 0x80, "BPF_EXIT": 0x90,
    "BPF_JLT": 0xA0, "BPF_JLE": 0xB0, "BPF_JSLT": 0xC0, "BPF_JSLE": 0xD0,
    "BPF_K": 0x00, "BPF_X": 0x08, "BPF_TO_LE": 0x00, "BPF_TO_BE": 0x08,
    "BPF_FETCH": 0x01, "BPF_XCHG": 0xE0 | 0x01, "BPF_CMPXCHG": 0xF0 | 0x01,
    "BPF_PSEUDO_MAP_FD": 1, "BPF_PSEUDO_MAP_VALUE": 2, "BPF_PSEUDO_BTF_ID": 3,
    "BPF_PSEUDO_FUNC": 4, "BPF_PSEUDO_MAP_IDX": 5, "BPF_PSEUDO_MAP_IDX_VALUE": 6,
    "BPF_PSEUDO_CALL": 1, "BPF_PSEUDO_KFUNC_CALL": 2,
    "BPF_REG_FP": 10, "BPF_REG_ARG1": 1, "BPF_REG_ARG2": 2, "BPF_REG_ARG3": 3,
    "BPF_REG_ARG4": 4, "BPF_REG_ARG5": 5, "BPF_REG_CTX": 1, "BPF_FROM_LE": 0x00, "BPF_FROM_BE": 0x08,
    "EINVAL": 22, "ENOENT": 2, "EPERM": 1, "E2BIG": 7, "ENOMEM": 12,
    "MAX_ENTRIES": 11, "TEST_DATA_LEN": 64, "POINTER_VALUE": 0xCAFE4A,
    "INT_MAX": 0x7FFFFFFF, "INT_MIN": -0x80000000, "UINT_MAX": 0xFFFFFFFF,
    "LLONG_MIN": -(1 << 63), "LLONG_MAX": (1 << 63) - 1, "ULLONG_MAX": (1 << 64) - 1,
    "SHRT_MAX": 0x7FFF, "SHRT_MIN": -0x8000, "USHRT_MAX": 0xFFFF,
    "ETH_HLEN": 14, "ETH_P_IP": 0x0800, "ETH_P_IPV6": 0x86DD, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17,
    "AF_INET": 2, "AF_INET6": 10, "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "true": 1, "false": 0,
    "NULL": 0, "INSN_OFF_MASK": -1, "INSN_IMM_MASK": -1,
    "F_NEEDS_EFFICIENT_UNALIGNED_ACCESS": 1 << 16, "F_LOAD_WITH_STRICT_ALIGNMENT": 1 << 17,
    "ACCEPT": 1, "REJECT": 2, "VERBOSE_ACCEPT": 3, "UNDEF": 0,
    "MAX_TEST_INSNS": 1000000, "MAX_JMP_SEQ": 8192, "BPF_MAXINSNS": 4096,
}
for _i in range(11):
    OPC[f"BPF_REG_{_i}"] = _i

_CTYPES = {"char", "short", "int", "long", "unsigned", "signed", "__u8", "__u16", "__u32",
           "__u64", "__s8", "__s16", "__s32", "__s64", "u8", "u16", "u32", "u64", "s8", "s16",
           "s32", "s64", "size_t", "struct", "union", "void", "*", "__be16", "__be32",
           "uint32_t", "uint64_t", "int32_t", "int64_t", "uint16_t", "uint8_t"}
_CAST = {"__u8": (8, False), "u8": (8, False), "uint8_t": (8, False), "__s8": (8, True),
         "__u16": (16, False), "u16": (16, False), "__s16": (16, True), "s16": (16, True),
         "short": (16, True), "__u32": (32, False), "u32": (32, False), "uint32_t": (32, False),
         "unsigned": (32, False), "__s32": (32, True), "s32": (32, True), "int": (32, True),
         "int32_t": (32, True), "__u64": (64, False), "u64": (64, False), "uint64_t": (64, False),
         "long": (64, True), "__s64": (64, True), "s64": (64, True), "size_t": (64, False)}


def _cast(v, bits, signed):
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


class Evaluator:
    """C integer expressions over the table's tokens, with BPF_* macros as Python calls."""

    def __init__(self, uapi: Uapi):
        self.u = uapi

    def ident(self, name):
        if name in OPC:
            return OPC[name]
        if name.startswith("BPF_FUNC_"):
            h = name[9:]
            if h in HELPER_IDS:
                return HELPER_IDS[h]
        if name in self.u.consts:
            return self.u.consts[name]
        raise Unsupported(f"identifier {name}")

    # recursive descent over a token list
    def expr(self, toks):
        self.t, self.i = toks, 0
        v = self._cond()
        if self.i != len(self.t):
            raise Unsupported(f"trailing tokens {' '.join(self.t[self.i:self.i + 5])}")
        return v

    def _peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def _next(self):
        t = self._peek()
        self.i += 1
        return t

    def _cond(self):
        c = self._bin(0)
        if self._peek() == "?":
            self._next()
            a = self._cond()
            if self._next() != ":":
                raise Unsupported("ternary")
            b = self._cond()
            return a if c else b
        return c

    _PREC = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
             ("<<", ">>"), ("+", "-"), ("*", "/", "%")]

    def _bin(self, level):
        if level == len(self._PREC):
            return self._unary()
        v = self._bin(level + 1)
        while self._peek() in self._PREC[level]:
            o = self._next()
            w = self._bin(level + 1)
            v = {"||": lambda: int(bool(v or w)), "&&": lambda: int(bool(v and w)),
                 "|": lambda: v | w, "^": lambda: v ^ w, "&": lambda: v & w,
                 "==": lambda: int(v == w), "!=": lambda: int(v != w), "<": lambda: int(v < w),
                 ">": lambda: int(v > w), "<=": lambda: int(v <= w), ">=": lambda: int(v >= w),
                 "<<": lambda: v << w, ">>": lambda: v >> w, "+": lambda: v + w,
                 "-": lambda: v - w, "*": lambda: v * w,
                 "/": lambda: int(v / w), "%": lambda: v - int(v / w) * w}[o]()
        return v

    def _unary(self):
        t = self._peek()
        if t == "-":
            self._next()
            return -self._unary()
        if t == "+":
            self._next()
            return self._unary()
        if t == "~":
            self._next()
            return ~self._unary()
        if t == "!":
            self._next()
            return int(not self._unary())
        if t == "(" and self.i + 1 < len(self.t) and self.t[self.i + 1] in _CTYPES:
            j = self.i + 1
            while self.t[j] != ")":
                j += 1
            typ = [x for x in self.t[self.i + 1:j] if x != "*"]
            ptr = "*" in self.t[self.i + 1:j]
            self.i = j + 1
            v = self._unary()
            if ptr:
                return v
            if "unsigned" in typ and "long" in typ:
                return _cast(v, 64, False)
            for name in reversed(typ):
                if name in _CAST:
                    return _cast(v, *_CAST[name])
            return v
        return self._postfix()

    def _postfix(self):
        t = self._next()
        if t is None:
            raise Unsupported("empty expression")
        if t == "(":
            v = self._cond()
            if self._next() != ")":
                raise Unsupported("missing )")
            return v
        if re.fullmatch(r"0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*", t):
            s = t.rstrip("uUlL")
            return int(s, 16) if s[:2] in ("0x", "0X") else int(s, 8) if len(s) > 1 and s[0] == "0" else int(s)
        if t.startswith("'"):
            return ord(t[1])
        if t in ("sizeof", "offsetof", "offsetofend", "__builtin_offsetof", "bpf_ctx_range",
                 "sizeof_field", "FIELD_SIZEOF"):
            args, self.i = _split_args(self.t, self.i)
            if t == "sizeof":
                a = args[0]
                if a[0] in ("struct", "union"):
                    return self.u.layout(a[0], a[1]).size
                if len(a) == 1 and a[0] in _CAST:
                    return _CAST[a[0]][0] // 8
                if "long" in a:
                    return 8
                raise Unsupported(f"sizeof({' '.join(a)})")
            kind, sname = args[0][0], args[0][1]
            member = "".join(args[1])
            if t in ("sizeof_field", "FIELD_SIZEOF"):
                return self.u.offsetof(kind, sname, member)[1]
            o, s = self.u.offsetof(kind, sname, member)
            return o + s if t == "offsetofend" else o
        if re.fullmatch(r"[A-Za-z_]\w*", t):
            if self._peek() == "(":
                raise Unsupported(f"call {t}()")
            return self.ident(t)
        raise Unsupported(f"token {t!r}")


# --- instruction macros ------------------------------------------------------

def _raw(code, dst, src, off, imm):
    return [(code & 0xFF, dst & 0xF, src & 0xF, _cast(off, 16, True), _cast(imm, 32, True))]


def _ld64(dst, src, imm):
    return [(0x18, dst, src, 0, _cast(imm, 32, True)), (0, 0, 0, 0, _cast(imm >> 32, 32, True))]


O = OPC
INSN_MACROS = {
    "BPF_ALU64_REG": lambda op, d, s: _raw(O["BPF_ALU64"] | op | O["BPF_X"], d, s, 0, 0),
    "BPF_ALU32_REG": lambda op, d, s: _raw(O["BPF_ALU"] | op | O["BPF_X"], d, s, 0, 0),
    "BPF_ALU64_IMM": lambda op, d, imm: _raw(O["BPF_ALU64"] | op | O["BPF_K"], d, 0, 0, imm),
    "BPF_ALU32_IMM": lambda op, d, imm: _raw(O["BPF_ALU"] | op | O["BPF_K"], d, 0, 0, imm),
    "BPF_ENDIAN": lambda typ, d, ln: _raw(O["BPF_ALU"] | O["BPF_END"] | typ, d, 0, 0, ln),
    "BPF_MOV64_REG": lambda d, s: _raw(O["BPF_ALU64"] | O["BPF_MOV"] | O["BPF_X"], d, s, 0, 0),
    "BPF_MOV32_REG": lambda d, s: _raw(O["BPF_ALU"] | O["BPF_MOV"] | O["BPF_X"], d, s, 0, 0),
    "BPF_MOV64_IMM": lambda d, imm: _raw(O["BPF_ALU64"] | O["BPF_MOV"] | O["BPF_K"], d, 0, 0, imm),
    "BPF_MOV32_IMM": lambda d, imm: _raw(O["BPF_ALU"] | O["BPF_MOV"] | O["BPF_K"], d, 0, 0, imm),
    "BPF_MOV64_RAW": lambda t, d, s, imm: _raw(O["BPF_ALU64"] | O["BPF_MOV"] | t, d, s, 0, imm),
    "BPF_MOV32_RAW": lambda t, d, s, imm: _raw(O["BPF_ALU"] | O["BPF_MOV"] | t, d, s, 0, imm),
    "BPF_LD_ABS": lambda sz, imm: _raw(O["BPF_LD"] | sz | O["BPF_ABS"], 0, 0, 0, imm),
    "BPF_LD_IND": lambda sz, s, imm: _raw(O["BPF_LD"] | sz | O["BPF_IND"], 0, s, 0, imm),
    "BPF_LDX_MEM": lambda sz, d, s, off: _raw(O["BPF_LDX"] | sz | O["BPF_MEM"], d, s, off, 0),
    "BPF_LDX_MEMSX": lambda sz, d, s, off: _raw(O["BPF_LDX"] | sz | O["BPF_MEMSX"], d, s, off, 0),
    "BPF_STX_MEM": lambda sz, d, s, off: _raw(O["BPF_STX"] | sz | O["BPF_MEM"], d, s, off, 0),
    "BPF_ATOMIC_OP": lambda sz, op, d, s, off: _raw(O["BPF_STX"] | sz | O["BPF_ATOMIC"], d, s, off, op),
    "BPF_STX_XADD": lambda sz, d, s, off: _raw(O["BPF_STX"] | sz | O["BPF_ATOMIC"], d, s, off, O["BPF_ADD"]),
    "BPF_ST_MEM": lambda sz, d, off, imm: _raw(O["BPF_ST"] | sz | O["BPF_MEM"], d, 0, off, imm),
    "BPF_JMP_REG": lambda op, d, s, off: _raw(O["BPF_JMP"] | op | O["BPF_X"], d, s, off, 0),
    "BPF_JMP32_REG": lambda op, d, s, off: _raw(O["BPF_JMP32"] | op | O["BPF_X"], d, s, off, 0),
    "BPF_JMP_IMM": lambda op, d, imm, off: _raw(O["BPF_JMP"] | op | O["BPF_K"], d, 0, off, imm),
    "BPF_JMP32_IMM": lambda op, d, imm, off: _raw(O["BPF_JMP32"] | op | O["BPF_K"], d, 0, off, imm),
    "BPF_JMP_A": lambda off: _raw(O["BPF_JMP"] | O["BPF_JA"], 0, 0, off, 0),
    "BPF_EMIT_CALL": lambda f: _raw(O["BPF_JMP"] | O["BPF_CALL"], 0, 0, 0, f),
    "BPF_CALL_REL": lambda t: _raw(O["BPF_JMP"] | O["BPF_CALL"], 0, 1, 0, t),
    "BPF_RAW_INSN": lambda c, d, s, off, imm: _raw(c, d, s, off, imm),
    "BPF_EXIT_INSN": lambda: _raw(O["BPF_JMP"] | O["BPF_EXIT"], 0, 0, 0, 0),
    "BPF_LD_IMM64": lambda d, imm: _ld64(d, 0, imm),
    "BPF_LD_IMM64_RAW": lambda d, s, imm: _ld64(d, s, imm),
    "BPF_LD_IMM64_RAW_FULL": lambda d, s, o1, o2, i1, i2: [
        (0x18, d, s, _cast(o1, 16, True), _cast(i1, 32, True)), (0, 0, 0, _cast(o2, 16, True), _cast(i2, 32, True))],
    "BPF_LD_MAP_FD": lambda d, fd: _ld64(d, 1, fd),
    "BPF_LD_MAP_VALUE": lambda d, fd, off: [(0x18, d, 2, 0, _cast(fd, 32, True)), (0, 0, 0, 0, _cast(off, 32, True))],
    "SKIP_INSNS": lambda: _raw(0xDE, 0xA, 0xD, 0xBEEF, 0xDEADBEEF),
}


def eval_insns(toks: list, ev: Evaluator) -> list[tuple]:
    """The slots of an ``.insns = { ... }`` list (``toks`` without the outer braces)."""
    slots = []
    i = 0
    while i < len(toks):
        if toks[i] == ",":
            i += 1
            continue
        name = toks[i]
        if name == "{":  # designated raw struct bpf_insn { .code = ... }
            raise Unsupported("raw struct bpf_insn initializer")
        fn = INSN_MACROS.get(name)
        if fn is None:
            raise Unsupported(f"instruction macro {name}")
        args, i = _split_args(toks, i + 1)
        vals = [ev.expr(a) for a in args]
        slots += fn(*vals)
    return slots


# --- tables -------------------------------------------------------------------

# what test_verifier.c creates for each fixup (type, key_size, value_size, max_entries, flags)
_ARR = 2
FIXUP_MAPS = {
    "fixup_map_hash_8b": MapDef(1, 8, 8, 1, name="hash_8b"),
    "fixup_map_hash_48b": MapDef(1, 8, 48, 1, name="hash_48b"),
    "fixup_map_hash_16b": MapDef(1, 8, 16, 1, name="hash_16b"),
    "fixup_map_array_48b": MapDef(_ARR, 4, 48, 1, name="array_48b"),
    "fixup_prog1": MapDef(3, 4, 4, 4, name="prog1"),
    "fixup_prog2": MapDef(3, 4, 4, 8, name="prog2"),
    "fixup_map_in_map": MapDef(12, 4, 4, 1, inner=MapDef(_ARR, 4, 4, 1, name="inner"), name="in_map"),
    "fixup_cgroup_storage": MapDef(19, 16, 64, 0, name="cgroup_storage"),
    "fixup_percpu_cgroup_storage": MapDef(21, 16, 64, 0, name="pcpu_cgroup_storage"),
    "fixup_map_sockmap": MapDef(15, 4, 4, 1, name="sockmap"),
    "fixup_map_sockhash": MapDef(18, 4, 4, 1, name="sockhash"),
    "fixup_map_xskmap": MapDef(17, 4, 4, 1, name="xskmap"),
    "fixup_map_stacktrace": MapDef(7, 4, 8, 1, name="stacktrace"),
    "fixup_map_array_ro": MapDef(_ARR, 4, 48, 1, flags=1 << 7, name="array_ro"),
    "fixup_map_array_wo": MapDef(_ARR, 4, 48, 1, flags=1 << 8, name="array_wo"),
    "fixup_map_array_small": MapDef(_ARR, 4, 1, 1, name="array_small"),
    "fixup_map_event_output": MapDef(4, 4, 4, 1, name="event_output"),
    "fixup_map_reuseport_array": MapDef(20, 4, 8, 1, name="reuseport"),
    "fixup_map_ringbuf": MapDef(27, 0, 0, 4096, name="ringbuf"),
}
# fixups whose maps need BTF (spin locks, timers, kptrs, sk storage) or kfunc BTF ids
BTF_FIXUPS = {"fixup_map_spin_lock", "fixup_sk_storage_map", "fixup_map_timer", "fixup_map_kptr",
              "fixup_kfunc_btf_id"}
IGNORED_FIELDS = {"retval", "retval_unpriv", "retvals", "data", "data64", "runs", "errstr_unpriv",
                  "result_unpriv", "insn_processed", "expected_insns", "unexpected_insns", "prog_len"}


@dataclass
class SelftestCase:
    """One converted table entry; ``insns``/``prog_type``/``attach``/``flags`` as the corpus's Case."""
    name: str
    file: str
    prog_type: int
    insns: list | None
    expect_accept: bool | None
    errstr: str | None
    attach: int = 0
    flags: int = 0
    priv: bool = True
    skip: str | None = None  # why it was not converted


def _entries(toks):
    """Top-level ``{ ... }`` groups of a table file."""
    i, out = 0, []
    while i < len(toks):
        if toks[i] == "{":
            j = _past_group(toks, i)
            out.append(toks[i + 1:j - 1])
            i = j
        else:
            i += 1
    return out


def _fields(entry):
    """(descr, {field: tokens}) of one entry."""
    i, descr = 0, []
    while i < len(entry) and entry[i].startswith('"'):
        descr.append(entry[i][1:-1])
        i += 1
    fields = {}
    while i < len(entry):
        if entry[i] == "," or entry[i] != ".":
            i += 1
            continue
        name = entry[i + 1]
        j = i + 3  # skip '.', name, '='
        depth, start = 0, j
        while j < len(entry):
            t = entry[j]
            if t in "({[":
                depth += 1
            elif t in ")}]":
                depth -= 1
            elif t == "," and depth == 0:
                break
            j += 1
        fields[name] = entry[start:j]
        i = j
    return "".join(descr), fields


def _strip_braces(toks):
    return toks[1:-1] if toks and toks[0] == "{" else toks


def read_file(path: str, uapi: Uapi, base_macros: dict) -> list[SelftestCase]:
    macros = dict(base_macros)
    text = preprocess(open(path, errors="replace").read(), macros)
    for name in list(INSN_MACROS) + ["F_NEEDS_EFFICIENT_UNALIGNED_ACCESS", "F_LOAD_WITH_STRICT_ALIGNMENT"]:
        macros.pop(name, None)  # ours are evaluated in Python, never expanded
    toks = expand(tokenize(text), macros)
    ev = Evaluator(uapi)
    fname = os.path.basename(path)
    out = []
    for entry in _entries(toks):
        descr, f = _fields(entry)
        case = SelftestCase(descr, fname, 1, None, None, None)
        out.append(case)
        try:
            case.expect_accept = {1: True, 3: True, 2: False}.get(ev.expr(f["result"])) if "result" in f else None
            if "errstr" in f:
                case.errstr = "".join(s[1:-1] for s in f["errstr"] if s.startswith('"'))
            if "prog_type" in f:
                case.prog_type = ev.expr(f["prog_type"])
            if "expected_attach_type" in f:
                case.attach = ev.expr(f["expected_attach_type"])
            if "flags" in f:
                fl = ev.expr(f["flags"])
                case.flags = (fl & 0xFFFF) | (1 if fl & OPC["F_LOAD_WITH_STRICT_ALIGNMENT"] else 0)
            for k in f:
                if k in ("fill_helper", "kfunc", "func_info", "func_info_cnt", "btf_types", "btf_strings"):
                    raise Unsupported(f".{k}")
                if k in BTF_FIXUPS:
                    raise Unsupported(f".{k} (map with BTF)")
            if "insns" not in f:
                raise Unsupported("no .insns")
            slots = eval_insns(_strip_braces(f["insns"]), ev)
            fix: dict[int, MapDef] = {}
            for k, m in FIXUP_MAPS.items():
                if k in f:
                    if m.type == 3:  # a prog array belongs to the first program type that uses it
                        m = MapDef(m.type, m.key_size, m.value_size, m.max_entries,
                                   name=f"{m.name}_{case.prog_type}")
                    for idx in _strip_braces(f[k]):
                        if idx != ",":
                            fix[ev.expr([idx])] = m
            while slots and slots[-1] == (0, 0, 0, 0, 0):
                slots.pop()
            raw = b"".join(struct.pack("<BBhi", c, (s << 4) | d, o, imm) for c, d, s, o, imm in slots)
            try:
                insns = decode(raw)
            except Exception as exc:
                raise Unsupported(f"not decodable by pybpf (malformed ld_imm64): {exc}")
            slot = 0
            for n, ins in enumerate(insns):
                if slot in fix:
                    if ins.opcode != 0x18:
                        raise Unsupported(f"fixup at slot {slot} is not ld_imm64")
                    insns[n] = ins.replace(map=fix[slot])
                slot += 2 if ins.opcode == 0x18 else 1
            case.insns = insns
        except Unsupported as exc:
            case.skip = str(exc)
        except (KeyError, IndexError, ValueError, ZeroDivisionError) as exc:
            case.skip = f"unparsed: {type(exc).__name__}: {exc}"
    return out


def load_tree(root: str) -> list[SelftestCase]:
    """Every table entry under ``root`` (an extracted linux-source tree)."""
    bpf = os.path.join(root, "tools", "testing", "selftests", "bpf")
    uapi = Uapi(os.path.join(root, "include", "uapi", "linux", "bpf.h"))
    base: dict = {}
    preprocess(open(os.path.join(bpf, "test_verifier.c"), errors="replace").read(), base)
    vdir = os.path.join(bpf, "verifier")
    out = []
    for fn in sorted(os.listdir(vdir)):
        if fn.endswith(".c"):
            out += read_file(os.path.join(vdir, fn), uapi, base)
    return out
