#!/usr/bin/env python3
"""Hello world: bpf_trace_printk on every execve, read back from trace_pipe.

    sudo python examples/hello.py            # Ctrl-C to stop
"""

from pybpf.asm import Builder, r1, r2, r10
from pybpf.link import attach_tracepoint
from pybpf.program import ProgramSpec
from pybpf.tracefs import Instance

MESSAGE = b"Hello from the kernel!\n\0"

# --- the BPF program: bpf_trace_printk(fmt, sizeof(fmt)) ------------------------------
b = Builder()
for i in range(0, len(MESSAGE), 8):             # the format string goes on the stack
    chunk = MESSAGE[i:i + 8].ljust(8, b"\0")
    b.ld_imm64(r1, int.from_bytes(chunk, "little"))
    b.stx(r10, -24 + i, r1)
b.stack_ptr(r1, -24)
b.mov(r2, len(MESSAGE))
b.call("trace_printk")
b.ret(0)

# A private tracing instance: our own trace_pipe, with the printk event enabled in it.
with Instance() as instance:
    with open(instance.file("events/bpf_trace/bpf_trace_printk/enable"), "w") as f:
        f.write("1")
    with instance.pipe() as pipe, ProgramSpec(b, "tracepoint", name="hello").load(verify=False) as prog, \
            attach_tracepoint(prog, "syscalls:sys_enter_execve"):
        print("Run any command in another terminal; Ctrl-C to stop.")
        try:
            while True:
                line = pipe.read_fields(timeout=1.0)
                if line is not None:
                    print(f"{line.task}-{line.pid}: {line.message}", flush=True)
        except KeyboardInterrupt:
            pass
