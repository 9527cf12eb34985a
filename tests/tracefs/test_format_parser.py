"""The format parser (str methods, no regexes) against the kernel's grammar written as regexes.

``pybpf.tracefs.events`` reads ``format`` files without ``re`` because opensnoop
parses one at start-up; these regexes are the grammar it must agree with:
every format file this kernel has, and generated declarations.
"""

import os
import re

import pytest
from hypothesis import given, settings, strategies as st

from pybpf.tracefs import find_tracefs
from pybpf.tracefs.events import _parse_decl, parse_format

FIELD_RE = re.compile(r"^\s*field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
                      r"\s*signed:(?P<signed>-?\d+);")
DECL_RE = re.compile(r"^(?P<type>.*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<len>[^\]]*)\])?$")


def reference_decl(decl: str):
    decl = decl.strip()
    data_loc = rel_loc = False
    for prefix in ("__data_loc ", "__rel_loc "):
        if decl.startswith(prefix):
            data_loc, rel_loc = prefix == "__data_loc ", prefix == "__rel_loc "
            decl = decl[len(prefix):].strip()
    m = DECL_RE.match(decl)
    if m is None or not m.group("type").strip():
        return None
    alen = m.group("len")
    if alen is not None:
        alen = alen.strip()
        alen = (int(alen, 16) if alen[:2] in ("0x", "0X") else int(alen)) \
            if re.fullmatch(r"0[xX][0-9a-fA-F]+|[0-9]+", alen) else 0
    return m.group("type").strip(), m.group("name"), alen, data_loc, rel_loc


def reference_fields(text: str):
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("field:"):
            m = FIELD_RE.match(s)
            ctype, name, alen, dloc, rloc = reference_decl(m.group("decl"))
            out.append((name, ctype, int(m.group("offset")), int(m.group("size")),
                        m.group("signed") == "1", alen, dloc, rloc))
    return out


def all_format_files():
    root = find_tracefs()
    if root is None:
        return []
    events = os.path.join(root, "events")
    found = []
    for cat in sorted(os.listdir(events)):
        path = os.path.join(events, cat)
        if os.path.isdir(path):
            found += [os.path.join(path, ev, "format") for ev in sorted(os.listdir(path))
                      if os.path.isfile(os.path.join(path, ev, "format"))]
    return found


@pytest.mark.kernel
def test_every_format_file_of_this_kernel_parses_as_the_grammar_says():
    files = all_format_files()
    if not files:
        pytest.skip("tracefs is not mounted")
    assert len(files) > 500
    for path in files:
        with open(path) as f:
            text = f.read()
        fmt = parse_format(text)
        got = [(f.name, f.type, f.offset, f.size, f.signed, f.array_len, f.data_loc, f.rel_loc)
               for f in fmt.fields]
        assert got == reference_fields(text), path


IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
TYPE = st.lists(st.sampled_from(["unsigned", "int", "char", "const", "u8", "struct", "foo",
                                 "*", " *", "[]", "__u64"]), min_size=0, max_size=4).map(" ".join)
LEN = st.one_of(st.none(), st.from_regex(r"(0x[0-9a-fA-F]{1,3}|[0-9]{1,3}|[A-Z_]{1,6})",
                                         fullmatch=True))
PREFIX = st.sampled_from(["", "__data_loc ", "__rel_loc "])


@settings(max_examples=400, deadline=None)
@given(PREFIX, TYPE, st.sampled_from(["", " ", "*", " *"]), IDENT, LEN, st.sampled_from(["", " "]))
def test_generated_declarations_parse_as_the_grammar_says(prefix, ctype, star, name, alen, pad):
    decl = f"{prefix}{ctype}{star} {name}{pad}" + (f"[{alen}]" if alen is not None else "")
    expected = reference_decl(decl)
    line = f"field:{decl};\toffset:8;\tsize:4;\tsigned:0;"
    if expected is None:
        with pytest.raises(ValueError):
            _parse_decl(decl, line)
    else:
        assert _parse_decl(decl, line) == expected, decl
