"""tcpconnect: every outbound TCP connect, IPv4 and IPv6.

    # pybpf tool tcpconnect
    PID     COMM             IP SADDR            DADDR            DPORT
    4242    curl             4  10.0.0.1         10.0.0.2         80
    4243    curl             6  ::1              ::1              8080

Records reach user space through a perf event array, as in BCC's example,
or through a ring buffer with ``--ringbuf``. Two ways to see a connect:

* **tracepoint** ``sock:inet_sock_set_state``: the transition to
  ``TCP_SYN_SENT`` happens inside ``connect()``, so the current task is the
  connecting process, and the record already carries family, addresses and
  the destination port (offsets taken from the event's tracefs format). The
  local port is not chosen yet at that point (``inet_hash_connect`` runs
  later), so ``sport`` is null in ``--json`` output on this path;
* **kprobe** (where the kernel has kprobes, BCC's way): ``tcp_v4_connect`` /
  ``tcp_v6_connect`` save the socket pointer per thread; their kretprobes,
  when the call returned 0, read ``sk->__sk_common`` at offsets from the
  kernel's BTF.
"""

from __future__ import annotations

import socket
import struct
import sys

from pybpf.asm import Builder, r0, r1, r2, r3, r6, r7, r10

from . import common, runtime

NAME = "tcpconnect"
AF_INET, AF_INET6 = 2, 10
TCP_SYN_SENT = 2
IPPROTO_TCP = 6
# struct event { u32 pid; u32 uid; u16 family, sport, dport, pad;
#                u8 saddr[16]; u8 daddr[16]; char comm[16]; }
RECORD = struct.Struct("<IIHHHH16s16s16s")
EV = -RECORD.size
PID, UID, FAMILY, SPORT, DPORT, PAD = EV, EV + 4, EV + 8, EV + 10, EV + 12, EV + 14
SADDR, DADDR, COMM = EV + 16, EV + 32, EV + 48


def _head(b: Builder, pid: int) -> None:
    """event.pid/uid/comm, and the --pid filter (jumps to "out")."""
    b.call("get_current_pid_tgid")
    b.rsh(r0, 32)
    if pid:
        b.jump_if(r0, "!=", pid, "out")
    b.stx(r10, PID, r0, "u32")
    b.call("get_current_uid_gid")
    b.stx(r10, UID, r0, "u32")
    b.stack_ptr(r1, COMM)
    b.mov(r2, 16)
    b.call("get_current_comm")
    b.mov(r1, 0)
    for off in range(SADDR, COMM, 8):        # addresses start zeroed (IPv4 uses 4 of 16 bytes)
        b.stx(r10, off, r1)
    b.st(r10, PAD, 0, "u16")


def _copy(b: Builder, src_off: int, dst_off: int, size: int) -> None:
    """Copy ``size`` bytes from the tracepoint record (r6) to the stack."""
    done = 0
    for width in (8, 4, 2):
        while size - done >= width:
            b.ldx(r1, r6, src_off + done, width)
            b.stx(r10, dst_off + done, r1, width)
            done += width


def build_tracepoint_program(events: runtime.Events, fields: dict[str, int], pid: int = 0) -> Builder:
    """sock:inet_sock_set_state: on TCP_SYN_SENT, send family, addresses and ports."""
    b = Builder()
    b.mov(r6, r1)                                            # r6 = the tracepoint record
    b.ldx(r1, r6, fields["newstate"], "u32")
    b.jump_if(r1, "!=", TCP_SYN_SENT, "out")
    b.ldx(r1, r6, fields["protocol"], "u16")
    b.jump_if(r1, "!=", IPPROTO_TCP, "out")
    _head(b, pid)
    b.ldx(r7, r6, fields["family"], "u16")
    b.stx(r10, FAMILY, r7, "u16")
    _copy(b, fields["sport"], SPORT, 2)                      # host byte order; 0 (not bound yet)
    _copy(b, fields["dport"], DPORT, 2)
    with b.if_(r7, "==", AF_INET6):
        _copy(b, fields["saddr_v6"], SADDR, 16)
        _copy(b, fields["daddr_v6"], DADDR, 16)
    with b.else_():
        _copy(b, fields["saddr"], SADDR, 4)
        _copy(b, fields["daddr"], DADDR, 4)
    events.emit(b, r6, EV)
    b.label("out")
    b.ret(0)
    return b


def build_entry_program(sockets) -> Builder:
    """kprobe tcp_v{4,6}_connect(sk, ...): remember sk under the thread id."""
    b = Builder()
    b.ldx(r6, r1, runtime.pt_regs_offset("parm1"))          # r6 = struct sock *sk
    b.call("get_current_pid_tgid")
    b.stx(r10, -8, r0)                                       # key: pid_tgid
    b.stx(r10, -16, r6)                                      # value: sk
    b.map_update(sockets, -8, -16)
    b.ret(0)
    return b


