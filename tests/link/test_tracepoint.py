import os

import pytest

from attachkit import count_if_tgid, count_sys_enter
from pybpf.link import attach_raw_tracepoint, attach_tracepoint, link_ids
from pybpf.maps import MapSpec
from pybpf.program import Program, ProgramSpec, ProgType

pytestmark = pytest.mark.kernel


@pytest.fixture
def counter():
    with MapSpec.array("Q", 1).create() as m:
        yield m


def load(prog_type, b):
    return Program.load(ProgramSpec(b, prog_type), verify=False)


@pytest.mark.parametrize("n", [0, 1, 37])
def test_tracepoint_counts_getpid(counter, n):
    prog = load(ProgType.TRACEPOINT, count_if_tgid(counter, os.getpid()))
    with attach_tracepoint(prog, "syscalls:sys_enter_getpid") as link:
        assert link.attached
        for _ in range(n):
            os.getpid()
        assert counter[0] == n
    assert not link.attached
    os.getpid()
    assert counter[0] == n  # detached: no more counting
    prog.close()


def test_tracepoint_is_a_bpf_link_and_disappears(counter):
    prog = load(ProgType.TRACEPOINT, count_if_tgid(counter, os.getpid()))
    link = attach_tracepoint(prog, "syscalls", "sys_enter_getpid")
    assert link.is_bpf_link
    link_id = link.id
    assert link_id in set(link_ids())
    link.close()
    link.close()  # idempotent
    assert link_id not in set(link_ids())
    prog.close()


def test_tracepoint_unknown_name(counter):
    prog = load(ProgType.TRACEPOINT, count_if_tgid(counter, os.getpid()))
    with pytest.raises(Exception, match="syscalls:sys_enter_nope"):
        attach_tracepoint(prog, "syscalls:sys_enter_nope")
    with pytest.raises(ValueError, match="category:name"):
        attach_tracepoint(prog, "sys_enter_getpid")
    prog.close()


def test_raw_tracepoint_counts_getpid(counter):
    # raw sys_enter: ctx is u64 args[2] = {struct pt_regs *, long id}; filter on id == getpid.
    nr_getpid = 39
    prog = load(ProgType.RAW_TRACEPOINT, count_sys_enter(counter, nr_getpid, os.getpid()))
    with attach_raw_tracepoint(prog, "sys_enter") as link:
        for _ in range(25):
            os.getpid()
        os.getppid()
        assert counter[0] == 25
        assert link.id in set(link_ids())
    prog.close()


def test_pinned_link_opens_with_its_id_and_program(counter):
    from pybpf import pin
    from pybpf.link import link_infos

    nr_getpid = 39
    prog = load(ProgType.RAW_TRACEPOINT, count_sys_enter(counter, nr_getpid, os.getpid()))
    path = os.path.join(pin.ensure_bpffs(), f"pybpf_test_link_{os.getpid()}")
    with attach_raw_tracepoint(prog, "sys_enter") as link:
        pin.pin(link, path)
        try:
            with pin.open_pinned(path) as pinned:
                assert (pinned.kind, pinned.id) == ("link", link.id)
                assert pinned.fd != link.fd
            infos = {i.id: i.prog_id for i in link_infos()}
            assert infos[link.id] == prog.id
        finally:
            pin.unpin(path)
    prog.close()
