"""Shared fixtures of the link, perf and ringbuf tests: small programs and a veth pair.

Programs are :class:`~pybpf.asm.builder.Builder` objects (load them with
``Program.load(ProgramSpec(b, prog_type), verify=False)``); maps are
``pybpf.maps`` objects. Only the namespaces and veth pair need ``ip``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess

from pybpf.asm.builder import Builder
from pybpf.asm.registers import R

r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = R


def increment(b: Builder, counter) -> None:
    """Emit ``counter[0] += 1`` (an atomic add; clobbers r0-r5 and the stack at r10-4)."""
    b.st(r10, -4, 0, 4)
    b.map_lookup(counter, key_at=-4)
    with b.if_(r0, "!=", 0):
        b.mov(r1, 1)
        b.atomic_add(r0, 0, r1)


def count_if_tgid(counter, tgid: int, b: Builder | None = None) -> Builder:
    """A program that adds 1 to counter[0] when the current tgid is ``tgid``; returns 0.

    With ``b``, the test is emitted into it (inside a condition the caller opened).
    """
    outer = b
    b = Builder() if b is None else b
    b.call("get_current_pid_tgid")
    b.rsh(r0, 32)
    with b.if_(r0, "==", tgid):
        increment(b, counter)
    if outer is None:
        b.ret(0)
    return b


def count_sys_enter(counter, nr: int, tgid: int) -> Builder:
    """For raw ``sys_enter`` (and its tp_btf form), whose ctx is ``u64 args[2] = {regs, id}``:
    count syscall ``nr`` of process ``tgid``."""
    b = Builder()
    b.ldx(r6, r1, 8, 8)  # args[1]: the syscall number
    with b.if_(r6, "==", nr):
        count_if_tgid(counter, tgid, b)
    b.ret(0)
    return b


def load_trivial(prog_type, name: str, ret: int = 0):
    """A loaded program of ``prog_type`` that only returns ``ret``: for attach-error tests."""
    from pybpf.program import ProgramSpec
    b = Builder()
    b.mov(R[0], ret)
    b.exit()
    return ProgramSpec(list(b), prog_type, name=name).load(verify=False)


def count_all(counter, ret: int) -> Builder:
    """counter[0] += 1 on every run; returns ``ret``."""
    b = Builder()
    increment(b, counter)
    b.ret(ret)
    return b


BPF_F_CURRENT_CPU = 0xFFFFFFFF


def seq_producer(counter, out, tgid: int, *, kind: str = "ringbuf",
                 discard_odd: bool = False) -> Builder:
    """On each event of process ``tgid``: seq = counter[0]++, emit {u64 seq, u32 cpu, u32 tgid}.

    ``kind`` is ``ringbuf`` (bpf_ringbuf_output, or reserve/submit/discard with
    ``discard_odd``) or ``perf`` (bpf_perf_event_output on the current CPU).
    """
    b = Builder()
    b.mov(r6, r1)  # ctx, for perf_event_output
    b.call("get_current_pid_tgid")
    b.rsh(r0, 32)
    b.jne(r0, tgid, "out")
    b.mov(r7, r0)
    b.st(r10, -4, 0, 4)
    b.map_lookup(counter, key_at=-4)
    b.jeq(r0, 0, "out")
    b.mov(r8, 1)
    b.atomic_add(r0, 0, r8, fetch=True)  # r8 = old counter value: the sequence number
    b.call("get_smp_processor_id")
    b.mov(r9, r0)
    if kind == "perf":
        b.stx(r10, -16, r8, 8)
        b.stx(r10, -8, r9, 4)
        b.stx(r10, -4, r7, 4)
        b.mov(r1, r6)
        b.ld_map_fd(r2, out)
        b.ld_imm64(r3, BPF_F_CURRENT_CPU)
        b.stack_ptr(r4, -16)
        b.mov(r5, 16)
        b.call("perf_event_output")
    elif not discard_odd:
        b.stx(r10, -16, r8, 8)
        b.stx(r10, -8, r9, 4)
        b.stx(r10, -4, r7, 4)
        b.ld_map_fd(r1, out)
        b.stack_ptr(r2, -16)
        b.mov(r3, 16)
        b.mov(r4, 0)
        b.call("ringbuf_output")
    else:
        b.ld_map_fd(r1, out)
        b.mov(r2, 16)
        b.mov(r3, 0)
        b.call("ringbuf_reserve")
        b.jeq(r0, 0, "out")
        b.stx(r0, 0, r8, 8)
        b.stx(r0, 8, r9, 4)
        b.stx(r0, 12, r7, 4)
        b.mov(r1, r0)
        b.mov(r2, 0)
        b.and_(r8, 1)
        b.jeq(r8, 0, "submit")
        b.call("ringbuf_discard")
        b.ja("out")
        b.label("submit")
        b.call("ringbuf_submit")
    b.label("out")
    b.ret(0)
    return b


# ---------------------------------------------------------------- networking
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def netns(name: str):
    """Run the block in network namespace ``name`` (this thread only), then come back."""
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        yield
    finally:
        _libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)


class VethPair:
    """Two fresh namespaces ``a`` and ``b`` joined by veth ``va`` (10.199.x.1) -- ``vb`` (10.199.x.2)."""

    def __init__(self, tag: str = ""):
        base = f"pybpf{os.getpid()}{tag}"
        self.a, self.b = base + "a", base + "b"
        self.ip_a, self.ip_b = "10.199.7.1", "10.199.7.2"
        sh = lambda *cmd: subprocess.run(cmd, check=True, capture_output=True)  # noqa: E731
        sh("ip", "netns", "add", self.a)
        sh("ip", "netns", "add", self.b)
        try:
            sh("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", self.b)
            sh("ip", "-n", self.a, "addr", "add", self.ip_a + "/24", "dev", "va")
            sh("ip", "-n", self.b, "addr", "add", self.ip_b + "/24", "dev", "vb")
            for ns, dev in ((self.a, "va"), (self.b, "vb")):
                sh("ip", "-n", ns, "link", "set", dev, "up")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def socket_in(self, ns: str) -> socket.socket:
        with netns(ns):
            return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def close(self) -> None:
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def udp_counter_prog(counter, *, data_off: int, end_off: int, l3: int, hit: int, miss: int) -> Builder:
    """Count IPv4/UDP packets (direct packet access) and return ``hit`` for them, ``miss`` otherwise.

    ``l3`` is where the IP header starts (14 behind an Ethernet header, 0 for cgroup skb).
    """
    b = Builder()
    b.ldx(r2, r1, data_off, 4)
    b.ldx(r3, r1, end_off, 4)
    b.mov(r4, r2)
    b.add(r4, l3 + 20)
    b.jgt(r4, r3, "miss")
    if l3:
        b.ldx(r5, r2, 12, 2)
        b.jne(r5, 0x0008, "miss")  # ETH_P_IP, big-endian 0x0800 read little-endian
    b.ldx(r5, r2, l3 + 9, 1)
    b.jne(r5, 17, "miss")  # IPPROTO_UDP
    b.st(r10, -4, 0, 4)
    b.map_lookup(counter, key_at=-4)
    b.jeq(r0, 0, "hit")
    b.mov(r1, 1)
    b.atomic_add(r0, 0, r1)
    b.label("hit")
    b.ret(hit)
    b.label("miss")
    b.ret(miss)
    return b
