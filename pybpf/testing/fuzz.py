"""The differential fuzzer engine: simulator vs kernel verifier, interpreter vs BPF_PROG_TEST_RUN.

Program ``i`` of a run is generated from ``random.Random(f"pybpf-fuzz:{seed}:{i}")``,
so any program of any run can be regenerated from the seed and its number
alone. Each program goes through whichever backends are available:

* ``sim``: :func:`pybpf.verifier.verify` (the verifier simulator);
* ``kernel``: ``BPF_PROG_LOAD`` of the program (``Program.load(..., verify=False)``);
* ``vm``: for programs the kernel accepted, of a type it can test-run, the
  interpreter's ``retval``/``data_out`` against ``BPF_PROG_TEST_RUN``'s.

A disagreement is minimized by delta debugging over instructions (keeping the
same disagreement) and written by :mod:`pybpf.testing.report`.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from pybpf.program.types import prog_type as _prog_type

from .generate import SUPPORTED, TEST_RUNNABLE, generate
from .minimize import minimize_program
from .program import GeneratedProgram

__all__ = ["Verdict", "RunOutput", "Disagreement", "Backends", "Fuzzer", "FuzzStats",
           "load_backends", "program_rng"]

# Test hook: a callable(GeneratedProgram) -> Verdict replacing the simulator.
_SIMULATOR_OVERRIDE: Callable[[GeneratedProgram], "Verdict"] | None = None


@dataclass(frozen=True)
class Verdict:
    """One verifier's answer: ``ok``, its reason line, the kernel (slot) index, the log."""

    ok: bool
    error: str | None = None
    insn: int | None = None
    log: str = ""
    crash: str | None = None  # the simulator raised instead of answering

    def describe(self) -> str:
        if self.crash:
            return f"crashed: {self.crash}"
        if self.ok:
            return "accepted"
        where = f" (insn {self.insn})" if self.insn is not None else ""
        return f"rejected: {self.error}{where}"


@dataclass(frozen=True)
class RunOutput:
    """A test run's result (kernel or interpreter), or the error that stopped it."""

    retval: int | None
    data_out: bytes | None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"error: {self.error}"
        data = self.data_out.hex() if self.data_out is not None else "-"
        return f"retval={self.retval} data_out={data}"


@dataclass
class Disagreement:
    """Two backends disagreeing on one program (and the minimized program showing it)."""

    kind: str
    index: int
    program: GeneratedProgram
    sim: Verdict | None = None
    kernel: Verdict | None = None
    kernel_run: RunOutput | None = None
    vm_run: RunOutput | None = None
    minimized: GeneratedProgram | None = None
    path: str | None = None

    @property
    def summary(self) -> str:
        parts = [self.kind]
        if self.sim is not None:
            parts.append(f"simulator {self.sim.describe()}")
        if self.kernel is not None:
            parts.append(f"kernel {self.kernel.describe()}")
        if self.vm_run is not None:
            parts.append(f"vm {self.vm_run.describe()} / kernel {self.kernel_run.describe()}")
        return "; ".join(parts)


KINDS = {
    "sim-accepts-kernel-rejects": "the simulator accepts, the kernel rejects",
    "sim-rejects-kernel-accepts": "the simulator rejects, the kernel accepts",
    "sim-crash": "the simulator raised an exception",
    "vm-retval": "interpreter and BPF_PROG_TEST_RUN return different values",
    "vm-data": "interpreter and BPF_PROG_TEST_RUN leave different packets",
    "vm-error": "the interpreter failed on a program the kernel ran",
}


# Generated programs the kernel accepts execute far fewer instructions than this; a
# minimized candidate may not (a loop whose exit was deleted), and must not hang the run.
VM_INSN_LIMIT = 1_000_000


def program_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"pybpf-fuzz:{seed}:{index}")


# ---------------------------------------------------------------------------------- backends

@dataclass
class Backends:
    """The callables the fuzzer compares; ``None`` for a backend not available."""

    sim: Callable[[GeneratedProgram], Verdict] | None = None
    kernel: Callable[[GeneratedProgram, bool], tuple[Verdict, RunOutput | None]] | None = None
    vm: Callable[[GeneratedProgram], RunOutput] | None = None
    missing: dict[str, str] = field(default_factory=dict)  # backend -> why it is unavailable

    @property
    def names(self) -> list[str]:
        return [n for n in ("sim", "kernel", "vm") if getattr(self, n) is not None]


