"""Attaching with bad input: wrong program types, missing hooks, detached links.

The wrong kind of object or program type is a TypeError naming both, before any probe,
cgroup or event is touched; the kernel itself would only say EINVAL."""

from __future__ import annotations

import os

import pytest

from attachkit import load_trivial
from pybpf.link import (attach_cgroup, attach_raw_tracepoint, attach_tc, attach_tracepoint,
                        attach_uprobe, attach_uretprobe, attach_xdp)
from pybpf.maps import MapSpec
from pybpf.program import Program, ProgType
from pybpf.syscall import BPFError, ObjectNotFound
from pybpf.tracefs import list_probe_events

pytestmark = pytest.mark.kernel


def _load(ptype: ProgType, name: str) -> Program:
    return load_trivial(ptype, name, 0)


@pytest.fixture
def tp_prog():
    with _load(ProgType.TRACEPOINT, "tp_prog") as p:
        yield p


@pytest.fixture
def raw_prog():
    with _load(ProgType.RAW_TRACEPOINT, "raw_prog") as p:
        yield p


def test_wrong_program_type_names_both_types(tp_prog, raw_prog):
    with pytest.raises(TypeError, match=r"XDP on lo takes a BPF_PROG_TYPE_XDP program, "
                                        r"not BPF_PROG_TYPE_TRACEPOINT \('tp_prog'\)"):
        attach_xdp(tp_prog, "lo")
    with pytest.raises(TypeError, match=r"TC ingress on lo takes a BPF_PROG_TYPE_SCHED_CLS"):
        attach_tc(tp_prog, "lo")
    with pytest.raises(TypeError, match=r"tracepoint syscalls:sys_enter_getpid takes a "
                                        r"BPF_PROG_TYPE_TRACEPOINT program, not "
                                        r"BPF_PROG_TYPE_RAW_TRACEPOINT"):
        attach_tracepoint(raw_prog, "syscalls:sys_enter_getpid")
    with pytest.raises(TypeError, match=r"raw tracepoint sys_enter takes a "
                                        r"BPF_PROG_TYPE_RAW_TRACEPOINT"):
        attach_raw_tracepoint(tp_prog, "sys_enter")


def test_missing_hooks_are_named(tp_prog, raw_prog):
    with pytest.raises(BPFError, match=r"ENODEV.*no network interface 'nosuchif0'"):
        with _load(ProgType.XDP, "xdp_prog") as xdp:
            attach_xdp(xdp, "nosuchif0")
    with pytest.raises(ObjectNotFound, match=r"BPF_RAW_TRACEPOINT_OPEN: ENOENT.*no_such_tp"):
        attach_raw_tracepoint(raw_prog, "no_such_tp")
    with pytest.raises(Exception, match=r"tracepoint nope:nothing not found"):
        attach_tracepoint(tp_prog, "nope:nothing")


def test_detached_link_and_closed_program_are_named(raw_prog):
    link = attach_raw_tracepoint(raw_prog, "sys_enter")
    link.detach()
    with pytest.raises(ValueError, match=r"use of detached raw_tracepoint sys_enter"):
        link.id
    prog = _load(ProgType.TRACEPOINT, "closed_tp")
    prog.close()
    with pytest.raises(ValueError, match=r"use of closed program 'closed_tp'"):
        attach_tracepoint(prog, "syscalls:sys_enter_getpid")


def test_a_detached_tracepoint_link_names_itself(tp_prog):
    link = attach_tracepoint(tp_prog, "syscalls:sys_enter_getpid")
    if link.is_bpf_link:
        assert link.info().prog_id == tp_prog.id and link.id == link.info().id
    assert link.fileno() == link.fd
    link.detach()
    for attr in ("fd", "perf_fd", "id"):
        with pytest.raises(ValueError, match="use of detached tracepoint syscalls:sys_enter_getpid"):
            getattr(link, attr)


@pytest.fixture
def sf():
    with load_trivial(ProgType.SOCKET_FILTER, "sf_prog", 1) as p:
        yield p


@pytest.fixture
def amap():
    with MapSpec.hash("I", "I", 4, name="a_map").create() as m:
        yield m


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _pybpf_events() -> list:
    try:
        return [e for e in list_probe_events("uprobe") if "pybpf" in str(e)]
    except Exception:  # tracefs not mounted: the PMU path is what runs then
        return []


