"""xdpcount: packets and bytes per protocol on an interface, with an optional port drop.

    # pybpf tool xdpcount --interface eth0 --drop-port 9999
    PROTO      PACKETS    BYTES        DROPPED
    UDP        120        16800        20
    ARP        2          84           0

An XDP program sees every received frame before the network stack does.
It parses Ethernet, then IPv4 or IPv6, and counts the frame under its IP
protocol number (ARP and other non-IP frames under keys 256 and 257) in a
per-CPU array, so CPUs never contend for a counter. With ``--drop-port N``
TCP and UDP packets to port N are counted as dropped and get ``XDP_DROP``.

Fragments: only the first fragment of an IP datagram (fragment offset 0)
holds the TCP/UDP header, so only it is checked against ``--drop-port``;
dropping it is enough, since the receiver can never reassemble the datagram.
Later fragments are counted (packets and bytes) under their IP protocol and
always passed: their first bytes are payload, and reading them as ports
would drop unrelated traffic. IPv6 extension headers (hop-by-hop, routing,
destination options, fragment; up to four) are walked to reach the
upper-layer protocol the frame is counted under.

User space sums the per-CPU values and prints the totals every
``--interval`` seconds and once more at the end; the program is detached on
exit (Ctrl-C, SIGTERM, ``--duration``).
"""

from __future__ import annotations

import json
import struct
import sys
import time

from pybpf.asm import Builder, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10

from . import common, runtime

NAME = "xdpcount"
XDP_DROP, XDP_PASS = 1, 2
ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD
IPPROTO_TCP, IPPROTO_UDP = 6, 17
IP_OFFSET = 0x1FFF                  # iph->frag_off: the fragment offset (8-byte units)
IP6_OFFSET = 0xFFF8                 # frag_hdr->frag_off: offset << 3, then 2 reserved bits and M
NEXTHDR_FRAGMENT = 44
NEXTHDR_OPTIONS = (0, 43, 60)       # hop-by-hop options, routing, destination options
MAX_EXT_HEADERS = 4
KEY_ARP, KEY_OTHER = 256, 257
EOPNOTSUPP = 95
ENTRIES = 258
# struct counters { u64 packets; u64 bytes; u64 dropped; }
VALUE = struct.Struct("<QQQ")
PROTO_NAMES = {0: "HOPOPT", 1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMPv6",
               132: "SCTP", KEY_ARP: "ARP", KEY_OTHER: "other"}


def _be16(b: Builder, reg, base, off: int) -> None:
    """reg = ntohs(*(u16 *)(base + off))."""
    b.ldx(reg, base, off, "u16")
    b.be(reg, 16)


