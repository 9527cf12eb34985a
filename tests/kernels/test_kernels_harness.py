"""The VM harness itself: exit status, streams, shares, timeout, and cleanup on signals.

Each test boots the first matrix kernel (~10 s under TCG), so they run with
the matrix (``-m kernels``), not in the default suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import vm

pytestmark = pytest.mark.kernels

KERNEL = os.environ.get("PYBPF_KERNELS", vm.KERNELS[0]).split(",")[0]
VM_PY = Path(vm.__file__).resolve()


def test_status_streams_and_shares(tmp_path):
    script = ("echo out; echo err >&2; echo guest > written; "
              "touch /usr/pybpf-vm-test 2>/dev/null && echo root-writable; "
              "touch /etc/pybpf-vm-test && echo etc-overlay; "
              "test \"$(id -u)\" = 0 && echo root; exit 7")
    rc, out, err = vm.run_in_vm(script, kernel=KERNEL, cwd=tmp_path, timeout=120)
    assert rc == 7, (out, err)
    assert out.split() == ["out", "etc-overlay", "root"], (out, err)
    assert err.strip() == "err"
    assert (tmp_path / "written").read_text() == "guest\n"  # the cwd share is read-write
    assert not Path("/etc/pybpf-vm-test").exists()  # overlay writes stay in the guest


def test_timeout_kills_the_guest(tmp_path):
    t0 = time.monotonic()
    rc, out, err = vm.run_in_vm(["sh", "-c", "echo started; sleep 120"], kernel=KERNEL,
                                cwd=tmp_path, timeout=3)
    assert rc == vm.RC_TIMEOUT, (out, err)
    assert out == "started\n"
    assert time.monotonic() - t0 < 100


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_signal_leaves_nothing_behind(tmp_path, sig):
    """Interrupt the command-line harness while the guest runs: no qemu, no temp dir stays."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    proc = subprocess.Popen([sys.executable, str(VM_PY), "--kernel", KERNEL, "--cwd", str(tmp_path),
                             "--", "sh", "-c", "echo started; sleep 300"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "started\n", proc.stderr.read() if proc.poll() is not None else ""
        qemu = [p for p in _children(proc.pid) if "qemu" in Path(f"/proc/{p}/comm").read_text()]
        assert len(qemu) == 1, qemu
        assert len(list(tmpdir.iterdir())) == 1  # the run's own temporary directory
        proc.send_signal(sig)
        rc = proc.wait(30)
        assert rc == {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[sig]
        deadline = time.monotonic() + 10
        while _alive(qemu[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(qemu[0]), f"qemu {qemu[0]} survived {sig.name}"
        if sig == signal.SIGKILL:  # no cleanup can run: the next run sweeps the directory
            saved, tempfile.tempdir = tempfile.tempdir, str(tmpdir)
            try:
                vm._sweep_stale_tmp()
            finally:
                tempfile.tempdir = saved
        assert list(tmpdir.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
