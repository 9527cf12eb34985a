"""execsnoop against the real kernel: exec /bin/true and find it in the output."""

import subprocess

import pytest

from toolkit import ATTACH_MODES, requires_root

pytestmark = [pytest.mark.kernel, requires_root]


@pytest.mark.parametrize("mode", ATTACH_MODES)
def test_exec_of_true_is_reported_with_pid_and_new_comm(tool, mode):
    t = tool("execsnoop", "--attach", mode)
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    event = t.wait_for(lambda e: e["pid"] == child.pid)
    assert event["comm"] == "true"          # the name after exec, not the parent's
    assert event["uid"] == 0
    assert t.stop() == 0


def test_pid_filter_drops_other_processes(tool):
    # Filter on a process that never execs: the /bin/true below must not show up.
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        t = tool("execsnoop", "--pid", str(sleeper.pid))
        child = subprocess.Popen(["/bin/true"])
        child.wait()
        assert t.stop() == 0
        pids = [e["pid"] for e in t.events()]
        assert child.pid not in pids and pids == []
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("extra, header, row", [
    ([], ["PID", "COMM"], lambda pid: [str(pid), "true"]),
    (["-U"], ["PID", "UID", "COMM"], lambda pid: [str(pid), "0", "true"]),
])
def test_table_output_has_bcc_like_header(tool, extra, header, row):
    t = tool("execsnoop", *extra, json_mode=False)
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    deadline_lines = []
    for _ in range(200):
        line = t.lines.get(timeout=10)
        deadline_lines.append(line)
        if line.split()[:1] == [str(child.pid)]:
            break
    assert deadline_lines[0].split() == header
    assert deadline_lines[-1].split() == row(child.pid)
    assert t.stop() == 0