def build_return_program(events: runtime.Events, sockets, sk: dict[str, int], pid: int = 0) -> Builder:
    """kretprobe tcp_v{4,6}_connect: if it returned 0, read the socket and send the event."""
    b = Builder()
    b.mov(r6, r1)                                            # r6 = pt_regs
    b.call("get_current_pid_tgid")
    b.stx(r10, EV - 8, r0)
    b.map_lookup(sockets, EV - 8)
    b.jump_if(r0, "==", 0, "out")                            # entry not seen
    b.ldx(r7, r0, 0)                                         # r7 = sk
    b.ld_map_fd(r1, sockets)
    b.stack_ptr(r2, EV - 8)
    b.call("map_delete_elem")
    b.ldx(r1, r6, runtime.pt_regs_offset("rc"))
    b.jump_if(r1, "!=", 0, "out")                            # connect failed early
    _head(b, pid)

    def read(dst: int, field: str, size: int) -> None:       # probe_read_kernel(fp+dst, size, sk+off)
        b.stack_ptr(r1, dst)
        b.mov(r2, size)
        b.mov(r3, r7)
        b.add(r3, sk[field])
        b.call("probe_read_kernel")

    read(FAMILY, "skc_family", 2)
    read(SPORT, "skc_num", 2)                                # local port, host order
    read(DPORT, "skc_dport", 2)                              # network order: swapped below
    b.ldx(r1, r10, DPORT, "u16")
    b.be(r1, 16)
    b.stx(r10, DPORT, r1, "u16")
    b.ldx(r1, r10, FAMILY, "u16")
    with b.if_(r1, "==", AF_INET6):
        read(SADDR, "skc_v6_rcv_saddr", 16)
        read(DADDR, "skc_v6_daddr", 16)
    with b.else_():
        read(SADDR, "skc_rcv_saddr", 4)
        read(DADDR, "skc_daddr", 4)
    events.emit(b, r6, EV)
    b.label("out")
    b.ret(0)
    return b


def tracepoint_fields() -> dict[str, int]:
    from pybpf.tracefs import event_format
    fmt = event_format("sock", "inet_sock_set_state")
    names = ("newstate", "protocol", "family", "sport", "dport", "saddr", "daddr", "saddr_v6",
             "daddr_v6")
    return {n: fmt.field(n).offset for n in names}


def sock_offsets() -> dict[str, int]:
    from pybpf.btf import load_kernel_btf
    btf = load_kernel_btf()
    names = ("skc_family", "skc_num", "skc_dport", "skc_rcv_saddr", "skc_daddr",
             "skc_v6_rcv_saddr", "skc_v6_daddr")
    return {n: btf.member_offset("sock", f"__sk_common.{n}")[0] for n in names}


def decode(rec: tuple) -> dict:
    pid, uid, family, sport, dport, _, saddr, daddr, comm = rec
    if family == AF_INET6:
        src, dst, ip = socket.inet_ntop(socket.AF_INET6, saddr), \
            socket.inet_ntop(socket.AF_INET6, daddr), 6
    else:
        src, dst, ip = socket.inet_ntop(socket.AF_INET, saddr[:4]), \
            socket.inet_ntop(socket.AF_INET, daddr[:4]), 4
    return {"pid": pid, "uid": uid, "comm": common.cstr(comm), "ip": ip, "saddr": src,
            "daddr": dst, "sport": sport or None, "dport": dport}


def options() -> common.Options:
    """tcpconnect's command-line options (parsed in :func:`main`, checked by the tests)."""
    p = common.parser(NAME, "Trace outbound TCP connects (IPv4 and IPv6).")
    p.add("--ringbuf", action="store_true",
          help="deliver records through a ring buffer instead of a perf event array")
    common.add_attach_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = options()
    args = p.parse(argv)
    common.require_root(NAME)
    out = common.Output(args.json, [("pid", "%-7s"), ("comm", "%-16s"), ("ip", "%-2s"),
                                    ("saddr", "%-16s"), ("daddr", "%-16s"), ("dport", "%s")])

    def start(stack):
        mode = runtime.attach_mode(args.attach)
        events = stack.enter_context(runtime.Events(RECORD, ringbuf=args.ringbuf))
        events.open(lambda rec: out.event(decode(rec)))  # before attaching, so that no event is lost
        if mode == "kprobe":
            from pybpf.maps import MapSpec
            sockets = stack.enter_context(MapSpec.hash("Q", "Q", 10240, name="sockets").create())
            entry = stack.enter_context(runtime.load(build_entry_program(sockets), "kprobe",
                                                     "tcpconnect_in"))
            ret = stack.enter_context(runtime.load(
                build_return_program(events, sockets, sock_offsets(), args.pid or 0), "kprobe",
                "tcpconnect_out"))
            for fn in ("tcp_v4_connect", "tcp_v6_connect"):
                stack.enter_context(runtime.attach_kprobes(entry, kprobe=fn)[0])
                stack.enter_context(runtime.attach_kprobes(ret, kretprobe=fn)[0])
            where = "kprobes tcp_v4_connect, tcp_v6_connect"
        else:
            prog = stack.enter_context(runtime.load(
                build_tracepoint_program(events, tracepoint_fields(), args.pid or 0),
                "tracepoint", NAME))
            link, where = runtime.attach(prog, mode, tracepoint="sock:inet_sock_set_state")
            stack.enter_context(link)
        channel = "ring buffer" if args.ringbuf else "perf buffer"
        return f"TCP connects via {where} ({channel})", events.poll

    return runtime.run(NAME, args.duration, start, header=out.header)


if __name__ == "__main__":
    sys.exit(main())
