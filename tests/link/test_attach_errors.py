"""Attaching with bad input: wrong program types, missing hooks, detached links."""

from __future__ import annotations

import pytest

from attachkit import load_trivial
from pybpf.link import attach_raw_tracepoint, attach_tc, attach_tracepoint, attach_xdp
from pybpf.program import Program, ProgType
from pybpf.syscall import BPFError, ObjectNotFound

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
