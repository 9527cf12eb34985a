"""opensnoop: who opens which file, one line per openat().

    # pybpf tool opensnoop --path /etc/
    PID     COMM             FILE
    4242    cat              /etc/shadow

The file name is copied from the caller's memory with
``bpf_probe_read_user_str``. ``--path PREFIX`` is checked in the kernel, eight
bytes at a time against constants baked into the program, so files outside
the prefix cost no wakeup and no copy to user space: the security-audit use
("who reads /etc/shadow") stays cheap on a busy machine.

Attach points: the tracepoint ``syscalls:sys_enter_openat`` (the name is its
``filename`` field), or where the kernel has kprobes a kprobe on
``do_sys_openat2`` (second argument), which BCC uses too.
"""

from __future__ import annotations

import struct
import sys

from pybpf.asm import Builder, r0, r1, r2, r3, r6, r10

from . import common, runtime

NAME = "opensnoop"
NAME_MAX = 256
# struct event { u32 pid; u32 uid; char comm[16]; char fname[NAME_MAX]; }
RECORD = struct.Struct(f"<II16s{NAME_MAX}s")
EVENT_AT = -RECORD.size            # the record sits at the bottom of the used stack
FNAME_AT = EVENT_AT + 24
MAX_PREFIX = NAME_MAX - 1
_FILENAME_OFFSET = 24              # syscalls:sys_enter_openat "filename" (checked by the tests)


def filename_offset() -> int:
    """Offset of ``filename`` in the sys_enter_openat record (from its tracefs format)."""
    from pybpf.tracefs import event_format
    return event_format("syscalls", "sys_enter_openat").field("filename").offset


def build_program(mode: str, events: runtime.Events, pid: int = 0, prefix: bytes = b"",
                  filename_at: int = _FILENAME_OFFSET) -> Builder:
    """The BPF program: copy the file name, keep it if it starts with ``prefix``, send it."""
    if len(prefix) > MAX_PREFIX:
        raise ValueError(f"--path prefix is {len(prefix)} bytes; at most {MAX_PREFIX} fit")
    b = Builder()
    b.mov(r6, r1)                                          # r6 = ctx
    b.call("get_current_pid_tgid")
    b.rsh(r0, 32)
    if pid:
        b.jump_if(r0, "!=", pid, "out")
    b.stx(r10, EVENT_AT, r0, "u32")                        # event.pid
    # r3 = the user pointer to the file name
    if mode == "kprobe":
        b.ldx(r3, r6, runtime.pt_regs_offset("parm2"))     # do_sys_openat2(dfd, filename, how)
    else:
        b.ldx(r3, r6, filename_at)                         # sys_enter_openat: filename
    b.stack_ptr(r1, FNAME_AT)
    b.mov(r2, NAME_MAX)
    b.call("probe_read_user_str")                          # event.fname (NUL-terminated)
    # Prefix filter: compare 8 bytes at a time, the last chunk masked to the prefix length.
    for i in range(0, len(prefix), 8):
        chunk = prefix[i:i + 8]
        b.ldx(r1, r10, FNAME_AT + i, "u64")
        if len(chunk) < 8:
            b.ld_imm64(r2, (1 << (8 * len(chunk))) - 1)
            b.and_(r1, r2)
        b.ld_imm64(r2, int.from_bytes(chunk, "little"))
        b.jump_if(r1, "!=", r2, "out")
    b.call("get_current_uid_gid")
    b.stx(r10, EVENT_AT + 4, r0, "u32")                    # event.uid
    b.stack_ptr(r1, EVENT_AT + 8)
    b.mov(r2, 16)
    b.call("get_current_comm")                             # event.comm
    events.emit(b, r6, EVENT_AT)
    b.label("out")
    b.ret(0)
    return b


def options() -> common.Options:
    """opensnoop's command-line options (parsed in :func:`main`, checked by the tests)."""
    p = common.parser(NAME, "Trace openat() calls: PID, command and file name.")
    p.add("--path", default="", metavar="PREFIX",
          help="only files whose name starts with PREFIX, e.g. /etc/ (checked in-kernel)")
    common.add_attach_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = options()
    args = p.parse(argv)
    common.require_root(NAME)
    out = common.Output(args.json, [("pid", "%-7s"), ("comm", "%-16s"), ("file", "%s")])
    prefix = args.path.encode()

    def show(rec: tuple) -> None:
        name = rec[3].split(b"\0", 1)[0]
        out.event({"pid": rec[0], "uid": rec[1], "comm": common.comm_str(rec[2]),
                   "file": name.decode("utf-8", "surrogateescape")})

    def start(stack):
        mode = runtime.attach_mode(args.attach)
        events = stack.enter_context(runtime.Events(RECORD))
        events.open(show)  # before attaching, so that no event is lost
        offset = _FILENAME_OFFSET if mode == "kprobe" else filename_offset()
        prog = stack.enter_context(runtime.load(
            build_program(mode, events, args.pid or 0, prefix, offset),
            runtime.program_type(mode), NAME))
        link, where = runtime.attach(prog, mode, kprobe="do_sys_openat2",
                                     tracepoint="syscalls:sys_enter_openat")
        stack.enter_context(link)
        return f"openat via {where}" + (f" for {args.path}*" if prefix else ""), events.poll

    return runtime.run(NAME, args.duration, start, header=out.header)


if __name__ == "__main__":
    sys.exit(main())