def build_program(counters, drop_port: int = 0) -> Builder:
    """The XDP program: classify the frame, count it, drop it if it goes to ``drop_port``.

    Registers: r2 = data, r3 = data_end, r4 = the header being parsed, r6 = the
    counter key, r7 = frame length, r8 = verdict, r9 = destination port (0 when
    not TCP/UDP, or not the first fragment).
    """
    b = Builder()
    b.ldx(r2, r1, 0, "u32")                         # xdp_md->data
    b.ldx(r3, r1, 4, "u32")                         # xdp_md->data_end
    b.mov(r7, r3)
    b.sub(r7, r2)                                   # frame length in bytes
    b.mov(r6, KEY_OTHER)
    b.mov(r8, XDP_PASS)
    b.mov(r9, 0)
    b.mov(r4, r2)
    b.add(r4, 14)
    b.jump_if(r4, ">", r3, "count")                 # shorter than an Ethernet header
    _be16(b, r5, r2, 12)                            # h_proto
    with b.if_(r5, "==", ETH_P_ARP):
        b.mov(r6, KEY_ARP)
    with b.if_(r5, "==", ETH_P_IP):
        b.mov(r4, r2)
        b.add(r4, 14 + 20)
        b.jump_if(r4, ">", r3, "count")             # truncated IPv4 header
        b.ldx(r6, r2, 14 + 9, "u8")                 # iph->protocol
        _be16(b, r5, r2, 14 + 6)                    # iph->frag_off
        b.and_(r5, IP_OFFSET)
        b.jump_if(r5, "!=", 0, "count")             # not the first fragment: no L4 header
        b.ldx(r4, r2, 14, "u8")
        b.and_(r4, 0x0F)
        b.lsh(r4, 2)                                # iph->ihl * 4
        b.add(r4, r2)
        b.add(r4, 14)                               # r4 = the L4 header
        b.ja("l4")
    with b.if_(r5, "==", ETH_P_IPV6):
        b.mov(r4, r2)
        b.add(r4, 14 + 40)
        b.jump_if(r4, ">", r3, "count")             # truncated IPv6 header
        b.ldx(r6, r2, 14 + 6, "u8")                 # ip6h->nexthdr; r4 = what follows
        _ipv6_extension_headers(b)
        b.ja("l4")
    b.ja("count")
    b.label("l4")                                   # r4 = L4 header, r6 = IP protocol
    with b.if_(r6, "==", IPPROTO_TCP):
        b.ja("ports")
    b.jump_if(r6, "!=", IPPROTO_UDP, "count")
    b.label("ports")
    b.mov(r5, r4)
    b.add(r5, 4)
    b.jump_if(r5, ">", r3, "count")                 # truncated TCP/UDP header
    _be16(b, r9, r4, 2)                             # dest port (same offset in TCP and UDP)
    if drop_port:
        with b.if_(r9, "==", drop_port):
            b.mov(r8, XDP_DROP)
    b.label("count")
    b.stx(r10, -4, r6, "u32")
    b.map_lookup(counters, -4)                      # this CPU's counters for the key
    b.jump_if(r0, "==", 0, "out")
    for off, reg in ((0, None), (8, r7)):           # packets += 1, bytes += length
        b.ldx(r1, r0, off)
        b.add(r1, 1 if reg is None else reg)
        b.stx(r0, off, r1)
    with b.if_(r8, "==", XDP_DROP):
        b.ldx(r1, r0, 16)
        b.add(r1, 1)
        b.stx(r0, 16, r1)                           # dropped += 1
    b.label("out")
    b.mov(r0, r8)
    b.exit()
    return b


def _ipv6_extension_headers(b: Builder) -> None:
    """Walk up to MAX_EXT_HEADERS IPv6 extension headers: r6 = next header, r4 = its start.

    On return r6 is the upper-layer protocol and r4 its header. A fragment
    header with a non-zero offset jumps to "count": later fragments carry no
    L4 header, so their first bytes must not be read as ports. A chain longer
    than the walk, or truncated, is counted under the header type reached.
    """
    for _ in range(MAX_EXT_HEADERS):
        done, not_fragment = b.new_label("ext_done"), b.new_label("not_frag")
        b.jump_if(r6, "!=", NEXTHDR_FRAGMENT, not_fragment)
        b.mov(r5, r4)
        b.add(r5, 8)
        b.jump_if(r5, ">", r3, "count")             # truncated fragment header
        b.ldx(r6, r4, 0, "u8")                      # frag->nexthdr
        _be16(b, r5, r4, 2)                         # frag->frag_off: offset << 3 | flags
        b.and_(r5, IP6_OFFSET)
        b.jump_if(r5, "!=", 0, "count")             # not the first fragment
        b.add(r4, 8)
        b.ja(done)
        b.label(not_fragment)
        for nexthdr in NEXTHDR_OPTIONS:             # hop-by-hop, routing, destination options
            b.jump_if(r6, "==", nexthdr, done + "_opt")
        b.ja("l4")                                  # an upper-layer header (or one not walked)
        b.label(done + "_opt")
        b.mov(r5, r4)
        b.add(r5, 8)
        b.jump_if(r5, ">", r3, "count")             # truncated extension header
        b.ldx(r6, r4, 0, "u8")                      # hdr->nexthdr
        b.ldx(r5, r4, 1, "u8")
        b.add(r5, 1)
        b.lsh(r5, 3)                                # (hdr->hdrlen + 1) * 8 bytes
        b.add(r4, r5)
        b.label(done)


