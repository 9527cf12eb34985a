"""Hypothesis strategies for eBPF instructions and whole programs (public API).

    from hypothesis import given
    from pybpf.testing.strategies import programs

    @given(programs(prog_type="xdp", valid=True))
    def test_my_loader(prog):
        with prog.spec().load(verify=False) as loaded:
            assert loaded.test_run(data_in=prog.packet).retval in range(4)

:func:`programs` draws from the same generator as ``pybpf fuzz``
(:mod:`pybpf.testing.generate`, driven by a hypothesis-controlled
``random.Random``), so what these strategies produce is what the fuzzer
explores. Hypothesis is a test dependency; nothing outside
``pybpf.testing`` imports this module.

Measured acceptance by the Linux 6.18 verifier (200 programs per type,
fixed seed, ``max_insns=64``; see ``docs/strategies.md`` and
``tests/testing/test_acceptance.py``): ``valid=True`` 100% accepted for
socket_filter, xdp, sched_cls, kprobe, tracepoint, raw_tracepoint and
cgroup_skb; ``valid=False`` 0% accepted (every near miss rejected).
"""

from __future__ import annotations

from hypothesis import strategies as st

from pybpf.asm.instruction import Instruction

from .generate import MUTATIONS, SUPPORTED, generate, mutations_for, random_instruction
from .program import GeneratedProgram

__all__ = ["instructions", "programs", "packets", "GeneratedProgram", "MUTATIONS", "SUPPORTED",
           "mutations_for"]


def instructions() -> st.SearchStrategy[Instruction]:
    """Any single instruction with a valid encoding, from all eight classes.

    ALU/ALU64 (every operation, register and immediate forms, byte swaps,
    movsx, sdiv/smod), JMP/JMP32 (conditions, ``goto``/``gotol``, helper
    calls, ``exit``), ``ld_imm64``, legacy ``ld_abs``/``ld_ind``, loads
    (including sign-extending), stores and atomics. Each passes
    :func:`pybpf.asm.disasm.validate` and encodes; jump offsets are raw, so a
    single jump is not a valid *program*.
    """
    return st.randoms(use_true_random=False).map(random_instruction)


def programs(prog_type="xdp", valid: bool | None = True, max_insns: int = 64, *,
             deterministic: bool = False, mutation: str | None = None
             ) -> st.SearchStrategy[GeneratedProgram]:
    """Structured programs of ``prog_type`` as :class:`GeneratedProgram` objects.

    ``valid=True``: initialized registers, stack written before it is read,
    map lookups null-checked and accessed in bounds (constant and masked
    variable offsets), packet reads/writes behind ``data + N <= data_end``
    checks (XDP, sched_cls, cgroup_skb), ``ld_abs``/``ld_ind`` (socket
    filters, sched_cls), bounded loops, atomics, helper calls with well-typed
    arguments, and a return value the type allows. Mixed in at modest rates
    (:mod:`pybpf.testing.shapes`): the shapes a verifier audit needed --
    linked scalar copies offset by a constant, spill/bound/fill of scalars
    (and of 32-bit halves) used as map value offsets, pointer equality of two
    lookups before a NULL check, flag-test chains that only pruning keeps
    linear, and w-register range checks across the s32 sign boundary.
    Measured: 100% accepted.

    ``valid=False``: the same, plus exactly one near miss from
    :data:`MUTATIONS` (``mutation`` picks one): off-by-one map value or
    packet access, missing null check, missing bounds check, unbounded
    variable offset, uninitialized register, unbounded loop, stack access out
    of bounds or misaligned, wrong helper argument, invalid context access,
    out-of-range return value (cgroup_skb), division by constant zero,
    oversized shift, write to r10. Measured: 0% accepted.
    ``valid=None`` mixes both evenly.

    Each program carries ``insns`` (symbolic jumps, with ``labels``),
    ``maps`` (the :class:`~pybpf.maps.MapSpec` objects its ``ld_imm64``
    instructions reference), ``prog_type``, ``mutation`` and a ``packet`` to
    test-run it with; ``prog.spec()`` is a loadable ProgramSpec.
    ``deterministic=True`` leaves out time, random-number, CPU and pid
    helpers, so a kernel test run and the interpreter must agree.
    Supported types: socket_filter, xdp, sched_cls, kprobe, tracepoint,
    raw_tracepoint, cgroup_skb.
    """
    if max_insns < 16:
        raise ValueError(f"max_insns must be at least 16, not {max_insns}")
    generate(__import__("random").Random(0), prog_type, valid=valid, max_insns=max_insns,
             mutation=mutation)  # fail now, not inside the test, on a bad prog_type/mutation
    return st.randoms(use_true_random=False).map(
        lambda rng: generate(rng, prog_type, valid=valid, max_insns=max_insns,
                             deterministic=deterministic, mutation=mutation))


def packets(min_size: int = 14, max_size: int = 128) -> st.SearchStrategy[bytes]:
    """Ethernet frames (IPv4, IPv6, ARP or a random EtherType) that BPF_PROG_TEST_RUN takes."""
    from .generate import _MIN_FRAME

    max_size = max(max_size, 54)
    ethertypes = st.sampled_from([b"\x08\x00", b"\x86\xdd", b"\x08\x06"]) | st.binary(min_size=2, max_size=2)

    def frame(mac: bytes, et: bytes, rest: bytes) -> bytes:
        # BPF_PROG_TEST_RUN refuses an IP frame shorter than its IP header
        need = max(0, _MIN_FRAME.get(et, 14) - 14 - len(rest))
        return mac + et + rest + bytes(need)
    return st.builds(frame, st.binary(min_size=12, max_size=12), ethertypes,
                     st.binary(min_size=max(0, min_size - 14), max_size=max(0, max_size - 54)))
