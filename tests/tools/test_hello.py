"""hello: bpf_trace_printk text read back from a private tracing instance."""

import os
import subprocess

import pytest

from toolkit import ATTACH_MODES, requires_root

pytestmark = [pytest.mark.kernel, requires_root]


@pytest.mark.parametrize("mode", ATTACH_MODES)
def test_hello_for_each_execve_and_instance_removed(tool, mode):
    t = tool("hello", "--attach", mode)
    instances = [d for d in os.listdir("/sys/kernel/tracing/instances")
                 if d.startswith(f"pybpf_{t.pid}_")]
    assert len(instances) == 1          # a private instance, not the global trace_pipe
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    # sys_enter_execve runs in the child before the exec: the pid is the child's.
    event = t.wait_for(lambda e: e["pid"] == child.pid)
    assert event["message"] == "Hello from the kernel!"
    assert t.stop() == 0
    assert not os.path.exists(f"/sys/kernel/tracing/instances/{instances[0]}")


def test_pid_filter(tool):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        t = tool("hello", "--pid", str(sleeper.pid))
        subprocess.run(["/bin/true"], check=True)
        assert t.stop() == 0
        assert list(t.events()) == []
    finally:
        sleeper.kill()
        sleeper.wait()


def test_header_and_json_time_are_bcc_hello_fields(tool):
    t = tool("hello", json_mode=False)
    subprocess.run(["/bin/true"], check=True)
    assert t.stop() == 0
    lines = "".join(t.stdout).splitlines()
    assert lines[0].split() == ["TIME(s)", "COMM", "PID", "MESSAGE"]
    assert len(lines) > 1 and float(lines[1].split()[0]) > 0

    j = tool("hello")
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    event = j.wait_for(lambda e: e["pid"] == child.pid)
    assert isinstance(event["time"], float) and event["time"] > 0
    assert j.stop() == 0


def dead_pid() -> int:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    assert not os.path.exists(f"/proc/{child.pid}")
    return child.pid


def test_instances_of_dead_runs_are_removed(tool):
    # What a hello killed with SIGKILL leaves: its instance, bpf_trace_printk enabled.
    base = "/sys/kernel/tracing/instances"
    stale = f"{base}/pybpf_{dead_pid()}_7f00dead"
    alive = f"{base}/pybpf_{os.getpid()}_7f00a11e"      # this process: alive, to be kept
    other = f"{base}/notpybpf_{dead_pid()}_1"            # not ours
    for path in (stale, alive, other):
        os.mkdir(path)
    try:
        with open(f"{stale}/events/bpf_trace/bpf_trace_printk/enable", "w") as f:
            f.write("1")
        t = tool("hello")
        assert not os.path.exists(stale)
        assert os.path.exists(alive) and os.path.exists(other)
        assert t.stop() == 0
    finally:
        for path in (stale, alive, other):
            if os.path.exists(path):
                os.rmdir(path)


def test_killed_run_is_swept_by_the_next(tool):
    first = tool("hello")
    mine = [d for d in os.listdir("/sys/kernel/tracing/instances")
            if d.startswith(f"pybpf_{first.pid}_")]
    assert len(mine) == 1
    first.proc.kill()                                    # SIGKILL: no clean-up runs
    first.finish()
    assert os.path.exists(f"/sys/kernel/tracing/instances/{mine[0]}")
    second = tool("hello")
    assert not os.path.exists(f"/sys/kernel/tracing/instances/{mine[0]}")
    assert second.stop() == 0
