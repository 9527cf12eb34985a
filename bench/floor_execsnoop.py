"""The floor for a Python execsnoop: no pybpf, no abstractions, only what any CPython tool needs.

A benchmark baseline, not library code: :mod:`bench.startup` times it beside
pybpf's execsnoop to show how much of pybpf's time to first event is the
interpreter and the few stdlib modules every bpf(2) user needs (ctypes,
mmap, select, _signal), and how much is pybpf. It does what
``pybpf tool execsnoop`` does on this kernel, by hand: a perf event array,
one BPF_PROG_LOAD of hand-encoded instructions, a tracepoint perf event with
the program attached, and a reader of the per-CPU rings. No error handling
beyond failing loudly.
"""

import ctypes
import mmap
import os
import select
import _signal  # the C module signal.py wraps: no enum import (pybpf does the same)
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_BPF, SYS_PERF_EVENT_OPEN = 321, 298  # x86_64


def sys_bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    r = libc.syscall(SYS_BPF, cmd, buf, len(attr))
    if r < 0:
        raise OSError(ctypes.get_errno(), f"bpf cmd {cmd}")
    return r


def perf_open(ptype: int, config: int, cpu: int, pid: int = -1) -> int:
    # struct perf_event_attr (PERF_ATTR_SIZE_VER5, 112 bytes): type, size, config,
    # sample_period, sample_type, read_format, flags, wakeup_events, ...
    attr = struct.pack("<IIQQQQQI", ptype, 112, config, 1, 1 << 10, 0, 0, 1).ljust(112, b"\0")
    buf = ctypes.create_string_buffer(attr, 112)
    fd = libc.syscall(SYS_PERF_EVENT_OPEN, buf, pid, cpu, -1, 8)  # PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        raise OSError(ctypes.get_errno(), "perf_event_open")
    return fd


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def main() -> None:
    with open("/sys/devices/system/cpu/possible") as f:
        last = int(f.read().strip().split("-")[-1])
    ncpu = last + 1
    pages = 8
    # BPF_MAP_CREATE (0): PERF_EVENT_ARRAY (4), key 4, value 4, one slot per CPU
    mfd = sys_bpf(0, struct.pack("<IIII", 4, 4, 4, ncpu).ljust(72, b"\0"))
    rings = {}
    for cpu in range(ncpu):
        pfd = perf_open(1, 10, cpu)  # PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT
        mm = mmap.mmap(pfd, mmap.PAGESIZE * (1 + pages))
        libc.ioctl(pfd, 0x2400, 0)  # PERF_EVENT_IOC_ENABLE
        key, val = ctypes.c_uint32(cpu), ctypes.c_uint32(pfd)
        sys_bpf(2, struct.pack("<IIQQQ", mfd, 0, ctypes.addressof(key), ctypes.addressof(val), 0))
        rings[pfd] = mm
    prog = b"".join([
        insn(0xbf, 6, 1),                       # r6 = r1
        insn(0x85, imm=14),                     # call get_current_pid_tgid
        insn(0x77, 0, imm=32),                  # r0 >>= 32
        insn(0x63, 10, 0, -24),                 # *(u32 *)(r10 -24) = r0
        insn(0x85, imm=15),                     # call get_current_uid_gid
        insn(0x63, 10, 0, -20),                 # *(u32 *)(r10 -20) = r0
        insn(0xbf, 1, 10), insn(0x07, 1, imm=-16),
        insn(0xb7, 2, imm=16),
        insn(0x85, imm=16),                     # call get_current_comm
        insn(0xbf, 1, 6),
        insn(0x18, 2, 1, imm=mfd), insn(0),     # r2 = map fd (BPF_PSEUDO_MAP_FD)
        insn(0xb4, 3, imm=-1),                  # w3 = BPF_F_CURRENT_CPU
        insn(0xbf, 4, 10), insn(0x07, 4, imm=-24),
        insn(0xb7, 5, imm=24),
        insn(0x85, imm=25),                     # call perf_event_output
        insn(0xb7, 0), insn(0x95),              # r0 = 0; exit
    ])
    code = ctypes.create_string_buffer(prog, len(prog))
    lic = ctypes.create_string_buffer(b"GPL")
    # BPF_PROG_LOAD (5): TRACEPOINT (5)
    pfd = sys_bpf(5, struct.pack("<IIQQIIQI", 5, len(prog) // 8, ctypes.addressof(code),
                                 ctypes.addressof(lic), 0, 0, 0, 0).ljust(128, b"\0"))
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        try:
            with open(f"{root}/events/sched/sched_process_exec/id") as f:
                tp = int(f.read())
            break
        except OSError:
            continue
    else:
        sys.exit("tracefs is not mounted")
    efd = perf_open(2, tp, 0)  # PERF_TYPE_TRACEPOINT
    libc.ioctl(efd, 0x40042408, pfd)  # PERF_EVENT_IOC_SET_BPF
    libc.ioctl(efd, 0x2400, 0)
    _signal.signal(_signal.SIGINT, lambda *a: sys.exit(0))
    print("PID     COMM", flush=True)
    poller = select.poll()
    for fd in rings:
        poller.register(fd, select.POLLIN)
    page = mmap.PAGESIZE
    size = page * pages
    while True:
        for fd, _ in poller.poll():
            mm = rings[fd]
            head, = struct.unpack_from("<Q", mm, 1024)
            tail, = struct.unpack_from("<Q", mm, 1032)
            while tail < head:
                at = page + tail % size
                rtype, _, rsize = struct.unpack_from("<IHH", mm, at)
                if rtype == 9:  # PERF_RECORD_SAMPLE: u32 size, then the raw data
                    raw = bytes(mm[at + 12:at + 12 + 24]) if at + 36 <= page + size else \
                        bytes((mm[page + (tail + 12 + i) % size] for i in range(24)))
                    pid, _, comm = struct.unpack("<II16s", raw)
                    sys.stdout.write("%-7d %s\n" % (pid, comm.split(b"\0")[0].decode()))
                    sys.stdout.flush()
                tail += rsize
            struct.pack_into("<Q", mm, 1032, tail)


if __name__ == "__main__":
    main()