def totals(counters) -> dict[str, dict[str, int]]:
    """Per-CPU values summed, for every key seen at least once."""
    keys, values = counters.lookup_batch()
    out = {}
    for key, per_cpu in zip(keys, values):
        packets = nbytes = dropped = 0
        for raw in per_cpu:
            p, n, d = VALUE.unpack(bytes(raw)[:VALUE.size])
            packets, nbytes, dropped = packets + p, nbytes + n, dropped + d
        if packets:
            name = PROTO_NAMES.get(key, f"proto {key}")
            out[name] = {"packets": packets, "bytes": nbytes, "dropped": dropped}
    return out


def options() -> common.Options:
    """xdpcount's command-line options (parsed in :func:`main`, checked by the tests)."""
    p = common.parser(NAME, "Count packets and bytes per protocol on an interface (XDP).",
                      pid=False, json_help="print one JSON object per interval (the totals so "
                                           "far) and one at the end")
    p.add("-i", "--interface", required=True, help="network interface to watch")
    p.add("--drop-port", type=int, default=0, metavar="N",
          help="drop TCP and UDP packets to destination port N (of fragmented datagrams, "
               "the first fragment only: later ones have no ports and pass)")
    p.add("--interval", type=common.positive_float, default=1.0,
          help="seconds between tables (greater than 0)")
    p.add("--mode", choices=("generic", "driver"), default=None,
          help="XDP hook (default: the driver's if it has one, else generic)")
    return p


def attach(prog, interface: str, mode: str | None):
    """attach_xdp, with EOPNOTSUPP in driver mode explained: the kernel's words, and what to do."""
    from pybpf.link.xdp import attach_xdp
    try:
        return attach_xdp(prog, interface, mode=mode)
    except OSError as exc:
        if mode != "driver" or exc.errno != EOPNOTSUPP:
            raise
        from pybpf.syscall import NotSupported
        raise NotSupported(EOPNOTSUPP, "", f"XDP on {interface} (--mode driver): Underlying "
                           "driver does not support XDP in native mode",
                           hint="Try --mode generic, which works on every interface") from None


def main(argv: list[str] | None = None) -> int:
    p = options()
    args = p.parse(argv)
    if not 0 <= args.drop_port <= 65535:
        p.error(f"--drop-port {args.drop_port}: not a port number (0-65535)")
    common.require_root(NAME)
    state: dict = {}

    def show() -> None:
        counts = totals(state["counters"])
        if args.json:  # through write_out: a signal can end a tool blocked on a full pipe
            common.write_out(json.dumps({"interface": args.interface, "time": round(time.time(), 3),
                                         "protocols": counts}) + "\n")
            return
        lines = [f"\n{time.strftime('%H:%M:%S')} {args.interface}",
                 "%-10s %-10s %-12s %s" % ("PROTO", "PACKETS", "BYTES", "DROPPED")]
        for name, c in sorted(counts.items(), key=lambda kv: -kv[1]["packets"]):
            lines.append("%-10s %-10d %-12d %d" % (name, c["packets"], c["bytes"], c["dropped"]))
        common.write_out("\n".join(lines) + "\n")

    def start(stack):
        from pybpf.maps import MapSpec
        counters = stack.enter_context(
            MapSpec.percpu_array(VALUE.size, ENTRIES, name="counters").create())
        state["counters"] = counters
        prog = stack.enter_context(runtime.load(build_program(counters, args.drop_port),
                                                "xdp", NAME))
        stack.enter_context(attach(prog, args.interface, args.mode))
        state["next"] = time.monotonic() + args.interval

        def poll(timeout: float) -> None:
            time.sleep(max(0.0, min(timeout, state["next"] - time.monotonic())))
            now = time.monotonic()
            if now >= state["next"]:
                state["next"] = max(state["next"] + args.interval, now)  # no catching up
                show()
        drop = f", dropping TCP/UDP to port {args.drop_port}" if args.drop_port else ""
        return f"packets on {args.interface}{drop}", poll

    return runtime.run(NAME, args.duration, start, finish=show)


if __name__ == "__main__":
    sys.exit(main())
