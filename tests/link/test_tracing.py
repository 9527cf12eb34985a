import os

import pytest

from attachkit import count_sys_enter
from pybpf.asm.builder import Builder
from pybpf.link import attach_tp_btf, attach_tracing, link_ids, load_tracing, lockdown_mode, tp_btf_id
from pybpf.maps import MapSpec
from pybpf.program import AttachType, Program, ProgramSpec, ProgType
from pybpf.syscall import BPFPermissionError

pytestmark = pytest.mark.kernel


def _fentry_loads() -> bool:
    b = Builder()
    b.ret(0)
    try:
        load_tracing(b, "do_sys_openat2", "fentry").close()
        return True
    except BPFPermissionError:
        return False


FENTRY_OK = _fentry_loads()


@pytest.mark.skipif(FENTRY_OK, reason="fentry loads on this kernel")
@pytest.mark.parametrize("kind", ["fentry", "fexit"])
def test_fentry_refused_explains_lockdown(kind):
    b = Builder()
    b.ret(0)
    with pytest.raises(BPFPermissionError) as info:
        load_tracing(b, "do_sys_openat2", kind)
    msg = str(info.value)
    assert f"{kind} program on do_sys_openat2 refused with EPERM" in msg
    mode, source = lockdown_mode()
    assert "lockdown" in msg
    if mode and mode != "none":
        assert repr(mode) in msg and source in msg
    assert "tp_btf" in msg  # and says what to use instead


def test_fentry_unknown_function_names_it():
    b = Builder()
    b.ret(0)
    with pytest.raises(Exception, match="no_such_kernel_function"):
        load_tracing(b, "no_such_kernel_function")
    with pytest.raises(ValueError, match="fmod_ret"):
        load_tracing(b, "do_sys_openat2", "fsomething")


@pytest.mark.skipif(not FENTRY_OK, reason="fentry refused here (lockdown)")
def test_fentry_attaches():
    b = Builder()
    b.ret(0)
    prog = load_tracing(b, "do_sys_openat2")
    with attach_tracing(prog, "fentry", "do_sys_openat2") as link:
        assert link.id in set(link_ids())
    prog.close()


def test_tp_btf_counts_getpid():
    counter = MapSpec.array("Q", 1).create()
    # args[1] of btf_trace_sys_enter(void *, struct pt_regs *, long id) is the syscall number.
    b = count_sys_enter(counter, 39, os.getpid())
    prog = Program.load(ProgramSpec(b, ProgType.TRACING, expected_attach_type=AttachType.TRACE_RAW_TP,
                                    attach_btf_id=tp_btf_id("sys_enter")), verify=False)
    with attach_tp_btf(prog, "sys_enter") as link:
        for _ in range(11):
            os.getpid()
        assert link.id in set(link_ids())
    assert counter[0] == 11
    prog.close()
    counter.close()