def _simulator() -> Callable[[GeneratedProgram], Verdict]:
    from pybpf.verifier import verify  # ImportError: unavailable

    def sim(prog: GeneratedProgram, log_level: int = 0) -> Verdict | None:
        try:
            res = verify(prog.resolved(), prog.prog_type, None,
                         expected_attach_type=prog.expected_attach_type, log_level=log_level)
        except NotImplementedError:  # the simulator declines what it does not model
            return None
        except Exception as exc:  # a crash is a finding
            return Verdict(False, crash=f"{type(exc).__name__}: {exc}")
        error = getattr(res, "error", None)
        if error:
            error = error.strip().splitlines()[-1] if "\n" in error.strip() else error.strip()
        return Verdict(bool(res.ok), error, getattr(res, "insn", None), getattr(res, "log", "") or "")
    return sim


def _kernel() -> Callable[[GeneratedProgram, bool], tuple[Verdict, RunOutput | None]]:
    from pybpf.errors import VerifierError
    from pybpf.program import Program
    from pybpf.syscall.errors import BPFError

    def kernel(prog: GeneratedProgram, run: bool = False, log_level: int = 0
               ) -> tuple[Verdict, RunOutput | None]:
        try:
            loaded = Program.load(prog.spec(), verify=False, log_level=log_level)
        except VerifierError as exc:
            return Verdict(False, exc.error, exc.insn, exc.log), None
        except BPFError as exc:  # rejected before the verifier proper (no log)
            return Verdict(False, str(exc), None, getattr(exc, "log", "") or ""), None
        with loaded:
            out = None
            if run:
                try:
                    res = loaded.test_run(data_in=prog.packet)
                    out = RunOutput(res.retval, res.data_out)
                except BPFError as exc:
                    out = RunOutput(None, None, str(exc))
            return Verdict(True, None, None, loaded.log), out
    return kernel


def _vm() -> Callable[[GeneratedProgram], RunOutput]:
    from pybpf import vm as vm_mod
    if not hasattr(vm_mod, "run") or not hasattr(vm_mod, "VM"):
        raise ImportError("pybpf.vm has no run()/VM")

    def run(prog: GeneratedProgram) -> RunOutput:
        try:
            res = vm_mod.VM(insn_limit=VM_INSN_LIMIT).run(prog.resolved(), prog_type=int(prog.prog_type), data=prog.packet)
        except Exception as exc:
            return RunOutput(None, None, f"{type(exc).__name__}: {exc}")
        return RunOutput(res.retval & 0xFFFFFFFF, bytes(res.data_out) if res.data_out is not None
                         else None)
    return run


def _kernel_usable() -> str | None:
    """Why the kernel cannot be used (not root, bpf(2) refused), or None."""
    if os.geteuid() != 0:
        return "not running as root"
    try:
        from pybpf.asm.instruction import Instruction
        from pybpf.asm import opcodes as op
        from pybpf.program import Program, ProgramSpec
        with Program.load(ProgramSpec([Instruction(op.ALU64 | op.MOV, 0), Instruction(op.EXIT_OP)],
                                      "socket_filter"), verify=False):
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means no kernel backend
        return f"BPF_PROG_LOAD failed: {exc}"
    return None


def load_backends(wanted: list[str]) -> Backends:
    """Backends for the names in ``wanted`` that can be imported and used here."""
    b = Backends()
    for name in wanted:
        if name not in ("sim", "kernel", "vm"):
            raise ValueError(f"unknown backend {name!r}: use sim, kernel, vm")
    if "sim" in wanted:
        if _SIMULATOR_OVERRIDE is not None:
            b.sim = _SIMULATOR_OVERRIDE
        else:
            try:
                b.sim = _simulator()
            except ImportError as exc:
                b.missing["sim"] = f"verifier simulator not importable ({exc})"
    if "kernel" in wanted or "vm" in wanted:
        why = _kernel_usable()
        if why is None:
            b.kernel = _kernel()
        else:
            b.missing["kernel"] = why
    if "vm" in wanted:
        try:
            b.vm = _vm()
        except ImportError as exc:
            b.missing["vm"] = f"interpreter not importable ({exc})"
        if b.kernel is None and b.vm is not None:
            b.missing["vm"] = "needs the kernel's BPF_PROG_TEST_RUN to compare with"
            b.vm = None
    if "kernel" not in wanted and b.kernel is not None and b.vm is None:
        b.kernel = None
    return b


# ------------------------------------------------------------------------------------ engine

@dataclass
class FuzzStats:
    programs: int = 0
    kernel_accepts: int = 0
    kernel_rejects: int = 0
    sim_accepts: int = 0
    sim_rejects: int = 0
    sim_crashes: int = 0
    sim_declined: int = 0  # programs using features the simulator does not model
    vm_runs: int = 0
    disagreements: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def _norm(text: str | None) -> str:
    """An error message with numbers blurred, so a smaller program keeps the same 'reason'."""
    return re.sub(r"-?\d+|0x[0-9a-f]+", "#", text or "")


