"""hello: ``Hello from the kernel!`` each time a process calls execve.

The "hello world" of BPF: the program calls ``bpf_trace_printk``, and the
text arrives in tracefs' ``trace_pipe``. We read it from a private tracing
instance with the ``bpf_trace:bpf_trace_printk`` event enabled, so that two
tools (or a tool and ``cat trace_pipe``) do not steal each other's lines; if
no instance can be made, the global ``trace_pipe`` is used. The instance is
removed on exit; one left by a run killed with SIGKILL (named after its dead
pid) is removed by the next run.

    # pybpf tool hello
    TIME(s)            COMM             PID     MESSAGE
    5678.123456        bash             4242    Hello from the kernel!
"""

from __future__ import annotations

import sys

from pybpf.asm import Builder, r0, r1, r2

from . import common, runtime

NAME = "hello"
MESSAGE = b"Hello from the kernel!"


def build_program(pid: int = 0) -> Builder:
    """The BPF program: ``bpf_trace_printk("Hello from the kernel!\\n")``.

    The same code serves the kprobe (entry of execve) and the tracepoint
    (``syscalls:sys_enter_execve``): it does not read its context.
    """
    b = Builder()
    if pid:
        b.call("get_current_pid_tgid")
        b.rsh(r0, 32)
        b.jump_if(r0, "!=", pid, "out")
    fmt = MESSAGE + b"\n\0"
    at = -((len(fmt) + 7) // 8 * 8)
    runtime.store_bytes(b, at, fmt)                  # the format string lives on the stack
    b.stack_ptr(r1, at)
    b.mov(r2, len(fmt))                              # its size, NUL included
    b.call("trace_printk")
    b.label("out")
    b.ret(0)
    return b


class PrintkReader:
    """trace_pipe lines of bpf_trace_printk, from a private instance when possible."""

    def __init__(self) -> None:
        from pybpf.tracefs import Instance, TracePipe, TracefsError
        from pybpf.tracefs.pipe import sweep_stale_instances
        self.instance = None
        try:
            sweep_stale_instances()  # left by a hello killed with SIGKILL (no clean-up ran)
            self.instance = Instance()
            with open(self.instance.file("events", "bpf_trace", "bpf_trace_printk", "enable"),
                      "w") as f:
                f.write("1")
        except (OSError, TracefsError):
            if self.instance is not None:
                self.instance.close()
            self.instance = None
        self.pipe = TracePipe(self.instance)

    def read(self, timeout: float):
        return self.pipe.read_fields(timeout)

    def close(self) -> None:
        self.pipe.close()
        if self.instance is not None:
            self.instance.close()


def options() -> common.Options:
    """hello's command-line options (parsed in :func:`main`, checked by the tests)."""
    p = common.parser(NAME, "Print 'Hello from the kernel!' for every execve (bpf_trace_printk).")
    common.add_attach_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = options()
    args = p.parse(argv)
    common.require_root(NAME)
    out = common.Output(args.json, [("time", "%-18.6f", "TIME(s)"), ("comm", "%-16s"),
                                    ("pid", "%-7s"), ("message", "%s")])

    def start(stack):
        mode = runtime.attach_mode(args.attach)
        reader = PrintkReader()
        stack.callback(reader.close)
        prog = stack.enter_context(runtime.load(
            build_program(args.pid or 0), runtime.program_type(mode), NAME))
        link, where = runtime.attach(prog, mode, kprobe="sys_execve",
                                     tracepoint="syscalls:sys_enter_execve")
        stack.enter_context(link)

        def poll(timeout: float) -> None:
            line = reader.read(timeout)
            if line is not None and line.event in ("bpf_trace_printk", ""):
                out.event({"time": line.timestamp, "comm": line.task, "pid": line.pid,
                           "message": line.message})
        return f"execve via {where}", poll

    return runtime.run(NAME, args.duration, start, header=out.header)


if __name__ == "__main__":
    sys.exit(main())
