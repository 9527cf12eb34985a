"""verify(): run the simulator on a program and report the kernel's verdict and reason."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction, decode, encode

from .cfg import build, check_cfg, check_subprogs, live_regs, precision_needs
from .context import prog_type_number
from .caps import PERFMON_PROG_TYPES, capabilities
from .errors import Reject
from .state import MAX_CALL_FRAMES
from .insntable import check_insntable
from .profiles import resolve as resolve_profile
from .walk import Env

BPF_F_STRICT_ALIGNMENT = 1  # prog_flags bit: check alignment as if the CPU required it

__all__ = ["verify", "VerifierResult"]


@dataclass(frozen=True)
class VerifierResult:
    """The simulator's verdict.

    ``error`` is the kernel's reason, the line its log ends with (``details``
    adds the lines the kernel prints before it, e.g. the offending access);
    ``insn`` the kernel's (slot) index of the rejected instruction;
    ``source_line`` the Python line that emitted it, when the assembler knew.
    """
    ok: bool
    error: str | None = None
    insn: int | None = None
    source_line: str | None = None
    log: str = ""
    processed_insns: int = 0
    total_states: int = 0
    errno: int = 0
    details: str | None = None
    seconds: float = field(default=0.0, compare=False)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class MapView:
    """The map facts the simulator uses, normalised from any map spec or map object."""
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    name: str = ""
    inner: "MapView | None" = None  # map-in-map: the inner map a lookup returns a pointer to

    @classmethod
    def of(cls, m) -> "MapView":
        if isinstance(m, MapView):
            return m
        try:
            inner = getattr(m, "inner", None) or getattr(m, "inner_map", None)
            return cls(int(m.type), int(getattr(m, "key_size", 0) or 0),
                       int(getattr(m, "value_size", 0) or 0), int(getattr(m, "max_entries", 0) or 0),
                       int(getattr(m, "flags", 0) or 0), str(getattr(m, "name", "") or ""),
                       cls.of(inner) if inner is not None else None)
        except (AttributeError, TypeError, ValueError) as exc:
            raise TypeError(f"map spec {m!r} lacks type/key_size/value_size/max_entries: {exc}") from None


def _instructions(program) -> list[Instruction]:
    if isinstance(program, (bytes, bytearray, memoryview)):
        return decode(program)
    labels = getattr(program, "labels", None)
    for attr in ("insns", "instructions"):
        if hasattr(program, attr):
            program = getattr(program, attr)
            break
    insns = list(program)
    if any(i.target is not None for i in insns):
        # symbolic jumps: let the encoder resolve them, keep the metadata
        resolved = decode(encode(insns, labels or {}))
        insns = [r.replace(source=i.source, map=i.map) for r, i in zip(resolved, insns)]
    return insns


def verify(program, prog_type, maps=None, *, prog_flags: int = 0,
           expected_attach_type: int | None = None, log_level: int = 0,
           kernel=None, privileged=True) -> VerifierResult:
    """Simulate the kernel verifier (Linux 6.18, privileged loader) on ``program``.

    ``kernel`` predicts another kernel's verdict: a version (``"6.1"``,
    ``"6.12"``; bundled profiles, others derived from the number), a
    ``pybpf feature probe --json`` document or the path of one, or a
    :class:`~pybpf.verifier.profiles.KernelProfile` (see that module for
    what differs between kernels).

    ``privileged``: True for a loader with CAP_BPF and CAP_PERFMON (root);
    False for CAP_BPF + CAP_NET_ADMIN without CAP_PERFMON, which turns on the
    verifier's unprivileged rules (pointer leaks, pointer comparisons,
    Spectre v1 pointer-arithmetic limits, uninitialised stack reads); or a
    :class:`~pybpf.verifier.caps.Capabilities`.

    ``program``: Instructions (or an object with ``.insns``/``.instructions``)
    or raw bytecode. Map-loading ``ld_imm64`` instructions take their map
    from ``Instruction.map``; otherwise from ``maps``, a dict keyed by the
    *logical* index of the ld_imm64 (its position among the decoded
    instructions) or a list in order of the map-loading ld_imm64s. A map
    spec is any object with ``type``, ``key_size``, ``value_size``,
    ``max_entries`` and ``flags``.
    """
    t0 = time.perf_counter()
    insns = _instructions(program)
    ptype = prog_type_number(prog_type)
    profile = resolve_profile(kernel)
    attach = expected_attach_type or 0
    prog = build(insns)
    map_order = [i for i, ins in enumerate(insns)
                 if ins.opcode == op.LD_IMM64 and ins.src in (1, 2, 5, 6)]

    views: dict[int, MapView] = {}

    def maps_for(slot: int, ins):
        v = views.get(slot)
        if v is None:
            v = views[slot] = MapView.of(_map_for(slot, ins))
        return v

    def _map_for(slot: int, ins):
        if ins.map is not None:
            return ins.map
        logical = prog.logical[slot]
        m = None
        if isinstance(maps, dict):
            m = maps.get(logical)
        elif maps is not None:
            k = map_order.index(logical)
            m = maps[k] if k < len(maps) else None
        if m is None:
            raise Reject(f"no map spec for the ld_imm64 at insn {slot} (pass maps= for bytecode)",
                         slot, errno=Reject.UNSUPPORTED)
        return m

    env = Env(prog, ptype, attach, maps_for, log_level)
    env.profile = profile
    env.caps = caps = capabilities(privileged)
    env.strict_alignment = bool(prog_flags & BPF_F_STRICT_ALIGNMENT)
    error = None
    insn = None
    errno = 0
    try:
        if not insns:
            raise Reject("Argument list too long", None, errno=7)  # bpf_prog_load(): insn_cnt == 0
        if not caps.perfmon and ptype in PERFMON_PROG_TYPES:
            raise Reject("Operation not permitted", None, errno=1)  # bpf_prog_load(), no log
        for slot, ins in enumerate(prog.insns):
            if ins is not None:
                check_insntable(ins, slot, Reject)
            if ins is not None and ins.opcode == op.LD_IMM64 and ins.src in (1, 2, 5, 6):
                maps_for(slot, ins)
        if profile is not None:
            for slot, ins in enumerate(prog.insns):
                if ins is not None:
                    profile.check_opcode(ins, slot)
        check_subprogs(prog)
        check_cfg(prog)
        live_regs(prog)
        prog.need = precision_needs(prog)
        env.run()
        _check_stack_depth(env, prog)
    except Reject as r:
        error, insn, errno = r.message, r.insn, r.errno
        if errno == Reject.UNSUPPORTED:
            raise NotImplementedError(f"pybpf verifier: {error} (insn {insn})") from None
    except RecursionError:
        error, errno = "pybpf: program too deep for the simulator", 7
    source = None
    if insn is not None and 0 <= insn < len(prog.insns):
        ins = prog.insns[insn] or prog.insns[insn - 1]
        source = getattr(ins, "source", None)
    lines = list(env.log) if error or log_level >= 2 else []  # level 1 keeps only a failing path
    if error:
        lines.append(error)
    lines.append(f"processed {env.insn_processed} insns (limit 1000000) "
                 f"max_states_per_insn {env.max_states_per_insn} "
                 f"total_states {env.total_states} peak_states {env.peak_states} mark_read 0")
    return VerifierResult(ok=error is None, error=error.splitlines()[-1] if error else None,
                          details=error, insn=insn, source_line=source,
                          log="\n".join(lines) + "\n" if log_level else "",
                          processed_insns=env.insn_processed, total_states=env.total_states,
                          errno=errno, seconds=time.perf_counter() - t0)


def _check_stack_depth(env, prog) -> None:
    """check_max_stack_depth(): a static walk of the call graph from the main program, dead code
    included, in instruction order. Frames along any chain share 512 bytes, and no chain may be
    8 frames deep (so any recursion fails here)."""
    calls: dict[int, list[int]] = {}
    starts = prog.subprogs
    for i, ins in enumerate(prog.insns):
        if ins is not None and ins.opcode == op.CALL_OP and ins.src == op.PSEUDO_CALL:
            caller = max(k for k, s in enumerate(starts) if s <= i)
            calls.setdefault(caller, []).append(starts.index(i + ins.imm + 1))
    done: set = set()

    def walk(sp: int, frame: int, depth: int) -> None:
        depth += (env.stack_depth.get(sp, 0) + 15) // 16 * 16
        if depth > 512:
            raise Reject(f"combined stack size of {frame + 1} calls is {depth}. Too large", errno=13)
        if (sp, frame, depth) in done:
            return
        done.add((sp, frame, depth))
        for c in calls.get(sp, ()):
            if frame + 1 >= MAX_CALL_FRAMES:
                raise Reject(f"the call stack of {frame + 1} frames is too deep !", errno=7)
            walk(c, frame + 1, depth)

    walk(0, 0, 0)
