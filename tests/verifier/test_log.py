"""The simulator's log against the kernel's, line format by line format.

States need not match everywhere (pruning and precision differ in places), but
each instruction line (``12: (79) r7 = *(u64 *)(r0 +0)``), each register
state (``R1=ctx()``-style), and the summary line must have the kernel's syntax.
"""

import re

import pytest

import kernel
from all import hand_cases
from runner import kernel_bytes

from pybpf.verifier import verify

INSN = re.compile(r"^(\d+): \(([0-9a-f]{2})\) (.*?)\s*(?:; (.*))?$")
SUMMARY = re.compile(r"^processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states \d+ "
                     r"peak_states \d+ mark_read \d+$")
MAP_ADDR = re.compile(r"= (0x[0-9a-f]{16}|map\[fd:\d+\])$")


def _insn_lines(log: str) -> set:
    out = set()
    for ln in log.splitlines():
        m = INSN.match(ln)
        if m:
            out.add(MAP_ADDR.sub("= <map>", f"{m.group(1)}: ({m.group(2)}) {m.group(3)}"))
    return out


def _sample():
    return [c for c in hand_cases() if c.priv and c.expect is None][::3]


def test_log_levels_have_kernel_shape():
    from dsl import ARRAY, add, exit_, jmp, ldx, lookup, mov, r0, r1, r2, r6, r7
    prog = [mov(r6, r1), *lookup(ARRAY), ldx(4, r2, r6, 0), jmp("jgt", r2, 40, 2), add(r0, r2),
            ldx(8, r7, r0, 0), mov(r0, 0), exit_()]
    lvl2 = verify(prog, "socket_filter", log_level=2).log.splitlines()
    assert lvl2[0] == "0: R1=ctx() R10=fp0"
    assert lvl2[1] == "0: (bf) r6 = r1                       ; R1=ctx() R6=ctx()"
    assert any(ln.startswith("7: (61) r2 = *(u32 *)(r6 +0)          ; R2=scalar(smin=0,smax=umax=0xffffffff,"
                             "var_off=(0x0; 0xffffffff)) R6=ctx()") for ln in lvl2)
    assert SUMMARY.match(lvl2[-1])
    # level 1 keeps nothing but the summary for an accepted program ...
    assert verify(prog, "socket_filter", log_level=1).log.splitlines() == lvl2[-1:]
    # ... and the failing path for a rejected one
    bad = prog[:-2] + [mov(r0, 0), ldx(8, r7, r0, 0), mov(r0, 0), exit_()]
    lvl1 = verify(bad, "socket_filter", log_level=1).log.splitlines()
    assert lvl1[-2] == "R0 invalid mem access 'scalar'" and lvl1[-3].startswith("12: (79) r7 = *(u64 *)(r0 +0)")


@pytest.mark.kernel
@pytest.mark.skipif(not kernel.available(), reason="needs root and bpf(2)")
def test_log_line_format_agreement_with_kernel():
    """Share of the kernel's level-2 instruction lines the simulator prints identically."""
    same = total = summaries = 0
    cases = _sample()
    for c in cases:
        k = kernel.load(kernel_bytes(c.insns), c.prog_type, expected_attach_type=c.attach, log_level=2,
                        log_size=1 << 20)
        s = verify(c.insns, c.prog_type, expected_attach_type=c.attach, log_level=2)
        kl, sl = _insn_lines(k.log), _insn_lines(s.log)
        total += len(kl)
        same += len(kl & sl)
        summaries += bool(SUMMARY.match(s.log.splitlines()[-1]))
    assert summaries == len(cases)
    assert total > 200 and same / total >= 0.9, f"{same}/{total} instruction lines agree"
