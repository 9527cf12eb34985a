"""The VM agrees with the kernel's BPF_PROG_TEST_RUN on generated programs and packets.

Hypothesis draws straight-line ALU programs (every ALU opcode, 32 and 64 bit,
register and edge-case immediates, JMP/JMP32 skips, stack spills, atomics,
packet stores) and random packets; each is loaded into the kernel and run on
both. Return value and output packet must be equal. Fixed seed, bounded budget.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpf import vm

from vm_kernel import kernel_run, needs_kernel
from vm_progs import build, packets, programs

MACHINE = vm.VM()


def check(prog_type, program, packet):
    b = build(prog_type, program)
    k = kernel_run(b, prog_type, packet)
    v = MACHINE.run(b, prog_type=prog_type, data=packet)
    assert (v.retval, v.data_out) == (k.retval, k.data_out)


SETTINGS = settings(max_examples=int(__import__("os").environ.get("VM_DIFF_EXAMPLES", 60)), derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.kernel
@needs_kernel
@pytest.mark.parametrize("prog_type", ["xdp", "sched_cls", "socket_filter"])
@SETTINGS
@given(data=st.data(), packet=packets)
def test_agrees_with_kernel(prog_type, data, packet):
    check(prog_type, data.draw(programs(prog_type), label="program"), packet)
