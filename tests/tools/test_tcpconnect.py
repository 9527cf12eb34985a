"""tcpconnect: connect to sockets this test listens on, over IPv4 and IPv6."""

import os
import socket

import pytest

from toolkit import ATTACH_MODES, requires_root

pytestmark = [pytest.mark.kernel, requires_root]


def connect(family, addr):
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((addr, 0))
    listener.listen()
    client = socket.socket(family, socket.SOCK_STREAM)
    client.connect(listener.getsockname()[:2])
    ports = client.getsockname()[1], listener.getsockname()[1]
    client.close()
    listener.close()
    return ports


@pytest.mark.parametrize("mode", ATTACH_MODES)
@pytest.mark.parametrize("channel", [[], ["--ringbuf"]], ids=["perf", "ringbuf"])
def test_ipv4_and_ipv6_connects(tool, mode, channel):
    t = tool("tcpconnect", "--attach", mode, *channel)
    sport4, dport4 = connect(socket.AF_INET, "127.0.0.1")
    sport6, dport6 = connect(socket.AF_INET6, "::1")
    e4 = t.wait_for(lambda e: e["dport"] == dport4 and e["ip"] == 4)
    e6 = t.wait_for(lambda e: e["dport"] == dport6 and e["ip"] == 6)
    assert (e4["saddr"], e4["daddr"], e4["pid"]) == ("127.0.0.1", "127.0.0.1", os.getpid())
    assert (e6["saddr"], e6["daddr"], e6["pid"]) == ("::1", "::1", os.getpid())
    assert e4["comm"] == e6["comm"] == open("/proc/self/comm").read().strip()
    # The tracepoint fires before the local port is chosen; the kretprobe after.
    expected = (sport4, sport6) if mode == "kprobe" else (None, None)
    assert (e4["sport"], e6["sport"]) == expected
    assert t.stop() == 0


def test_pid_filter(tool):
    t = tool("tcpconnect", "--pid", str(os.getpid() + 1_000_000))
    connect(socket.AF_INET, "127.0.0.1")
    assert t.stop() == 0
    assert list(t.events()) == []
