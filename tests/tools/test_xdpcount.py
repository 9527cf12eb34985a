"""xdpcount on one end of a veth pair between two network namespaces made for the test."""

import json
import os
import struct
import subprocess
import sys

import pytest

from toolkit import requires_root
from pybpf.tools import xdpcount

RECEIVER = """
import json, socket, sys
family, addr, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
socks = {}
for port in ports:
    s = socket.socket(socket.AF_INET6 if family == "6" else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.05)
    socks[port] = s
print("ready", flush=True)
sys.stdin.readline()                       # the sender is done
got = {}
for port, s in socks.items():
    sizes = []
    try:
        while True:
            sizes.append(len(s.recv(65535)))
    except socket.timeout:
        pass
    got[port] = sizes
print(json.dumps(got), flush=True)
"""

SENDER = """
import socket, sys
family, addr = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6 if family == "6" else socket.AF_INET, socket.SOCK_DGRAM)
for spec in sys.argv[3:]:                  # COUNTxSIZE:PORT
    count, _, rest = spec.partition("x")
    size, _, port = rest.partition(":")
    # Every 16-bit word of the payload is 0x270F (9999): whatever offset a later
    # fragment starts at (a multiple of 8), its first bytes 2-3 read as port 9999.
    payload = (b"\\x27\\x0f" * 40000)[:int(size)]
    for _ in range(int(count)):
        s.sendto(payload, (addr, int(port)))
"""

ADDRS = {"4": ("10.199.0.1", "10.199.0.2"), "6": ("fd00:199::1", "fd00:199::2")}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth_pair():
    """Namespaces A (10.199.0.1, fd00:199::1) and B (.2, ::2) joined by a veth pair; removed after."""
    tag = f"pybpf{os.getpid() % 100000}"
    a, b = f"{tag}a", f"{tag}b"
    ip("netns", "add", a)
    try:
        ip("netns", "add", b)
        ip("link", "add", "xcA", "netns", a, "type", "veth", "peer", "name", "xcB", "netns", b)
        for ns, dev, i in ((a, "xcA", 0), (b, "xcB", 1)):
            ip("-n", ns, "addr", "add", ADDRS["4"][i] + "/24", "dev", dev)
            ip("-n", ns, "addr", "add", ADDRS["6"][i] + "/64", "dev", dev, "nodad")
            ip("-n", ns, "link", "set", dev, "up")
        # Permanent neighbour entries: no ARP/ND exchange that a first packet sent while
        # the link comes up could wait a retransmission (a second) for.
        for ns, dev, peer_ns, peer, i in ((a, "xcA", b, "xcB", 1), (b, "xcB", a, "xcA", 0)):
            mac = json.loads(subprocess.run(["ip", "-n", peer_ns, "-j", "link", "show", peer],
                                            capture_output=True, check=True).stdout)[0]["address"]
            for family in ADDRS:
                ip("-n", ns, "neigh", "replace", ADDRS[family][i], "lladdr", mac, "dev", dev,
                   "nud", "permanent")
        yield a, b
    finally:
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", b], capture_output=True)


def exchange(veth_pair, family: str, ports, *sends: str) -> dict[int, list[int]]:
    """Send ``sends`` (COUNTxSIZE:PORT) from A to B; the datagram sizes B received per port."""
    a, b = veth_pair
    src, dst = ADDRS[family]
    receiver = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-c", RECEIVER,
                                 family, dst, *map(str, ports)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", SENDER, family, dst,
                        *sends], check=True)
        receiver.stdin.write("done\n")
        receiver.stdin.flush()
        return {int(k): v for k, v in json.loads(receiver.stdout.readline()).items()}
    finally:
        receiver.kill()
        receiver.wait()


def xdp_attached(ns: str) -> bool:
    link = subprocess.run(["ip", "-n", ns, "link", "show", "xcB"], capture_output=True, text=True)
    return "xdp" in link.stdout


