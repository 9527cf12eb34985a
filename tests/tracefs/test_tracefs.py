"""tracefs: event formats, ids, trace_pipe parsing, legacy probe events."""

import os
import struct
import uuid

import pytest

from pybpf.tracefs import (Instance, TraceParseError, TracefsError, add_kprobe_event,
                           add_uprobe_event, event_format, find_tracefs, list_events,
                           list_probe_events, parse_format, parse_trace_line, probe_event_names,
                           sweep_stale_probe_events, tracepoint_id)

SAMPLE_FORMAT = """name: sched_process_exec
ID: 365
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;
\tfield:const char * name;\toffset:32;\tsize:8;\tsigned:0;

print fmt: "filename=%s pid=%d", __get_str(filename), REC->pid
"""


def test_parse_format_sample_and_decode():
    fmt = parse_format(SAMPLE_FORMAT, "sched")
    assert (fmt.name, fmt.id) == ("sched_process_exec", 365)
    fn = fmt.field("filename")
    assert fn.data_loc and fn.type == "char[]" and fn.is_string and (fn.offset, fn.size) == (8, 4)
    comm = fmt.field("comm")
    assert comm.array_len == 16 and comm.type == "char" and comm.is_string
    name = fmt.field("name")
    assert name.type == "const char *" and name.is_pointer and not name.is_string
    assert fmt.field("pid").signed and fmt.field("common_pid").common
    assert [f.name for f in fmt.event_fields] == ["filename", "pid", "comm", "name"]
    record = bytearray(fmt.size)
    struct.pack_into("=HBBi", record, 0, 365, 0, 0, 42)
    struct.pack_into("=I", record, 8, (9 << 16) | fmt.size)
    struct.pack_into("=i", record, 12, -7)
    record[16:21] = b"bash\0"
    struct.pack_into("=Q", record, 32, 0xFFFF0000)
    record += b"/bin/ls\0\0"
    assert fmt.decode(bytes(record)) == {
        "common_type": 365, "common_flags": 0, "common_preempt_count": 0, "common_pid": 42,
        "filename": "/bin/ls", "pid": -7, "comm": "bash", "name": 0xFFFF0000}
    with pytest.raises(KeyError, match="has no field 'nope'"):
        fmt.field("nope")


def test_parse_format_rejects_garbage():
    with pytest.raises(ValueError, match="cannot parse format line"):
        parse_format("ID: 1\n\tfield:int x; offset:zz;\n")
    with pytest.raises(ValueError, match="no ID line"):
        parse_format("name: x\n")


TRACE_LINES = [
    ("           <...>-1234    [001] d..31  5678.123456: bpf_trace_printk: hello world",
     ("<...>", 1234, 1, "d..31", 5678.123456, "bpf_trace_printk", "hello world")),
    ("     python3 x-y-77    [000] ..... 12.000001: tracing_mark_write: a: b",
     ("python3 x-y", 77, 0, ".....", 12.000001, "tracing_mark_write", "a: b")),
    ("            bash-9     (      9) [003] .... 1.5: 0x00000001: legacy",
     ("bash", 9, 3, "....", 1.5, "0x00000001", "legacy")),
    ("          true-5 [002] 3.25: sched_process_exec: filename=/bin/true",
     ("true", 5, 2, "", 3.25, "sched_process_exec", "filename=/bin/true")),
]


@pytest.mark.parametrize("line, expected", TRACE_LINES)
def test_parse_trace_line(line, expected):
    parsed = parse_trace_line(line)
    assert (parsed.task, parsed.pid, parsed.cpu, parsed.flags, parsed.timestamp,
            parsed.event, parsed.message) == expected
    task, pid, cpu, flags, ts, msg = parsed  # BCC trace_fields order
    assert (task, msg) == (expected[0], expected[6])


@pytest.mark.parametrize("line", ["CPU:1 [LOST 12 EVENTS]", "", "# tracer: nop"])
def test_parse_trace_line_rejects(line):
    with pytest.raises(TraceParseError, match="not a trace_pipe event line"):
        parse_trace_line(line)


def _need_tracefs() -> str:
    if os.geteuid() != 0:
        pytest.skip("tracefs needs root")
    try:
        return find_tracefs()
    except TracefsError as e:
        pytest.skip(str(e))


@pytest.mark.kernel
@pytest.mark.parametrize("category, name, fields", [
    ("syscalls", "sys_enter_getpid", ["__syscall_nr"]),
    ("syscalls", "sys_enter_openat", ["__syscall_nr", "dfd", "filename", "flags", "mode"]),
    ("sched", "sched_process_exec", ["filename", "pid", "old_pid"]),
])
def test_real_event_formats(category, name, fields):
    root = _need_tracefs()
    if not os.path.isdir(os.path.join(root, "events", category, name)):
        pytest.skip(f"kernel has no {category}:{name}")
    fmt = event_format(category, name)
    assert [f.name for f in fmt.event_fields] == fields
    assert fmt.id == tracepoint_id(category, name)
    with open(os.path.join(root, "events", category, name, "format")) as f:
        text = f.read()
    for fld in fmt.fields:  # every parsed field agrees with the kernel's own line
        assert f"offset:{fld.offset};\tsize:{fld.size};\tsigned:{int(fld.signed)};" in text
    if name == "sys_enter_openat":
        assert fmt.field("filename").is_pointer and fmt.field("filename").size == 8
    if name == "sched_process_exec":
        assert fmt.field("filename").data_loc and fmt.field("filename").is_string
    assert (category, name) in list_events(category)


