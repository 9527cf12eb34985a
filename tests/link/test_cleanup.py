"""A child process attaches one of each kind, then dies by a signal, exits, or raises:
nothing may stay behind (tracefs probe events, XDP/TC programs on the interface, links)."""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from attachkit import VethPair, netns
from pybpf.link import link_ids as live_link_ids
from pybpf.link import tc_filters, xdp_prog_id
from pybpf.tracefs import probe_event_names

pytestmark = pytest.mark.kernel

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {here!r})
    from attachkit import count_all, netns
    from pybpf.link import *
    from pybpf.maps import MapSpec
    from pybpf.program import AttachType, Program, ProgramSpec, ProgType

    def load(prog_type, b, **spec):
        return Program.load(ProgramSpec(b, prog_type, **spec), verify=False)

    ns_a, ns_b, cg, ending = sys.argv[1:5]
    if ending == "nohup":  # SIGHUP ignored before anything is attached, as nohup(1) does
        import signal
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    counter = MapSpec.array("Q", 1).create()
    links = []
    tp = load(ProgType.TRACEPOINT, count_all(counter, 0))
    links.append(attach_tracepoint(tp, "syscalls:sys_enter_getpid"))
    raw = load(ProgType.RAW_TRACEPOINT, count_all(counter, 0))
    links.append(attach_raw_tracepoint(raw, "sys_enter"))
    up = load(ProgType.KPROBE, count_all(counter, 0))
    links.append(attach_uprobe(up, "libc.so.6", "getpid", legacy=True))
    links.append(attach_uprobe(up, "libc.so.6", "getppid"))
    xdp = load(ProgType.XDP, count_all(counter, 2))
    cls = load(ProgType.SCHED_CLS, count_all(counter, 0))
    with netns(ns_a):
        links.append(attach_xdp(xdp, "va", mode="generic", method="netlink"))
        links.append(attach_tc(cls, "va", "ingress", method="netlink"))
    with netns(ns_b):
        links.append(attach_xdp(xdp, "vb", method="link"))
        links.append(attach_tc(cls, "vb", "egress", method="tcx"))
    skb = load(ProgType.CGROUP_SKB, count_all(counter, 1),
               expected_attach_type=AttachType.CGROUP_INET_EGRESS)
    links.append(attach_cgroup(skb, cg, "egress", method="attach"))
    ids = [l.id for l in links if getattr(l, "is_bpf_link", False)]
    print(json.dumps({{"link_ids": ids}}), flush=True)
    if ending == "exit":
        sys.exit(0)
    if ending == "exception":
        raise RuntimeError("boom")
    time.sleep(60)
""")


@pytest.fixture
def veth():
    pair = VethPair("c")
    yield pair
    pair.close()


def cgroup_prog_count(path):
    from pybpf.syscall.prog_cmds import prog_query
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return len(prog_query(fd, 1).prog_ids)
    finally:
        os.close(fd)


def leftovers(veth, cg, child_pid, link_ids):
    found = []
    for kind in ("kprobe", "uprobe"):
        found += [e for e in probe_event_names(kind) if f"pybpf_{child_pid}_" in e]
    with netns(veth.a):
        if xdp_prog_id("va"):
            found.append("xdp on va")
        if tc_filters("va", "ingress"):
            found.append("tc filter on va")
        if "clsact" in subprocess.run(["tc", "qdisc", "show", "dev", "va"], capture_output=True,
                                      text=True).stdout:
            found.append("clsact on va")
    with netns(veth.b):
        if xdp_prog_id("vb"):
            found.append("xdp on vb")
    live = set(live_link_ids())
    found += [f"link {i}" for i in link_ids if i in live]
    if cgroup_prog_count(cg):
        found.append("cgroup egress program")
    return found


def start_child(veth, cgroup_dir, ending):
    # No core file for SIGQUIT, whatever the shell's ulimit.
    no_core = lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # noqa: E731
    return subprocess.Popen([sys.executable, "-c", CHILD.format(here=HERE), veth.a, veth.b,
                             cgroup_dir, ending], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=no_core)


@pytest.mark.parametrize("ending", ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "exit", "exception"])
def test_child_leaves_nothing_behind(veth, cgroup_dir, ending):
    child = start_child(veth, cgroup_dir, ending.lower())
    line = child.stdout.readline()
    assert line, child.stderr.read().decode()
    link_ids = json.loads(line)["link_ids"]
    assert len(link_ids) >= 4
    if ending.startswith("SIG"):
        # Everything is in place while the child lives.
        assert leftovers(veth, cgroup_dir, child.pid, link_ids)
        child.send_signal(getattr(signal, ending))
    rc = child.wait(timeout=20)
    err = child.stderr.read().decode()
    if ending in ("SIGTERM", "SIGHUP", "SIGQUIT"):
        assert rc == -getattr(signal, ending), err
    elif ending == "SIGINT":
        assert rc in (-signal.SIGINT, 1) and "KeyboardInterrupt" in err, err
    elif ending == "exception":
        assert "boom" in err
    assert leftovers(veth, cgroup_dir, child.pid, link_ids) == []


def test_an_ignored_signal_leaves_the_attachments_in_place(veth, cgroup_dir):
    # Under nohup a SIGHUP does not end the process, so it must not undo its attachments.
    child = start_child(veth, cgroup_dir, "nohup")
    line = child.stdout.readline()
    assert line, child.stderr.read().decode()
    link_ids = json.loads(line)["link_ids"]
    before = leftovers(veth, cgroup_dir, child.pid, link_ids)
    child.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert child.poll() is None
    assert leftovers(veth, cgroup_dir, child.pid, link_ids) == before
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=20) == -signal.SIGTERM
    assert leftovers(veth, cgroup_dir, child.pid, link_ids) == []


def test_sweep_removes_events_of_killed_processes(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {HERE!r})
        from attachkit import count_all
        from pybpf.link import attach_uprobe
        from pybpf.maps import MapSpec
        from pybpf.program import Program, ProgramSpec, ProgType
        prog = Program.load(ProgramSpec(count_all(MapSpec.array("Q", 1), 0), ProgType.KPROBE),
                            verify=False)
        link = attach_uprobe(prog, "libc.so.6", "getpid", legacy=True)
        print("ready", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"ready"
    child.kill()  # SIGKILL: no handler can run
    child.wait()
    mine = [e for e in probe_event_names("uprobe") if f"pybpf_{child.pid}_" in e]
    assert mine  # left behind, as SIGKILL allows nothing else
    from pybpf.link.cleanup import sweep_stale_probe_events
    removed = sweep_stale_probe_events()
    assert set(mine) <= set(removed)
    assert not [e for e in probe_event_names("uprobe") if f"pybpf_{child.pid}_" in e]