@pytest.mark.kernel
@requires_root
def test_counts_udp_and_drops_the_port(tool, veth_pair):
    a, b = veth_pair
    t = tool("xdpcount", "--interface", "xcB", "--drop-port", "9999", "--interval", "0.2",
             prefix=("ip", "netns", "exec", b))
    assert xdp_attached(b)                                         # attached while running
    received = exchange(veth_pair, "4", (5555, 9999), "10x100:5555", "5x100:9999")
    assert received == {5555: [100] * 10, 9999: []}               # the XDP drop is real
    udp = t.wait_for(lambda e: e["protocols"].get("UDP", {}).get("packets", 0) >= 15)["protocols"]["UDP"]
    assert udp["packets"] == 15 and udp["dropped"] == 5
    assert udp["bytes"] == 15 * (14 + 20 + 8 + 100)
    assert t.stop() == 0
    final = json.loads(t.stdout[-1])
    assert final["protocols"]["UDP"] == udp
    assert not xdp_attached(b)                                     # detached on SIGINT


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("family", ["4", "6"])
def test_fragments_match_the_drop_port_by_their_first_fragment_only(tool, veth_pair, family):
    """Later fragments have no ports: their payload must not be read as one.

    3000-byte datagrams leave in three fragments. Those to port 8888 carry 9999
    where a later fragment's "destination port" would be: all must arrive.
    Those to port 9999 lose their first fragment, so none arrives, and only
    first fragments count as dropped.
    """
    a, b = veth_pair
    t = tool("xdpcount", "--interface", "xcB", "--drop-port", "9999", "--interval", "0.2",
             prefix=("ip", "netns", "exec", b))
    received = exchange(veth_pair, family, (8888, 9999), "5x3000:8888", "3x3000:9999")
    assert received == {8888: [3000] * 5, 9999: []}
    udp = t.wait_for(lambda e: e["protocols"].get("UDP", {}).get("packets", 0) >= 24)["protocols"]["UDP"]
    assert udp["packets"] == 8 * 3 and udp["dropped"] == 3       # under UDP, IPv6 ones too
    assert t.stop() == 0


def frame(l3: bytes, ipv6: bool = False) -> bytes:
    return bytes(12) + (b"\x86\xdd" if ipv6 else b"\x08\x00") + l3


def ipv4(proto: int, frag_off: int, payload: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag_off, 64, proto, 0,
                       bytes(4), bytes(4)) + payload


def ipv6(nexthdr: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nexthdr, 64, bytes(16),
                       bytes(16)) + payload


def udp(dport: int) -> bytes:
    return struct.pack("!HHHH", 1234, dport, 16, 0) + b"payload!"


def frag6(nexthdr: int, offset: int, more: bool, payload: bytes) -> bytes:
    return struct.pack("!BBHI", nexthdr, 0, offset << 3 | more, 7) + payload


def opts6(nexthdr: int, units: int = 0) -> bytes:
    """Hop-by-hop or destination options: (units + 1) * 8 bytes of padding options."""
    return bytes([nexthdr, units]) + bytes(6 + 8 * units)


def routing(n: int) -> bytes:
    """``n`` routing headers, the last followed by UDP."""
    return b"".join(opts6(43 if i < n - 1 else 17) for i in range(n))