@pytest.mark.kernel
def test_unknown_tracepoint():
    _need_tracefs()
    with pytest.raises(TracefsError, match="tracepoint sched:no_such_event not found"):
        tracepoint_id("sched", "no_such_event")
    with pytest.raises(ValueError, match="invalid tracepoint name"):
        tracepoint_id("..", "x")


@pytest.mark.kernel
def test_trace_marker_round_trip():
    """A real line: write to a private instance's trace_marker and read its trace_pipe."""
    _need_tracefs()
    token = f"pybpf-{uuid.uuid4().hex}"
    with Instance() as inst:
        assert os.path.isdir(inst.path)
        with inst.pipe() as pipe:
            assert pipe.read_fields(timeout=0.05) is None  # empty instance: times out
            inst.mark(token)
            line = pipe.read_fields(timeout=5)
    assert not os.path.exists(inst.path)
    assert line is not None, "trace_marker line never arrived"
    assert line.message == token and line.event == "tracing_mark_write"
    assert line.pid == os.getpid() and line.cpu < os.cpu_count()
    assert line.timestamp > 0


@pytest.mark.kernel
def test_kprobe_events_clear_error_or_entry():
    root = _need_tracefs()
    if os.path.exists(os.path.join(root, "kprobe_events")):
        with add_kprobe_event("do_sys_openat2") as ev:
            assert ev.id > 0
        return
    with pytest.raises(TracefsError, match="CONFIG_KPROBE_EVENTS"):
        add_kprobe_event("do_sys_openat2")


@pytest.mark.kernel
def test_uprobe_event_added_and_removed():
    root = _need_tracefs()
    if not os.path.exists(os.path.join(root, "uprobe_events")):
        pytest.skip("kernel without uprobe_events")
    target = os.path.realpath("/bin/true")
    ev = add_uprobe_event(target, 0x40, name="test")
    try:
        assert ev.name.startswith(f"pybpf_{os.getpid()}_")
        assert any(ev.name in line and target in line for line in list_probe_events("uprobe"))
        assert ev.id == tracepoint_id("uprobes", ev.name)
    finally:
        ev.close()
    assert ev.closed
    assert not any(ev.name in line for line in list_probe_events("uprobe"))
    with pytest.raises(FileNotFoundError):
        add_uprobe_event("/no/such/binary", 0)


@pytest.mark.kernel
def test_uprobe_events_on_one_target_do_not_collide():
    root = _need_tracefs()
    if not os.path.exists(os.path.join(root, "uprobe_events")):
        pytest.skip("kernel without uprobe_events")
    target = os.path.realpath("/bin/true")
    with add_uprobe_event(target, 0x40, name="same") as a, \
            add_uprobe_event(target, 0x40, name="same", retprobe=True) as b, \
            add_uprobe_event(target, 0x48, ref_ctr_offset=0x100) as c:
        assert a.name != b.name and a.id != b.id
        lines = list_probe_events("uprobe")
        assert f"p:uprobes/{a.name} {target}:0x0000000000000040" in lines
        assert f"r:uprobes/{b.name} {target}:0x0000000000000040" in lines
        assert f"p:uprobes/{c.name} {target}:0x0000000000000048(0x100)" in lines
        assert f"uprobes/{c.name}" in probe_event_names("uprobe")
    assert not any(ev.name in line for ev in (a, b, c) for line in list_probe_events("uprobe"))


def test_kprobe_event_arguments_checked_before_writing():
    with pytest.raises(ValueError, match="return probes only"):
        add_kprobe_event("do_sys_openat2", maxactive=4)
    with pytest.raises(ValueError, match="one of them"):
        add_kprobe_event("do_sys_openat2", address=0xffffffff81000000)
    with pytest.raises(ValueError, match="invalid kernel symbol"):
        add_kprobe_event("do sys")


@pytest.mark.kernel
def test_sweep_leaves_live_processes_alone():
    root = _need_tracefs()
    if not os.path.exists(os.path.join(root, "uprobe_events")):
        pytest.skip("kernel without uprobe_events")
    with add_uprobe_event(os.path.realpath("/bin/true"), 0x40) as ev:
        assert f"uprobes/{ev.name}" not in sweep_stale_probe_events()
        assert f"uprobes/{ev.name}" in probe_event_names("uprobe")
