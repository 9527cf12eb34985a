"""Running the same program on the kernel (BPF_PROG_TEST_RUN) and on the VM, for comparison.

Named ``vm_kernel`` (not ``kernel``) because test folders have no
``__init__.py`` and share one import namespace.
"""

from __future__ import annotations

import os

import pytest

from pybpf import vm

try:
    from pybpf.program.spec import ProgramSpec
except ImportError:  # pragma: no cover - the loader is written alongside
    ProgramSpec = None

needs_kernel = pytest.mark.skipif(os.geteuid() != 0 or ProgramSpec is None,
                                  reason="needs root and pybpf.program")


def kernel_run(insns, prog_type: str, data: bytes, ctx: bytes | None = None):
    """Load ``insns`` and test-run them once; the result has retval/data_out/ctx_out."""
    # verify=False: the kernel alone judges (the simulator is tested elsewhere)
    prog = ProgramSpec(insns if hasattr(insns, "labels") else list(insns), prog_type).load(verify=False)
    try:
        return prog.test_run(data_in=data, ctx_in=ctx)
    finally:
        prog.close()


def both(insns, prog_type: str, data: bytes, ctx: bytes | None = None, machine: vm.VM | None = None):
    """(kernel result, VM result) of one program on one packet."""
    k = kernel_run(insns, prog_type, data, ctx)
    v = (machine or vm.VM()).run(insns, prog_type=prog_type, data=data, ctx=ctx)
    return k, v
