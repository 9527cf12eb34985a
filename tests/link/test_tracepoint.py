import os

import pytest

from bpfkit import ARRAY, RAW_TRACEPOINT, TRACEPOINT, KMap, count_if_tgid, load
from pybpf.link import _sys
from pybpf.link.raw_tracepoint import attach_raw_tracepoint
from pybpf.link.tracepoint import attach_tracepoint

pytestmark = pytest.mark.kernel


@pytest.fixture
def counter():
    m = KMap(ARRAY, 4, 8, 1)
    yield m
    m.close()


@pytest.mark.parametrize("n", [0, 1, 37])
def test_tracepoint_counts_getpid(counter, n):
    prog = load(TRACEPOINT, count_if_tgid(counter, os.getpid()))
    with attach_tracepoint(prog, "syscalls:sys_enter_getpid") as link:
        assert link.attached
        for _ in range(n):
            os.getpid()
        assert counter.lookup_u64(0) == n
    assert not link.attached
    os.getpid()
    assert counter.lookup_u64(0) == n  # detached: no more counting
    prog.close()


def test_tracepoint_is_a_bpf_link_and_disappears(counter):
    prog = load(TRACEPOINT, count_if_tgid(counter, os.getpid()))
    link = attach_tracepoint(prog, "syscalls", "sys_enter_getpid")
    assert link.is_bpf_link
    link_id = link.id
    assert link_id in set(_sys.link_ids())
    link.close()
    link.close()  # idempotent
    assert link_id not in set(_sys.link_ids())
    prog.close()


def test_tracepoint_unknown_name(counter):
    prog = load(TRACEPOINT, count_if_tgid(counter, os.getpid()))
    with pytest.raises(Exception, match="syscalls:sys_enter_nope"):
        attach_tracepoint(prog, "syscalls:sys_enter_nope")
    with pytest.raises(ValueError, match="category:name"):
        attach_tracepoint(prog, "sys_enter_getpid")
    prog.close()


def test_raw_tracepoint_counts_getpid(counter):
    # raw sys_enter: ctx is u64 args[2] = {struct pt_regs *, long id}; filter on id == getpid.
    from bpfkit import r0, r1, r6, r10
    from pybpf.asm.builder import Builder

    nr_getpid = 39
    b = Builder()
    b.ldx(r6, r1, 8, 8)  # args[1]: syscall number
    with b.if_(r6, "==", nr_getpid):
        b.call("get_current_pid_tgid")
        b.rsh(r0, 32)
        with b.if_(r0, "==", os.getpid()):
            b.st(r10, -4, 0, 4)
            b.map_lookup(counter, key_at=-4)
            with b.if_(r0, "!=", 0):
                b.mov(r1, 1)
                b.atomic_add(r0, 0, r1)
    b.ret(0)
    prog = load(RAW_TRACEPOINT, b)
    with attach_raw_tracepoint(prog, "sys_enter") as link:
        for _ in range(25):
            os.getpid()
        os.getppid()
        assert counter.lookup_u64(0) == 25
        assert link.id in set(_sys.link_ids())
    prog.close()
