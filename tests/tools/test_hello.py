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
