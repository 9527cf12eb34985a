"""execsnoop: one line per successful execve, with the new program's PID and command name.

    # pybpf tool execsnoop
    PID     COMM
    4242    true

``-U`` adds the UID column, as in BCC's execsnoop.

The program runs after the new image is in place, so ``bpf_get_current_comm``
already returns the new name (``true``, not the shell that ran it):

* tracepoint ``sched:sched_process_exec`` (every kernel with tracepoints), or
* a kretprobe on ``execve`` that keeps only successful calls (return value 0),
  where the kernel has kprobes (BCC's choice).
"""

from __future__ import annotations

import struct
import sys

from pybpf.asm import Builder, r0, r1, r2, r6, r10

from . import common, runtime

NAME = "execsnoop"
# struct event { u32 pid; u32 uid; char comm[16]; }
RECORD = struct.Struct("<II16s")


def build_program(mode: str, events: runtime.Events, pid: int = 0) -> Builder:
    """The BPF program: send {tgid, uid, comm} of the task that just exec'd."""
    b = Builder()
    b.mov(r6, r1)                                   # r6 = ctx (r1 is clobbered by calls)
    if mode == "kprobe":                            # kretprobe: only successful execve
        b.ldx(r0, r6, runtime.pt_regs_offset("rc"))
        b.jump_if(r0, "!=", 0, "out")
    b.call("get_current_pid_tgid")
    b.rsh(r0, 32)                                   # r0 = tgid, the process id
    if pid:
        b.jump_if(r0, "!=", pid, "out")
    b.stx(r10, -24, r0, "u32")                      # event.pid
    b.call("get_current_uid_gid")
    b.stx(r10, -20, r0, "u32")                      # event.uid (low half)
    b.stack_ptr(r1, -16)
    b.mov(r2, 16)
    b.call("get_current_comm")                      # event.comm
    events.emit(b, r6, -24)
    b.label("out")
    b.ret(0)
    return b


def options() -> common.Options:
    """execsnoop's command-line options (parsed in :func:`main`, checked by the tests)."""
    p = common.parser(NAME, "Trace new processes (successful execve): PID and command name.")
    common.add_attach_option(p)
    p.add("-U", "--print-uid", action="store_true", help="print the UID column")
    return p


def main(argv: list[str] | None = None) -> int:
    p = options()
    args = p.parse(argv)
    common.require_root(NAME)
    columns = [("pid", "%-7s")] + ([("uid", "%-6s")] if args.print_uid else []) + [("comm", "%s")]
    out = common.Output(args.json, columns)

    def start(stack):
        mode = runtime.attach_mode(args.attach)
        events = stack.enter_context(runtime.Events(RECORD))
        events.open(lambda rec: out.event(  # before attaching, so that no event is lost
            {"pid": rec[0], "uid": rec[1], "comm": common.cstr(rec[2])}))
        prog = stack.enter_context(runtime.load(
            build_program(mode, events, args.pid or 0), runtime.program_type(mode), NAME))
        link, where = runtime.attach(prog, mode, kretprobe="sys_execve",
                                     tracepoint="sched:sched_process_exec")
        stack.enter_context(link)
        return f"execve via {where}", events.poll

    return runtime.run(NAME, args.duration, start, header=out.header)


if __name__ == "__main__":
    sys.exit(main())
