"""``pybpf feature probe`` wording for EPERM: a refusal to a capable process is not a capability problem.

The first tests fake who the process is (capabilities, lockdown mode) around a
fake EPERM, so they run anywhere; the last one asks the real kernel.
"""

import errno
import os

import pytest

from pybpf import features
from pybpf.features import Status, probes
from pybpf.features import cli as feature_cli
from pybpf.syscall import errors as syscall_errors

ALL_CAPS = (1 << 12) | (1 << 21) | (1 << 38) | (1 << 39)


@pytest.fixture
def eperm(monkeypatch):
    monkeypatch.setattr(probes, "_load", lambda insns, ptype: probes._Attempt(False, errno.EPERM, ""))


@pytest.mark.parametrize("mode,words", [
    ("confidentiality", "refused by kernel lockdown (confidentiality)"),
    ("integrity", "refused by kernel lockdown (integrity)"),
    ("none", "the kernel is not locked down: an LSM or seccomp policy refuses it"),
    (None, "the lockdown mode is unknown"),
])
def test_eperm_with_capabilities_is_a_refusal(eperm, monkeypatch, mode, words):
    monkeypatch.setattr(syscall_errors, "effective_caps", lambda: ALL_CAPS)
    monkeypatch.setattr(probes, "lockdown_mode", lambda: mode)
    p = features.prog_type("tracing")
    assert p.status is Status.INCONCLUSIVE and p.refused and not p
    assert words in p.detail and "needs CAP_BPF" not in p.detail
    assert "CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN" in p.detail
    assert p.as_dict()["refused"] is True
    line = feature_cli._line("eBPF program_type tracing", p.as_dict())
    assert line.startswith("eBPF program_type tracing is NOT available (EPERM: refused")
    # A helper of a refused program type is refused too (not "needs capabilities").
    h = features.helper("tracing", "ktime_get_ns")
    assert h.refused and words in h.detail


def test_eperm_without_capabilities_names_them(eperm, monkeypatch):
    monkeypatch.setattr(syscall_errors, "effective_caps", lambda: 0)
    monkeypatch.setattr(probes, "lockdown_mode", lambda: "none")
    p = features.prog_type("xdp")
    assert p.status is Status.INCONCLUSIVE and not p.refused and "refused" not in p.as_dict()
    assert "CAP_BPF" in p.detail and "refused" not in p.detail
    assert feature_cli._line("eBPF program_type xdp", p.as_dict()).startswith(
        "eBPF program_type xdp could not be probed (EPERM: not permitted: ")


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_real_refusal_is_not_blamed_on_capabilities(capsys):
    """Under lockdown fentry programs are refused with EPERM although root has every capability."""
    p = features.prog_type("tracing")
    if not p.refused:
        pytest.skip(f"this kernel does not refuse tracing programs: {p}")
    assert "needs CAP_BPF" not in p.detail and "CAP_BPF" in p.detail and "refused" in p.detail
    mode = probes.lockdown_mode()
    if mode and mode != "none":
        assert f"refused by kernel lockdown ({mode})" in p.detail
    from pybpf.cli import main
    assert main(["feature", "probe", "--no-helpers"]) == 0
    out = capsys.readouterr().out
    assert "eBPF program_type tracing is NOT available (EPERM: refused" in out
    assert "needs CAP_BPF" not in out