class Fuzzer:
    """Generate programs and compare the backends on each; see the module docstring."""

    def __init__(self, backends: Backends, *, prog_type="xdp", seed: int = 0,
                 valid: bool | None = None, max_insns: int = 64, minimize: bool = True,
                 max_tests: int = 600, max_seconds: float = 20.0):
        self.backends = backends
        self.prog_type = _prog_type(prog_type)
        if self.prog_type not in SUPPORTED:
            raise ValueError(f"program type {self.prog_type.bpftool_name} is not supported")
        self.seed = seed
        self.valid = valid
        self.max_insns = max_insns
        self.minimize = minimize
        self.max_tests = max_tests
        self.max_seconds = max_seconds
        self.stats = FuzzStats()
        self.runnable = self.prog_type in TEST_RUNNABLE and backends.vm is not None

    def program(self, index: int) -> GeneratedProgram:
        return generate(program_rng(self.seed, index), self.prog_type, valid=self.valid,
                        max_insns=self.max_insns, deterministic=self.runnable)

    def check(self, prog: GeneratedProgram, count: bool = False, *, sim: bool = True,
              vm: bool = True, kernel_ok: bool | None = None) -> dict[str, Any]:
        """Run the backends on ``prog``; the result names the disagreement (``kind``) if any.

        ``sim``/``vm`` False skip those stages, and with ``kernel_ok`` set the
        simulator only runs when the kernel's verdict is that one: the minimizer
        checks only what can still reproduce the disagreement it keeps (the
        kernel answers in about a millisecond, the simulator may take far longer).
        """
        b, s = self.backends, self.stats
        out: dict[str, Any] = {"kind": None, "sim": None, "kernel": None, "krun": None, "vrun": None}
        if b.kernel is not None:
            k, krun = b.kernel(prog, self.runnable and vm)
            out["kernel"], out["krun"] = k, krun
            if count:
                s.kernel_accepts += k.ok
                s.kernel_rejects += not k.ok
            if kernel_ok is not None and k.ok != kernel_ok:
                return out
        if b.sim is not None and sim:
            out["sim"] = sim = b.sim(prog)
            if count and sim is None:
                s.sim_declined += 1
            elif count:
                s.sim_crashes += bool(sim.crash)
                s.sim_accepts += sim.ok
                s.sim_rejects += not sim.ok and not sim.crash
        sim, k = out["sim"], out["kernel"]
        if sim is not None and sim.crash:
            out["kind"] = "sim-crash"
        elif sim is not None and k is not None and sim.ok != k.ok:
            out["kind"] = "sim-accepts-kernel-rejects" if sim.ok else "sim-rejects-kernel-accepts"
        if out["kind"] is None and out["krun"] is not None and out["krun"].error is None:
            out["vrun"] = v = b.vm(prog)
            if count:
                s.vm_runs += 1
            kr = out["krun"]
            if v.error:
                out["kind"] = "vm-error"
            elif v.retval != kr.retval:
                out["kind"] = "vm-retval"
            elif v.data_out != kr.data_out:
                out["kind"] = "vm-data"
        return out

    def _signature(self, res: dict[str, Any]) -> tuple:
        kind = res["kind"]
        if kind == "sim-accepts-kernel-rejects":
            return kind, _norm(res["kernel"].error)
        if kind == "sim-rejects-kernel-accepts":
            return kind, _norm(res["sim"].error)
        if kind == "sim-crash":
            return kind, _norm(res["sim"].crash.split(":")[0])
        return (kind,)

    def run_one(self, index: int) -> Disagreement | None:
        prog = self.program(index)
        res = self.check(prog, count=True)
        self.stats.programs += 1
        if res["kind"] is None:
            return None
        d = Disagreement(res["kind"], index, prog, res["sim"], res["kernel"], res["krun"], res["vrun"])
        self.stats.disagreements += 1
        self.stats.by_kind[d.kind] = self.stats.by_kind.get(d.kind, 0) + 1
        if self.minimize:
            sig = self._signature(res)
            is_vm = d.kind.startswith("vm-")
            kernel_ok = {"sim-accepts-kernel-rejects": False,
                         "sim-rejects-kernel-accepts": True}.get(d.kind)
            d.minimized = minimize_program(
                prog, lambda p: self._signature(
                    self.check(p, sim=not is_vm, vm=is_vm, kernel_ok=kernel_ok)) == sig,
                max_tests=self.max_tests, max_seconds=self.max_seconds)
        return d
