"""errno to exception: E2BIG depends on the command; permission hints depend on who runs."""

import errno
import os
import subprocess
import sys

import pytest

from pybpf.syscall.errors import (BPFPermissionError, IndexOutOfRange, MapFull, PERMISSION_HINT,
                                  TooBig, error_for, permission_hint)


@pytest.mark.parametrize("command, cls", [
    ("BPF_MAP_UPDATE_ELEM", MapFull),
    ("BPF_MAP_UPDATE_BATCH", MapFull),
    ("BPF_PROG_LOAD", TooBig),
    ("BPF_MAP_CREATE", TooBig),
    ("BPF_BTF_LOAD", TooBig),
    ("perf_event_open", TooBig),
    ("", TooBig),
])
def test_e2big_class_depends_on_the_command(command, cls):
    err = error_for(errno.E2BIG, command, "ctx")
    assert type(err) is cls
    assert isinstance(err, TooBig)  # one class catches every E2BIG


def test_e2big_hints_name_the_limit():
    assert "empty or has more instructions" in str(error_for(errno.E2BIG, "BPF_PROG_LOAD"))
    assert "over the kernel's limit" in str(error_for(errno.E2BIG, "BPF_MAP_CREATE"))
    assert str(error_for(errno.E2BIG, "BPF_MAP_UPDATE_ELEM", "map 'm'")) == \
        "BPF_MAP_UPDATE_ELEM: E2BIG (Argument list too long): map 'm'"


def test_index_out_of_range_is_an_index_error():
    err = IndexOutOfRange(errno.E2BIG, "BPF_MAP_UPDATE_ELEM", "index 9 out of range")
    assert isinstance(err, IndexError) and isinstance(err, TooBig) and not isinstance(err, MapFull)
    assert str(err).endswith("index 9 out of range")  # not the repr() KeyError/IndexError give


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_root_is_not_told_to_run_as_root():
    for err in (errno.EPERM, errno.EACCES):
        exc = error_for(err, "BPF_OBJ_PIN", "pin")
        assert isinstance(exc, BPFPermissionError)
        assert "run as root" not in str(exc)
        assert "CAP_BPF or CAP_SYS_ADMIN" in str(exc)  # root has them here: something else refused


_AS = r"""
import ctypes, os, sys
mode = sys.argv[1]
if mode == "nobody":
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
else:  # root without capabilities
    class H(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class D(ctypes.Structure):
        _fields_ = [("e", ctypes.c_uint32), ("p", ctypes.c_uint32), ("i", ctypes.c_uint32)]
    assert ctypes.CDLL(None).capset(ctypes.byref(H(0x20080522, 0)), (D * 2)()) == 0
from pybpf.syscall.errors import permission_hint
print(permission_hint())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become someone else")
@pytest.mark.parametrize("mode, words, not_words", [
    ("nobody", ["CAP_BPF", "run as root"], []),
    ("nocaps", ["CAP_BPF", "runs as root but without those capabilities"], ["run as root,"]),
])
def test_hint_for_other_identities(mode, words, not_words):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", _AS, mode], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=root), cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    for w in words:
        assert w in out.stdout
    for w in not_words:
        assert w not in out.stdout
    if mode == "nobody":
        assert out.stdout.strip() == PERMISSION_HINT
    else:  # differs from what root with capabilities is told
        assert out.stdout.strip() != permission_hint()
