"""A userspace eBPF interpreter with the kernel's semantics (``pybpf.vm``).

Runs and unit-tests programs without root or a kernel::

    from pybpf import vm
    result = vm.run(insns, prog_type="xdp", data=packet)
    assert result.retval == XDP_PASS

Execution follows the kernel's concrete semantics instruction by instruction;
memory is a set of typed regions so a bad access is a :class:`VMError` that
names the instruction, its source line and the address. Maps are Python
containers with the kernel's update/delete semantics, shared with the test.
"""

from .context import ProgType
from .errors import VMError
from .machine import VM, Compiled, RunResult, run
from .maps import (ArrayMap, HashMap, LRUHashMap, LRUPerCPUHashMap, MapType, PerCPUArrayMap,
                   PerCPUHashMap, PerfEventArray, ProgArray, QueueMap, RingBuf, StackMap, VMMap,
                   create_map)

__all__ = [
    "VM", "run", "RunResult", "Compiled", "VMError", "ProgType", "MapType", "VMMap", "create_map",
    "HashMap", "ArrayMap", "PerCPUHashMap", "PerCPUArrayMap", "LRUHashMap", "LRUPerCPUHashMap",
    "QueueMap", "StackMap", "RingBuf", "PerfEventArray", "ProgArray",
]
