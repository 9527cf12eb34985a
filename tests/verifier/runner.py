"""Run corpus cases through the real kernel (BPF_PROG_LOAD) and through the simulator.

Shared by the differential tests and ``bench/verifier_agreement.py``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernel  # noqa: E402

from pybpf.asm import opcodes as op  # noqa: E402
from pybpf.asm.instruction import encode  # noqa: E402

_map_fds: dict = {}


def map_fd(m) -> int:
    """One kernel map per distinct definition, kept for the whole process."""
    fd = _map_fds.get(m)
    if fd is None:
        inner = map_fd(m.inner) if getattr(m, "inner", None) is not None else 0
        fd = kernel.create_map(m.type, m.key_size, m.value_size, m.max_entries, m.flags, inner)
        _map_fds[m] = fd
    return fd


def kernel_bytes(insns) -> bytes:
    out = []
    for ins in insns:
        if ins.opcode == op.LD_IMM64 and ins.map is not None:
            fd = map_fd(ins.map)
            ins = ins.replace(imm=(ins.imm & ~0xFFFFFFFF) | fd, map=None,
                              src=ins.src if ins.src in (op.PSEUDO_MAP_FD, op.PSEUDO_MAP_VALUE)
                              else op.PSEUDO_MAP_FD)
        out.append(ins)
    return encode(out)


@dataclass
class Outcome:
    ok: bool
    error: str | None
    seconds: float
    processed: int | None = None
    crash: str | None = None
    declined: str | None = None  # the simulator does not model this program (NotImplementedError)


def run_kernel(case) -> Outcome:
    if not getattr(case, "priv", True):
        import unpriv
        r = unpriv.load(case.insns, case.prog_type, expected_attach_type=case.attach,
                        prog_flags=case.flags)
        return Outcome(r.ok, r.error, r.seconds, r.processed)
    r = kernel.load(kernel_bytes(case.insns), case.prog_type,
                    expected_attach_type=case.attach, prog_flags=case.flags)
    return Outcome(r.ok, r.error, r.seconds, r.processed)


def run_sim(case) -> Outcome:
    from pybpf.verifier import verify
    t0 = time.perf_counter()
    try:
        kw = {} if getattr(case, "priv", True) else {"privileged": False}
        res = verify(case.insns, case.prog_type, prog_flags=case.flags,
                     expected_attach_type=case.attach, **kw)
    except NotImplementedError as exc:
        return Outcome(False, None, time.perf_counter() - t0, declined=str(exc))
    except Exception as exc:  # a crash is a finding, reported by the caller
        return Outcome(False, None, time.perf_counter() - t0, crash=f"{type(exc).__name__}: {exc}")
    last = res.error.splitlines()[-1] if res.error else None
    return Outcome(res.ok, last, time.perf_counter() - t0, res.processed_insns)
