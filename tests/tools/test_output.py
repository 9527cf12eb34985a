"""What the tools print: text that always encodes, valid JSON, headers, lost samples."""

import io
import json
import os
import re
import struct
import subprocess
import sys

import pytest

from toolkit import requires_root
from pybpf.tools import common, runtime


def capture(monkeypatch, encoding: str = "utf-8") -> io.BytesIO:
    """Make stdout a strict ``encoding`` text stream over the returned bytes buffer."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding=encoding, errors="strict",
                                                        write_through=True))
    return raw


# A file name read from the kernel and decoded as os.fsdecode does: b"caf\xe9" (Latin-1).
LATIN1_NAME = b"/tmp/caf\xe9".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("value, expected", [
    ("plain", "plain"),
    ("é ünïcode ✓", "é ünïcode ✓"),
    (LATIN1_NAME, "/tmp/caf\ufffd"),                   # the byte it stood for, replaced
    ("a\udcff\udcfeb", "a\ufffd\ufffdb"),
    ("lone \ud800 high", "lone \ufffd\ufffd\ufffd high"),  # not from surrogateescape
])
def test_clean_text_gives_valid_unicode(value, expected):
    cleaned = common.clean_text(value)
    assert cleaned == expected
    cleaned.encode("utf-8")                                # strict: no surrogate left


def test_cstr_decodes_like_bcc():
    assert common.cstr(b"true\0garbage") == "true"
    assert common.cstr(b"\xff\xfeok\0\0\0") == "\ufffd\ufffdok"
    assert common.cstr(b"caf\xc3\xa9\0" + bytes(10)) == "café"


def test_text_output_of_an_undecodable_name_does_not_fail(monkeypatch):
    raw = capture(monkeypatch)
    out = common.Output(False, [("pid", "%-7s"), ("file", "%s")])
    out.header()
    out.event({"pid": 42, "file": LATIN1_NAME})
    assert raw.getvalue().decode("utf-8").splitlines() == ["PID     FILE", "42      /tmp/caf\ufffd"]


def test_json_output_is_valid_unicode(monkeypatch):
    raw = capture(monkeypatch)
    common.Output(True, [("file", "%s")]).event({"pid": 7, "file": LATIN1_NAME, "n": None})
    text = raw.getvalue().decode("utf-8")
    assert "\\ud" not in text                              # no escaped lone surrogate
    assert json.loads(text) == {"pid": 7, "file": "/tmp/caf\ufffd", "n": None}


def test_text_output_to_a_non_utf8_terminal_replaces_what_it_cannot_encode(monkeypatch):
    raw = capture(monkeypatch, "ascii")
    common.Output(False, [("comm", "%-6s"), ("file", "%s")]).event(
        {"comm": "caf\ufffd", "file": "é"})
    assert raw.getvalue() == b"caf?   ?\n"


def test_header_labels_and_number_formats():
    out = common.Output(False, [("time", "%-12.6f", "TIME(s)"), ("comm", "%-5s"), ("pid", "%d")])
    assert out._header_fmt % out._headers == "TIME(s)      COMM  PID\n"
    assert out._fmt % (1.5, "sh", 3) == "1.500000     sh    3\n"


# Lost perf samples: an XDP program run with BPF_PROG_TEST_RUN writes more samples than
# the rings hold; the kernel counts the ones it drops and reports them with the next
# record it can write (PERF_RECORD_LOST).

RECORD = struct.Struct("<Q")


def emitting_program(events):
    from pybpf.asm import Builder, r1, r6, r10
    b = Builder()
    b.mov(r6, r1)                                     # the XDP context, for perf_event_output
    b.st(r10, -8, 7)
    events.emit(b, r6, -8)
    b.ret(2)                                          # XDP_PASS
    return runtime.load(b, "xdp", "lost_test")


@pytest.mark.kernel
@requires_root
def test_lost_samples_are_reported_on_stderr_like_bcc(capsys):
    # One CPU throughout: the kernel writes PERF_RECORD_LOST into the ring that overflowed,
    # when that CPU next outputs a record.
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        check_lost_samples(capsys)
    finally:
        os.sched_setaffinity(0, affinity)


def check_lost_samples(capsys):
    got = []
    with runtime.Events(RECORD) as events, emitting_program(events) as prog:
        events.open(got.append)
        prog.test_run(data_in=bytes(64), repeat=20000)  # all on one CPU: its ring overflows
        events.poll(0)
        first = len(got)
        assert 0 < first < 20000
        assert capsys.readouterr().err == ""            # the loss is not known yet
        prog.test_run(data_in=bytes(64), repeat=1)      # room again: PERF_RECORD_LOST, then it
        events.poll(0)
        assert len(got) == first + 1
        assert capsys.readouterr().err == f"Possibly lost {20000 - first} samples\n"
        assert events.lost == 20000 - first
        prog.test_run(data_in=bytes(64), repeat=1)
        events.poll(0)
        assert capsys.readouterr().err == ""            # reported once, not per poll
    assert got[0] == (7,)


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("json_mode", [False, True])
def test_execsnoop_prints_an_undecodable_comm(tool, tmp_path, json_mode):
    link = tmp_path / "caf\udce9"                      # the file name b"caf\xe9"
    link.symlink_to("/bin/true")
    # A strict UTF-8 stdout, as under en_US.UTF-8 (C.UTF-8 gets surrogateescape).
    t = tool("execsnoop", json_mode=json_mode, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    child = subprocess.Popen([bytes(link)])
    child.wait()
    t.stop()
    out = "".join(t.stdout)
    line = next((l for l in out.splitlines() if str(child.pid) in l), None)
    assert line is not None, out + "".join(t.stderr)
    assert "Traceback" not in "".join(t.stderr) and "codec" not in "".join(t.stderr)
    if json_mode:
        assert json.loads(line)["comm"] == "caf\ufffd"
    else:
        assert re.fullmatch(rf"{child.pid}\s+caf\ufffd", line.strip())
