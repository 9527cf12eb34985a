import os
import socket
import subprocess
import sys
import textwrap

import pytest

from attachkit import VethPair, increment, netns, r0, r1, udp_counter_prog
from pybpf.asm.builder import Builder
from pybpf.link import (attach_cgroup, attach_socket_filter, attach_tc, attach_xdp, link_ids,
                        tc_filters, xdp_prog_id)
from pybpf.maps import MapSpec
from pybpf.program import AttachType, Program, ProgramSpec, ProgType

pytestmark = pytest.mark.kernel

XDP_DROP, XDP_PASS = 1, 2
TC_ACT_OK, TC_ACT_SHOT = 0, 2
PORT = 4789


@pytest.fixture
def veth():
    pair = VethPair()
    yield pair
    pair.close()


@pytest.fixture
def counter():
    with MapSpec.array("Q", 1).create() as m:
        yield m


def load(prog_type, b, **spec):
    return Program.load(ProgramSpec(b, prog_type, **spec), verify=False)


def send_and_receive(veth, n):
    """Send n datagrams from namespace b to a; return how many a received."""
    rx = veth.socket_in(veth.a)
    tx = veth.socket_in(veth.b)
    with rx, tx:
        rx.bind((veth.ip_a, PORT))
        rx.settimeout(0.3)
        for i in range(n):
            tx.sendto(b"x%d" % i, (veth.ip_a, PORT))
        got = 0
        try:
            while got < n:
                rx.recv(64)
                got += 1
        except TimeoutError:
            pass
    return got


def warm_up(veth):
    assert send_and_receive(veth, 1) == 1  # resolves ARP both ways before counting


@pytest.mark.parametrize("method,mode", [("link", None), ("netlink", "generic"), ("netlink", "driver")])
def test_xdp_counts_and_drops_udp(veth, counter, method, mode):
    warm_up(veth)
    prog = load(ProgType.XDP, udp_counter_prog(counter, data_off=0, end_off=4, l3=14, hit=XDP_DROP, miss=XDP_PASS))
    with netns(veth.a):
        with attach_xdp(prog, "va", mode=mode, method=method) as link:
            assert xdp_prog_id("va", mode) == prog.id
            assert send_and_receive(veth, 10) == 0
            assert counter[0] == 10
        assert not link.attached
        assert xdp_prog_id("va") == 0
    assert send_and_receive(veth, 3) == 3
    prog.close()


@pytest.mark.parametrize("method", ["tcx", "netlink"])
def test_tc_ingress_counts_and_drops_udp(veth, counter, method):
    warm_up(veth)
    prog = load(ProgType.SCHED_CLS, udp_counter_prog(counter, data_off=76, end_off=80, l3=14, hit=TC_ACT_SHOT,
                                            miss=TC_ACT_OK))
    with netns(veth.a):
        with attach_tc(prog, "va", "ingress", method=method) as link:
            if method == "netlink":
                assert [f["name"] for f in tc_filters("va", "ingress")] == ["pybpf"]
            else:
                assert link.id in set(link_ids())
            assert send_and_receive(veth, 7) == 0
            assert counter[0] == 7
        assert tc_filters("va", "ingress") == []
        qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", "va"], capture_output=True, text=True).stdout
        assert "clsact" not in qdiscs
    assert send_and_receive(veth, 2) == 2
    prog.close()


def test_tc_egress_counts_and_drops_udp(veth, counter):
    warm_up(veth)
    prog = load(ProgType.SCHED_CLS, udp_counter_prog(counter, data_off=76, end_off=80, l3=14, hit=TC_ACT_SHOT,
                                            miss=TC_ACT_OK))
    with netns(veth.b):
        link = attach_tc(prog, "vb", "egress", method="netlink")
    assert send_and_receive(veth, 4) == 0
    assert counter[0] == 4
    link.detach()  # works from outside the namespace: the netlink socket remembers it
    with netns(veth.b):
        assert tc_filters("vb", "egress") == []
    assert send_and_receive(veth, 1) == 1
    prog.close()


def test_socket_filter_drops_datagrams(counter):
    # Keep datagrams of 5+ bytes, drop shorter ones: skb->len is __sk_buff offset 0.
    b = Builder()
    b.ldx(r0, r1, 0, 4)
    with b.if_(r0, "<", 5):
        increment(b, counter)
        b.ret(0)
    b.ret(0xFFFF)
    prog = load(ProgType.SOCKET_FILTER, b)
    a, c = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, c:
        c.settimeout(0.2)
        with attach_socket_filter(prog, c):
            for msg in (b"long enough", b"no", b"x", b"hello world"):
                a.send(msg)
            got = []
            try:
                while True:
                    got.append(c.recv(64))
            except TimeoutError:
                pass
            assert got == [b"long enough", b"hello world"]
            assert counter[0] == 2
        a.send(b"hi")
        assert c.recv(64) == b"hi"  # detached: short ones pass again
    prog.close()


CHILD = textwrap.dedent("""
    import socket, sys
    sys.stdin.readline()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[1])):
        s.sendto(b"cg", ("127.0.0.1", int(sys.argv[2])))
""")


@pytest.mark.parametrize("method", ["link", "attach"])
def test_cgroup_skb_counts_egress_of_a_cgroup(counter, cgroup_dir, method):
    prog = load(ProgType.CGROUP_SKB, udp_counter_prog(counter, data_off=76, end_off=80, l3=0, hit=1, miss=1),
                expected_attach_type=AttachType.CGROUP_INET_EGRESS)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    with rx, attach_cgroup(prog, cgroup_dir, "egress", method=method):
        child = subprocess.Popen([sys.executable, "-c", CHILD, "9", str(port)], stdin=subprocess.PIPE)
        with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
        child.stdin.write(b"go\n")
        child.stdin.close()
        assert child.wait(timeout=20) == 0
        # Our own process is outside the cgroup: its traffic is not counted.
        rx.sendto(b"self", ("127.0.0.1", port))
        assert counter[0] == 9
    prog.close()


def test_socket_filter_on_a_raw_fd_leaves_the_fd_to_its_owner():
    # A raw fd is the caller's: a refused attach must not close it, and detaching after the
    # caller closed it must not touch the socket that got the same fd number next.
    b = Builder()
    b.ret(0)  # drop everything
    drop = load(ProgType.SOCKET_FILTER, b)
    b = Builder()
    b.ret(XDP_PASS)
    xdp = load(ProgType.XDP, b)
    a, c = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, c:
        with pytest.raises(TypeError, match="XDP"):
            attach_socket_filter(xdp, c.fileno())
        a.send(b"one")
        assert c.recv(64) == b"one"  # the fd survived the refused attach
        fd = c.detach()
    stale = attach_socket_filter(drop, fd)
    assert stale.socket == fd
    os.close(fd)  # the owner closes it: the kernel drops the filter with the socket
    a2, c2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    if c2.fileno() != fd:  # give the new socket the old number
        os.dup2(c2.fileno(), fd)
        c2.close()
        c2 = socket.socket(fileno=fd)
    with a2, c2:
        c2.settimeout(0.2)
        with attach_socket_filter(drop, c2):
            stale.detach()  # must not remove the new socket's own filter
            a2.send(b"dropped")
            with pytest.raises(TimeoutError):
                c2.recv(64)
        a2.send(b"two")
        assert c2.recv(64) == b"two"
    drop.close()
    xdp.close()
