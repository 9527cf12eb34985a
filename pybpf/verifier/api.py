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
BPF_F_ANY_ALIGNMENT = 2  # prog_flags bit: never check alignment; wins over STRICT
BPF_F_SLEEPABLE = 16
# bpf_prog_load() refuses other prog_flags bits with EINVAL (BPF_F_TOKEN_FD, 1 << 16, needs a
# token fd, which the simulator never has)
KNOWN_PROG_FLAGS = 0xFF
BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000  # bpf_prog_load(): longer programs get E2BIG, no log
SYSCALL_PROG_TYPE = 31
TAIL_CALL_HELPER = 12

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
           kernel=None, privileged=True, func_info: bytes | None = None) -> VerifierResult:
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

    ``func_info``: the program's BTF func_info records, if it is loaded with
    BTF. The simulator does not model the BTF checks; it only needs to know
    whether they replace the no-BTF rules (LD_ABS and tail calls in subprograms).
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
    env.strict_alignment = bool(prog_flags & BPF_F_STRICT_ALIGNMENT) and not prog_flags & BPF_F_ANY_ALIGNMENT
    error = None
    insn = None
    errno = 0
    try:
        # bpf_prog_load(), before the verifier and without a log: flags, size, capabilities
        if prog_flags & ~KNOWN_PROG_FLAGS:
            raise Reject("Invalid argument", None, errno=22)
        if not insns or len(prog) > BPF_COMPLEXITY_LIMIT_INSNS:
            raise Reject("Argument list too long", None, errno=7)
        if not caps.perfmon and ptype in PERFMON_PROG_TYPES:
            raise Reject("Operation not permitted", None, errno=1)
        if not _attach_ok(ptype, attach):
            raise Reject("Invalid argument", None, errno=22)  # bpf_prog_load_check_attach()
        # bpf_check(): check_subprogs(), check_btf_info(), resolve_pseudo_ldimm64(), check_cfg()
        check_subprogs(prog)
        if not func_info:
            _check_abnormal_return(prog)
        elif _has_abnormal_subprog(prog):
            raise Reject("LD_ABS/tail_call in a BTF subprogram (checked against its BTF return type) "
                         "is not modelled", None, errno=Reject.UNSUPPORTED)
        for slot, ins in enumerate(prog.insns):
            if ins is not None:
                check_insntable(ins, slot, Reject)
            if ins is not None and ins.opcode == op.LD_IMM64 and ins.src in (1, 2, 5, 6):
                maps_for(slot, ins)
        if profile is not None:
            for slot, ins in enumerate(prog.insns):
                if ins is not None:
                    profile.check_opcode(ins, slot)
        check_cfg(prog)
        _check_sleepable(ptype, attach, prog_flags)
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


# bpf_prog_load_check_attach(): program types that need one particular expected_attach_type
_REQUIRED_ATTACH = {32: 45}  # netfilter: BPF_NETFILTER
_UNAVAILABLE_TYPES = frozenset({20})  # lirc_mode2: not built into the 6.18 kernel pybpf targets


def _attach_ok(ptype: int, attach: int) -> bool:
    if ptype in _UNAVAILABLE_TYPES:
        return False
    need = _REQUIRED_ATTACH.get(ptype)
    return need is None or attach == need


def _subprog_flags(prog):
    """(subprog index, 'LD_ABS' | 'tail_call') in instruction order, as check_subprogs() marks them."""
    starts = prog.subprogs
    cur = 0
    for i, ins in enumerate(prog.insns):
        while cur + 1 < len(starts) and starts[cur + 1] <= i:
            cur += 1
        if ins is None:
            continue
        if ins.opcode == op.CALL_OP and ins.src == 0 and ins.imm == TAIL_CALL_HELPER:
            yield cur, "tail_call"
        elif ins.opcode & 7 == op.LD and ins.opcode & 0xE0 in (op.ABS, op.IND):
            yield cur, "LD_ABS"


def _has_abnormal_subprog(prog) -> bool:
    return any(sp > 0 for sp, _ in _subprog_flags(prog))


def _check_abnormal_return(prog) -> None:
    """check_abnormal_return(): without BTF, no subprogram may use LD_ABS or tail calls (the
    kernel could not check that it returns an int); LD_ABS is reported first per subprogram."""
    found: dict[int, set] = {}
    for sp, what in _subprog_flags(prog):
        found.setdefault(sp, set()).add(what)
    for sp in sorted(found):
        if sp == 0:
            continue
        what = "LD_ABS" if "LD_ABS" in found[sp] else "tail_call"
        raise Reject(f"{what} is not allowed in subprogs without BTF", None, errno=22)


def _check_sleepable(ptype: int, attach: int, prog_flags: int) -> None:
    """check_attach_btf_id(): syscall programs must be sleepable, few others may be."""
    sleepable = bool(prog_flags & BPF_F_SLEEPABLE)
    if ptype == SYSCALL_PROG_TYPE:
        if not sleepable:
            raise Reject("Syscall programs can only be sleepable", None, errno=22)
        return
    # can_be_sleepable(): tracing fentry/fexit/fmod_ret/iter, lsm, kprobe (uprobes), struct_ops
    if sleepable and not (ptype == 26 and attach in (24, 25, 26, 28) or ptype in (2, 27, 29)):
        raise Reject("Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs "
                     "can be sleepable", None, errno=22)


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
