"""Verifier simulator: the kernel's safety rules in Python, agreeing with the real verifier.

``verify(program, prog_type)`` returns the verdict, the kernel's reason and the
instruction (and Python source line) it concerns, without loading anything.
The model follows kernel/bpf/verifier.c of Linux 6.18 for a privileged loader.
"""

from .api import VerifierResult, verify
from .context import PROG_TYPES

__all__ = ["verify", "VerifierResult", "PROG_TYPES"]