TCP, UDP, FRAG, HOPOPT, DSTOPTS, ROUTING = 6, 17, 44, 0, 60, 43
DROP, PASS = xdpcount.XDP_DROP, xdpcount.XDP_PASS
PORT = struct.pack("!HH", 1234, 9999)          # what a later fragment's payload may start with
FRAMES = [  # (what, frame, verdict, counted under)
    ("IPv4 first fragment", frame(ipv4(UDP, 0x2000, udp(9999))), DROP, "UDP"),
    ("IPv4 unfragmented, DF", frame(ipv4(UDP, 0x4000, udp(9999))), DROP, "UDP"),
    ("IPv4 later fragment", frame(ipv4(UDP, 0x2000 | 185, PORT + bytes(8))), PASS, "UDP"),
    ("IPv4 last fragment", frame(ipv4(TCP, 370, PORT + bytes(8))), PASS, "TCP"),
    ("IPv4 other port", frame(ipv4(UDP, 0, udp(8888))), PASS, "UDP"),
    ("IPv6 first fragment", frame(ipv6(FRAG, frag6(UDP, 0, True, udp(9999))), True), DROP, "UDP"),
    ("IPv6 later fragment", frame(ipv6(FRAG, frag6(UDP, 181, True, PORT + bytes(8))), True),
     PASS, "UDP"),
    ("IPv6 last fragment", frame(ipv6(FRAG, frag6(TCP, 362, False, PORT + bytes(8))), True),
     PASS, "TCP"),
    ("IPv6 hop-by-hop, dstopts", frame(ipv6(HOPOPT, opts6(DSTOPTS, 1) + opts6(UDP) + udp(9999)),
                                       True), DROP, "UDP"),
    ("IPv6 hop-by-hop, later fragment",
     frame(ipv6(HOPOPT, opts6(FRAG) + frag6(UDP, 1, True, PORT + bytes(8))), True), PASS, "UDP"),
    ("IPv6 truncated fragment header", frame(ipv6(FRAG, bytes(4)), True), PASS, "proto 44"),
    ("IPv6 routing headers, as many as walked",
     frame(ipv6(ROUTING, routing(xdpcount.MAX_EXT_HEADERS) + udp(9999)), True), DROP, "UDP"),
    ("IPv6 routing headers, one more than walked",         # counted under the header reached
     frame(ipv6(ROUTING, routing(xdpcount.MAX_EXT_HEADERS + 1) + udp(9999)), True),
     PASS, "proto 43"),
]


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("what,data,verdict,proto", FRAMES, ids=[f[0] for f in FRAMES])
def test_fragments_and_extension_headers_in_test_run(what, data, verdict, proto):
    from pybpf.maps import MapSpec
    from pybpf.tools import runtime
    with MapSpec.percpu_array(xdpcount.VALUE.size, xdpcount.ENTRIES, name="c").create() as c, \
            runtime.load(xdpcount.build_program(c, drop_port=9999), "xdp", "t") as prog:
        assert prog.test_run(data_in=data).retval == verdict
        assert xdpcount.totals(c) == {proto: {"packets": 1, "bytes": len(data),
                                              "dropped": int(verdict == DROP)}}


@pytest.mark.kernel
@requires_root
def test_driver_mode_without_native_xdp_is_explained(tool):
    ns = f"pybpf{os.getpid() % 100000}d"
    ip("netns", "add", ns)
    try:
        t = tool("xdpcount", "-i", "lo", "--mode", "driver", ready=False,
                 prefix=("ip", "netns", "exec", ns))
        assert t.finish() == 1
        err = "".join(t.stderr)
        assert "Underlying driver does not support XDP in native mode" in err
        assert "--mode generic" in err and "(95," not in err and "Traceback" not in err
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_interval_must_be_positive(tool, value):
    t = tool("xdpcount", "-i", "lo", "--interval", value, ready=False)
    assert t.finish() == 2
    err = "".join(t.stderr)
    assert err.startswith("usage: pybpf tool xdpcount") and "--interval" in err


def test_json_help_says_one_object_per_interval():
    text = " ".join(xdpcount.options().argparser().format_help().split())
    assert "one JSON object per interval" in text and "per event" not in text


@pytest.mark.kernel
@requires_root
def test_bad_interface_is_a_clear_error(tool):
    t = tool("xdpcount", "--interface", "no-such-if0", ready=False)
    assert t.finish() == 1
    err = "".join(t.stderr)
    assert "no-such-if0" in err and "Traceback" not in err
