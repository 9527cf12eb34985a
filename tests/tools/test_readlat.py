"""readlat: a child blocks on pipe reads for known times; the buckets must show it."""

import json
import os
import subprocess
import sys
import time

import pytest

from toolkit import ATTACH_MODES, requires_root

pytestmark = [pytest.mark.kernel, requires_root]

# The child announces each read on `ack`, then blocks reading `data` until the test writes.
CHILD = """
import os, sys
data, ack, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for _ in range(rounds):
    os.write(ack, b"r")
    os.read(data, 1)
"""



def bucket_of(usecs: float) -> int:
    return max(1, int(usecs).bit_length())


@pytest.mark.parametrize("mode", ATTACH_MODES)
def test_blocked_reads_land_in_their_log2_buckets(tool, mode):
    delays = [0.020] * 5 + [0.0025] * 5         # 20 ms -> 16384..32767, 2.5 ms -> 2048..4095
    data_r, data_w = os.pipe()
    ack_r, ack_w = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_r), str(ack_w),
                              str(len(delays) + 1)], pass_fds=(data_r, ack_w))
    try:
        os.read(ack_r, 1)                        # the child is about to block on its first read
        t = tool("readlat", "--attach", mode, "--pid", str(child.pid))
        os.write(data_w, b"x")                   # round 0 began before attaching: not counted
        measured = []
        for delay in delays:
            os.read(ack_r, 1)
            start = time.monotonic()
            time.sleep(delay)
            os.write(data_w, b"x")
            measured.append(time.monotonic() - start)
        child.wait(10)
        assert t.stop() == 0
        out = "".join(t.stdout)
    finally:
        if child.poll() is None:
            child.kill()
        for fd in (data_r, data_w, ack_r, ack_w):
            os.close(fd)
    hist = json.loads(out)
    counts = {b["bucket"]: b["count"] for b in hist["buckets"]}
    assert hist["total"] == len(delays)         # only the child's reads (--pid), round 0 excluded
    # A loaded machine can stretch a sleep into the next bucket, rarely: most must land right.
    assert counts.get(bucket_of(20_000), 0) >= 4, (counts, measured)
    assert counts.get(bucket_of(2_500), 0) >= 3, (counts, measured)
    row = next(b for b in hist["buckets"] if b["bucket"] == bucket_of(20_000))
    assert (row["low"], row["high"]) == (16384, 32767)


def test_histogram_printed_in_bcc_layout_on_sigint(tool):
    t = tool("readlat", json_mode=False)
    r, w = os.pipe()
    os.write(w, b"abc")
    os.read(r, 3)                                # at least one read(), counted on return
    os.close(r)
    os.close(w)
    assert t.stop() == 0
    lines = "".join(t.stdout).splitlines()
    assert lines[0] == "     usecs               : count     distribution"
    assert lines[1].startswith("         0 -> 1          : ")
    assert all(line.endswith("|") and " -> " in line for line in lines[1:])
    assert sum(int(line.split(":")[1].split("|")[0]) for line in lines[1:]) >= 1
