"""What every tool shares: the entry points, the not-root message, clean exit on signals."""

import os
import signal
import subprocess
import sys
import time

import pytest

from toolkit import requires_root

TOOLS = ["hello", "execsnoop", "opensnoop", "tcpconnect", "readlat"]


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("name", TOOLS)
def test_without_capabilities_prints_a_clear_message(name):
    # uid 0 but an empty bounding set: no CAP_BPF, CAP_PERFMON or CAP_SYS_ADMIN.
    res = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable,
                          "-m", f"pybpf.tools.{name}"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert f"{name}: must be run as root" in res.stderr
    assert "Traceback" not in res.stderr


def test_xdpcount_without_capabilities_prints_a_clear_message():
    if not os.path.exists("/usr/bin/setpriv") or os.geteuid() != 0:
        pytest.skip("needs setpriv and root to drop capabilities")
    res = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable,
                          "-m", "pybpf.tools.xdpcount", "-i", "lo"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "xdpcount: must be run as root" in res.stderr


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("name", TOOLS)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_detaches_everything(tool, name, sig):
    from pybpf.link import link_ids

    t = tool(name)
    links, progs = t.bpf_objects()
    assert links, "the tool holds no bpf_link while tracing"
    assert t.stop(sig) == 0
    assert "Traceback" not in "".join(t.stderr)
    # The links the tool held are gone from the kernel (no id reuse: ids only grow).
    assert links.isdisjoint(set(link_ids()))
    if name == "hello":
        assert not [d for d in os.listdir("/sys/kernel/tracing/instances")
                    if d.startswith(f"pybpf_{t.pid}_")]


@pytest.mark.kernel
@requires_root
def test_duration_ends_the_tool(tool):
    start = time.monotonic()
    t = tool("execsnoop", "--duration", "0.5")
    assert t.finish(timeout=20) == 0
    assert time.monotonic() - start < 20


@pytest.mark.kernel
@requires_root
def test_pybpf_tool_entry_point(tool):
    t = tool("execsnoop", module="pybpf")
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    assert t.wait_for(lambda e: e["pid"] == child.pid)["comm"] == "true"
    assert t.stop() == 0


def test_pybpf_tool_help_lists_the_tools():
    res = subprocess.run([sys.executable, "-m", "pybpf", "tool", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0
    for name in TOOLS + ["xdpcount"]:
        assert name in res.stdout


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("name", ["hello", "execsnoop", "readlat", "tcpconnect"])
def test_kprobe_request_on_a_kernel_without_kprobes_is_a_clear_error(tool, name):
    from pybpf.link.kprobe import kprobes_supported
    if kprobes_supported():
        pytest.skip("this kernel has kprobes")
    t = tool(name, "--attach", "kprobe", ready=False)
    assert t.finish() == 1
    err = "".join(t.stderr)
    assert err.startswith(f"{name}: --attach kprobe: kprobes are not available on this kernel")
    assert err.rstrip().endswith("use --attach tracepoint (or --attach auto, which picks the "
                                 "tracepoints here)")
    assert "attach_tracepoint(" not in err and "Traceback" not in err
    assert err.count("\n") == 1
