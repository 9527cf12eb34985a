"""xdpcount on one end of a veth pair between two network namespaces made for the test."""

import json
import os
import subprocess
import sys

import pytest

from toolkit import requires_root

pytestmark = [pytest.mark.kernel, requires_root]

RECEIVER = """
import json, socket, sys
socks = {}
for port in (5555, 9999):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.199.0.2", port))
    s.settimeout(0.05)
    socks[port] = s
print("ready", flush=True)
sys.stdin.readline()                       # the sender is done
got = {}
for port, s in socks.items():
    n = 0
    try:
        while True:
            s.recv(2048)
            n += 1
    except socket.timeout:
        pass
    got[port] = n
print(json.dumps(got), flush=True)
"""

SENDER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(10):
    s.sendto(b"k" * 100, ("10.199.0.2", 5555))
for _ in range(5):
    s.sendto(b"d" * 100, ("10.199.0.2", 9999))
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth_pair():
    """Namespaces A (10.199.0.1) and B (10.199.0.2) joined by a veth pair; removed after."""
    tag = f"pybpf{os.getpid() % 100000}"
    a, b = f"{tag}a", f"{tag}b"
    ip("netns", "add", a)
    ip("netns", "add", b)
    try:
        ip("link", "add", "xcA", "netns", a, "type", "veth", "peer", "name", "xcB", "netns", b)
        ip("-n", a, "addr", "add", "10.199.0.1/24", "dev", "xcA")
        ip("-n", b, "addr", "add", "10.199.0.2/24", "dev", "xcB")
        ip("-n", a, "link", "set", "xcA", "up")
        ip("-n", b, "link", "set", "xcB", "up")
        yield a, b
    finally:
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", b], capture_output=True)


def test_counts_udp_and_drops_the_port(tool, veth_pair):
    a, b = veth_pair
    t = tool("xdpcount", "--interface", "xcB", "--drop-port", "9999", "--interval", "0.2",
             prefix=("ip", "netns", "exec", b))
    link = subprocess.run(["ip", "-n", b, "link", "show", "xcB"], capture_output=True, text=True)
    assert "xdp" in link.stdout                                   # attached while running
    receiver = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-c", RECEIVER],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", SENDER], check=True)
        receiver.stdin.write("done\n")
        receiver.stdin.flush()
        received = json.loads(receiver.stdout.readline())
    finally:
        receiver.kill()
        receiver.wait()
    assert received == {"5555": 10, "9999": 0}                  # the XDP drop is real
    udp = t.wait_for(lambda e: e["protocols"].get("UDP", {}).get("packets", 0) >= 15)["protocols"]["UDP"]
    assert udp["packets"] == 15 and udp["dropped"] == 5
    assert udp["bytes"] == 15 * (14 + 20 + 8 + 100)
    assert t.stop() == 0
    final = json.loads(t.stdout[-1])
    assert final["protocols"]["UDP"] == udp
    link = subprocess.run(["ip", "-n", b, "link", "show", "xcB"], capture_output=True, text=True)
    assert "xdp" not in link.stdout                               # detached on SIGINT


def test_bad_interface_is_a_clear_error(tool):
    t = tool("xdpcount", "--interface", "no-such-if0", ready=False)
    assert t.finish() == 1
    err = "".join(t.stderr)
    assert "no-such-if0" in err and "Traceback" not in err
