"""The hook between the loader and the verifier simulator (``pybpf.verifier``).

Kept to one small module so it can follow the simulator's API as it settles.
The simulator is optional: if it is missing or declines a program
(NotImplementedError), loading goes straight to the kernel.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from pybpf.errors import VerifierError

from .spec import ProgramSpec

__all__ = ["SimulatorVerdict", "simulate"]


@dataclass(frozen=True)
class SimulatorVerdict:
    ok: bool
    error: str | None
    insn: int | None
    source_line: str | None
    log: str
    raw: Any

    def error_object(self, spec: ProgramSpec) -> VerifierError:
        return VerifierError(self.error or "rejected by the verifier simulator", log=self.log,
                             insn=self.insn,
                             source_line=self.source_line or spec.source_line(self.insn),
                             origin="simulator")


def simulate(spec: ProgramSpec, *, log_level: int = 0) -> SimulatorVerdict | None:
    """Run ``pybpf.verifier.verify`` on ``spec``; None when the simulator is unavailable."""
    try:
        from pybpf.verifier import verify
    except ImportError:
        return None
    program = bytes(spec.insns) if spec.is_bytecode else spec.insns
    try:
        res = verify(program, spec.prog_type, None, prog_flags=spec.prog_flags,
                     expected_attach_type=spec.expected_attach_type, log_level=log_level,
                     func_info=getattr(spec, "func_info", None) or None)
    except NotImplementedError:
        return None
    except Exception as exc:  # a simulator bug must not stop a load the kernel may accept
        warnings.warn(f"verifier simulator failed ({type(exc).__name__}: {exc}); "
                      f"loading without it", RuntimeWarning, stacklevel=3)
        return None
    return SimulatorVerdict(bool(res.ok), getattr(res, "error", None), getattr(res, "insn", None),
                            getattr(res, "source_line", None), getattr(res, "log", "") or "", res)
