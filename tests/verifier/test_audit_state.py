"""Pruning cost against the kernel: precision decides how many insns a walk processes.

The kernel makes a scalar precise only when its exact value decided something
(a branch outcome, a pointer offset, a helper size); a simulator that treats
every compared scalar as precise prunes nothing in these programs and walks
2**n paths. The processed-insn counts must match the kernel's.
"""

import pytest

import kernel
from cases_audit_state import CASES
from runner import run_kernel, run_sim

PROCESSED = [c for c in CASES if "processed" in c.tags]
needs_kernel = pytest.mark.skipif(not kernel.available(), reason="needs root and bpf(2)")


@pytest.mark.parametrize("case", PROCESSED, ids=[c.name for c in PROCESSED])
def test_imprecise_branches_prune(case):
    sim = run_sim(case)
    assert sim.ok, sim.error
    # without pruning these walks are 2**14 .. 2**19 paths long
    assert sim.processed is not None and sim.processed < 10 * len(case.insns)


@pytest.mark.kernel
@needs_kernel
@pytest.mark.parametrize("case", PROCESSED, ids=[c.name for c in PROCESSED])
def test_processed_insns_match_kernel(case):
    k = run_kernel(case)
    sim = run_sim(case)
    assert k.ok and sim.ok, (k.error, sim.error)
    assert sim.processed == k.processed