def test_uprobe_refuses_other_program_types(sf, amap):
    before, events = _fds(), _pybpf_events()
    with pytest.raises(TypeError, match=r"uprobe .*libc\.so\.6:malloc takes a BPF_PROG_TYPE_KPROBE "
                                        r"program, not BPF_PROG_TYPE_SOCKET_FILTER \('sf_prog'\)"):
        attach_uprobe(sf, "libc.so.6", "malloc")
    with pytest.raises(TypeError, match=r"uretprobe .* takes a BPF_PROG_TYPE_KPROBE program, "
                                        r"not BPF_PROG_TYPE_SOCKET_FILTER"):
        attach_uretprobe(sf, "libc.so.6", "malloc", legacy=True)
    # A bare fd: the type is asked of the kernel.
    with pytest.raises(TypeError, match=r"not BPF_PROG_TYPE_SOCKET_FILTER \('sf_prog'\)"):
        attach_uprobe(sf.fd, "libc.so.6", "malloc")
    with pytest.raises(TypeError, match=r"takes a BPF_PROG_TYPE_KPROBE program, not a BPF map "
                                        r"\('a_map', fd \d+\)"):
        attach_uprobe(amap, "libc.so.6", "malloc")
    assert (_fds(), _pybpf_events()) == (before, events)


def test_uprobe_still_takes_a_kprobe_program():
    with load_trivial(ProgType.KPROBE, "kp_prog", 1) as kp:
        with attach_uprobe(kp, "libc.so.6", "getpid", pid=os.getpid()) as link:
            assert link.attached
        with attach_uprobe(kp.fd, "libc.so.6", "getpid", pid=os.getpid()) as link:
            assert link.attached


def test_cgroup_refuses_other_program_types(sf, amap, cgroup_dir):
    before = _fds()
    with pytest.raises(TypeError, match=r"cgroup cgroup_inet_ingress .* takes a "
                                        r"BPF_PROG_TYPE_CGROUP_SKB program, not "
                                        r"BPF_PROG_TYPE_SOCKET_FILTER \('sf_prog'\)"):
        attach_cgroup(sf, cgroup_dir, "ingress")
    with pytest.raises(TypeError, match=r"takes a BPF_PROG_TYPE_CGROUP_SOCK_ADDR program"):
        attach_cgroup(sf.fd, cgroup_dir, "connect4", method="attach")
    with pytest.raises(TypeError, match=r"takes a BPF_PROG_TYPE_CGROUP_SKB program, not a BPF map"):
        attach_cgroup(amap, cgroup_dir, "egress")
    assert _fds() == before


def test_cgroup_still_takes_the_right_type(cgroup_dir):
    with load_trivial(ProgType.CGROUP_SKB, "skb_prog", 1) as skb:
        with attach_cgroup(skb, cgroup_dir, "egress") as link:
            assert link.attached


def test_tracepoint_refuses_a_map_and_a_bare_wrong_fd(amap):
    with pytest.raises(TypeError, match=r"tracepoint syscalls:sys_enter_getpid takes a "
                                        r"BPF_PROG_TYPE_TRACEPOINT program, not a BPF map "
                                        r"\('a_map', fd \d+\)"):
        attach_tracepoint(amap, "syscalls:sys_enter_getpid")
    with load_trivial(ProgType.RAW_TRACEPOINT, "raw_prog", 1) as raw:
        with pytest.raises(TypeError, match=r"not BPF_PROG_TYPE_RAW_TRACEPOINT \('raw_prog'\)"):
            attach_tracepoint(raw.fd, "syscalls:sys_enter_getpid")
    with open("/dev/null") as f, pytest.raises(TypeError, match="not a BPF object but /dev/null"):
        attach_tracepoint(f.fileno(), "syscalls:sys_enter_getpid")


@pytest.mark.parametrize("name", ["", "syscalls:"])
def test_raw_tracepoint_empty_name(name):
    with load_trivial(ProgType.RAW_TRACEPOINT, "raw_prog", 1) as raw:
        with pytest.raises(ValueError, match="raw tracepoint name is empty"):
            attach_raw_tracepoint(raw, name)


def test_every_typed_attach_refuses_a_map_before_touching_the_hook(amap, sf):
    # prog_fd_of is shared: XDP, TC, raw tracepoints and socket filters get the same checks.
    from pybpf.link import attach_socket_filter, attach_tc, attach_xdp
    attempts = {
        "XDP on lo": lambda p: attach_xdp(p, "lo"),
        "tc ingress": lambda p: attach_tc(p, "lo", "ingress"),
        "raw_tracepoint": lambda p: attach_raw_tracepoint(p, "sys_enter"),
        "socket filter": lambda p: attach_socket_filter(p, 0),
    }
    for hook, attach in attempts.items():
        with pytest.raises(TypeError, match=r"not a BPF map \('a_map', fd \d+\)"):
            attach(amap)
        with pytest.raises(TypeError, match=r"not BPF_PROG_TYPE_SOCKET_FILTER|not a BPF map"):
            attach(sf.fd) if hook != "socket filter" else attach(amap.fd)


def test_attach_perf_event_wants_an_owned_fd(sf):
    from pybpf.link.perf_event import attach_perf_event
    before = _fds()
    with pytest.raises(TypeError, match=r"perf_fd must be an owned pybpf.syscall.FD .*not int 9999"):
        attach_perf_event(sf, 9999, "x")
    assert _fds() == before
