"""Kernel feature probes: load or create the smallest object that needs a feature.

Each probe answers SUPPORTED, UNSUPPORTED or INCONCLUSIVE. Inconclusive is
not "no": EPERM under lockdown, missing capabilities, or a type whose minimal
object needs kernel BTF we do not have say nothing about support, and are
reported (and never cached on disk) as such. An EPERM to a process that has
the capabilities is marked ``refused``: the kernel (lockdown, an LSM or
seccomp policy) will not let this process use the feature, whether or not it
is built in, which is what a user comparing with bpftool's "is NOT available"
needs to hear, rather than advice to get capabilities it already has.

Rules, from how the kernel fails:
- a program type unknown to the kernel fails with EINVAL *before* the
  verifier runs (empty log); any verifier output means the type exists;
- an unknown or disallowed helper is ``unknown func bpf_x#N`` / ``invalid func``
  / ``program of this type cannot use helper`` in the log; any other
  verifier complaint (argument types) means the helper is available;
- an unknown instruction is rejected as ``unknown opcode`` / ``invalid ...``.
"""

from __future__ import annotations

import enum
import errno as E
import os
import struct
import threading
from dataclasses import dataclass

from pybpf.asm import opcodes as op
from pybpf.asm.helpers import HELPER_IDS, HELPER_NAMES
from pybpf.asm.instruction import Instruction, encode
from pybpf.maps.types import MapFlags, MapType
from pybpf.program.privileges import CAPS, lockdown_mode
from pybpf.program.types import AttachType, ProgType
from pybpf.program.types import prog_type as _as_prog_type
from pybpf.syscall import errors as _errors
from pybpf.syscall import prog_cmds
from pybpf.syscall.errors import BPFError
from pybpf.syscall.map_cmds import map_create

__all__ = ["Status", "Probe", "prog_type", "map_type", "helper", "isa", "isa_feature",
           "ISA_FEATURES", "clear_cache", "kernel_release", "PROBE_SETUP"]


class Status(str, enum.Enum):
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Probe:
    """One probe's answer. ``bool(probe)`` is True only when SUPPORTED.

    ``refused``: INCONCLUSIVE because the kernel refused a process that has
    the capabilities (lockdown, an LSM or seccomp policy): not available to
    this process, though the kernel may well have it.
    """

    subject: str
    status: Status
    detail: str = ""
    refused: bool = False

    def __bool__(self) -> bool:
        return self.status is Status.SUPPORTED

    @property
    def conclusive(self) -> bool:
        return self.status is not Status.INCONCLUSIVE

    def as_dict(self) -> dict:
        return {"status": self.status.value, **({"detail": self.detail} if self.detail else {}),
                **({"refused": True} if self.refused else {})}


_cache: dict[tuple, Probe] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _cached(key: tuple, fn) -> Probe:
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    result = fn()
    with _lock:
        _cache[key] = result
    return result


def kernel_release() -> str:
    return os.uname().release


def _kernel_version_code() -> int:
    nums = [int(x) for x in kernel_release().split("-")[0].split(".")[:3] if x.isdigit()]
    nums += [0] * (3 - len(nums))
    return (nums[0] << 16) + (nums[1] << 8) + min(nums[2], 255)


_RET0 = [Instruction(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0), Instruction(op.EXIT_OP)]

# Attributes a minimal program of each type needs to get past bpf_prog_load()'s checks.
PROBE_SETUP: dict[ProgType, dict] = {
    ProgType.CGROUP_SOCK_ADDR: {"expected_attach_type": AttachType.CGROUP_INET4_CONNECT},
    ProgType.CGROUP_SOCKOPT: {"expected_attach_type": AttachType.CGROUP_GETSOCKOPT},
    ProgType.SK_LOOKUP: {"expected_attach_type": AttachType.SK_LOOKUP},
    ProgType.NETFILTER: {"expected_attach_type": AttachType.NETFILTER},
    ProgType.TRACING: {"expected_attach_type": AttachType.TRACE_FENTRY},
    ProgType.LSM: {"expected_attach_type": AttachType.LSM_MAC},
    ProgType.SYSCALL: {"prog_flags": 1 << 4},  # BPF_F_SLEEPABLE: syscall programs must be
}


@dataclass(frozen=True)
class _Attempt:
    ok: bool
    errno: int
    log: str


def _load(insns: list[Instruction], ptype: ProgType) -> _Attempt:
    setup = PROBE_SETUP.get(ptype, {})
    try:
        res = prog_cmds.prog_load(encode(insns), int(ptype), log_level=1, log_size=4096,
                                  kern_version=_kernel_version_code(),
                                  expected_attach_type=int(setup.get("expected_attach_type", 0)),
                                  prog_flags=setup.get("prog_flags", 0),
                                  context="feature probe")
    except BPFError as exc:
        return _Attempt(False, exc.errno, getattr(exc, "log", "") or "")
    os.close(res.fd)
    return _Attempt(True, 0, res.log)


def _errname(err: int) -> str:
    return E.errorcode.get(err, "ENOTSUPP" if err == 524 else str(err))


def _bpf_caps_held() -> list[str]:
    """The capabilities bpf(2) checks that this process has (empty if /proc does not say)."""
    caps = _errors.effective_caps()
    if caps is None:
        return []
    return [name for name in ("CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_ADMIN")
            if caps >> CAPS[name] & 1]


def _is_refusal() -> bool:
    """Would an EPERM now be a refusal (capabilities held) rather than missing privileges?"""
    held = _bpf_caps_held()
    return "CAP_BPF" in held or "CAP_SYS_ADMIN" in held


def _permission(err: int) -> str:
    """Why EPERM/EACCES, in words that fit who this process is.

    With CAP_BPF or CAP_SYS_ADMIN, capabilities are not the reason: say the
    kernel refused, naming the lockdown mode when securityfs tells it.
    """
    mode = lockdown_mode()
    if not _is_refusal():
        extra = f"; kernel lockdown: {mode}" if mode and mode != "none" else ""
        return f"{_errname(err)}: not permitted: {_errors.permission_hint()}{extra}"
    held = ", ".join(_bpf_caps_held())
    if mode and mode != "none":
        return f"{_errname(err)}: refused by kernel lockdown ({mode}); this process has {held}"
    if mode == "none":
        return (f"{_errname(err)}: refused although this process has {held} and the kernel is not "
                f"locked down: an LSM or seccomp policy refuses it")
    return (f"{_errname(err)}: refused although this process has {held}: kernel lockdown, an LSM "
            f"or a seccomp policy (the lockdown mode is unknown: /sys/kernel/security/lockdown "
            f"is not readable)")


def _not_permitted(subject: str, err: int) -> Probe:
    """The answer to an EPERM/EACCES: inconclusive, and ``refused`` when capabilities are held."""
    return Probe(subject, Status.INCONCLUSIVE, _permission(err), refused=_is_refusal())


def _last_line(log: str) -> str:
    from pybpf.program.log import reason_line
    return reason_line(log) or ""


def prog_type(ptype: ProgType | int | str) -> Probe:
    """Can this kernel load programs of ``ptype``?"""
    ptype = _as_prog_type(ptype)
    return _cached(("prog", int(ptype)), lambda: _probe_prog_type(ptype))


def _probe_prog_type(ptype: ProgType) -> Probe:
    name = ptype.bpftool_name
    a = _load(_RET0, ptype)
    if a.ok:
        return Probe(name, Status.SUPPORTED)
    if a.log.strip():  # the verifier ran: the type exists, it wants more than a bare program
        return Probe(name, Status.SUPPORTED, f"loads only with an attach target: {_last_line(a.log) or _errname(a.errno)}")
    return _refused(name, a.errno, "BPF_PROG_LOAD")


def _refused(name: str, err: int, command: str) -> Probe:
    """What a failed probe says: no permission (inconclusive), not supported, or unclear."""
    if err in (E.EPERM, E.EACCES):
        return _not_permitted(name, err)
    status = Status.UNSUPPORTED if err in (E.EINVAL, E.EOPNOTSUPP, 524) else Status.INCONCLUSIVE
    return Probe(name, status, f"{_errname(err)} from {command}")


# ------------------------------------------------------------------ maps
def _btf_int() -> int:
    """Load a BTF blob with one type, ``int`` (id 1), for maps that require BTF keys/values."""
    strings = b"\0int\0"
    types = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)  # INT, signed, 32 bits
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return prog_cmds.btf_load(header + types + strings, context="feature probe BTF").fd


_PAGE = os.sysconf("SC_PAGE_SIZE")
_STORAGE = {MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE, MapType.CGRP_STORAGE}
_MAP_SETUP: dict[MapType, tuple[int, int, int, int]] = {  # key, value, max_entries, flags
    MapType.STACK_TRACE: (4, 8, 1, 0),
    MapType.LPM_TRIE: (8, 4, 1, MapFlags.NO_PREALLOC),
    MapType.CGROUP_STORAGE: (16, 4, 0, 0),
    MapType.PERCPU_CGROUP_STORAGE: (16, 4, 0, 0),
    MapType.QUEUE: (0, 4, 1, 0),
    MapType.STACK: (0, 4, 1, 0),
    MapType.BLOOM_FILTER: (0, 4, 1, 0),
    MapType.RINGBUF: (0, 0, _PAGE, 0),
    MapType.USER_RINGBUF: (0, 0, _PAGE, 0),
    MapType.ARENA: (0, 0, 1, MapFlags.MMAPABLE),
    **{t: (4, 4, 0, MapFlags.NO_PREALLOC) for t in _STORAGE},
}


def map_type(mtype: MapType | int | str) -> Probe:
    """Can this kernel create maps of ``mtype``?"""
    mtype = MapType[mtype.upper()] if isinstance(mtype, str) else MapType(mtype)
    return _cached(("map", int(mtype)), lambda: _probe_map_type(mtype))


def _probe_map_type(mtype: MapType) -> Probe:
    name = mtype.bpftool_name
    if mtype is MapType.STRUCT_OPS:
        return Probe(name, Status.INCONCLUSIVE, "needs a struct_ops type from vmlinux BTF; not probed")
    key, value, entries, flags = _MAP_SETUP.get(mtype, (4, 4, 1, 0))
    extra: dict = {}
    closers = []
    try:
        if mtype in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
            inner = map_create(MapType.ARRAY, 4, 4, 1, context="feature probe inner map")
            closers.append(inner.close)
            extra["inner_map_fd"] = inner.fd
        if mtype in _STORAGE:
            btf = _btf_int()
            closers.append(lambda: os.close(btf))
            extra.update(btf_fd=btf, btf_key_type_id=1, btf_value_type_id=1)
        fd = map_create(int(mtype), key, value, entries, int(flags), context="feature probe", **extra)
        fd.close()
        return Probe(name, Status.SUPPORTED)
    except BPFError as exc:
        return _refused(name, exc.errno, "BPF_MAP_CREATE")
    finally:
        for close in closers:
            close()


# --------------------------------------------------------------- helpers
_UNAVAILABLE = ("unknown func", "invalid func", "cannot use helper", "not supported by")
# Helpers the kernel hides under lockdown (security_locked_down(LOCKDOWN_BPF_READ_KERNEL /
# LOCKDOWN_BPF_WRITE_USER)): "unknown func" then says nothing about support.
_LOCKDOWN_HELPERS = {"probe_read", "probe_read_str", "probe_read_kernel", "probe_read_kernel_str",
                     "probe_write_user"}


def helper(ptype: ProgType | int | str, helper_id: int | str) -> Probe:
    """May programs of ``ptype`` call helper ``helper_id`` (a number or a name without bpf_)?"""
    ptype = _as_prog_type(ptype)
    hid = HELPER_IDS[helper_id.removeprefix("bpf_")] if isinstance(helper_id, str) else int(helper_id)
    return _cached(("helper", int(ptype), hid), lambda: _probe_helper(ptype, hid))


def _probe_helper(ptype: ProgType, hid: int) -> Probe:
    hname = HELPER_NAMES.get(hid, f"helper#{hid}")
    subject = f"bpf_{hname} in {ptype.bpftool_name}"
    base = prog_type(ptype)
    if not base:
        return Probe(subject, base.status if base.status is Status.INCONCLUSIVE else Status.UNSUPPORTED,
                     f"program type {ptype.bpftool_name}: {base.detail or base.status.value}",
                     refused=base.refused)
    if base.detail:  # loads only with an attach target: the verifier stops before calls
        return Probe(subject, Status.INCONCLUSIVE, "program type needs an attach target to probe helpers")
    a = _load([Instruction(op.CALL_OP, 0, 0, 0, hid), *_RET0], ptype)
    if a.ok:
        return Probe(subject, Status.SUPPORTED)
    reason = _last_line(a.log)
    if any(s in reason for s in _UNAVAILABLE):
        mode = lockdown_mode()
        if hname in _LOCKDOWN_HELPERS and mode and mode != "none":
            return Probe(subject, Status.INCONCLUSIVE, f"hidden by kernel lockdown ({mode}): {reason}")
        return Probe(subject, Status.UNSUPPORTED, reason)
    if a.log.strip():
        return Probe(subject, Status.SUPPORTED)  # rejected for its (missing) arguments only
    if a.errno in (E.EPERM, E.EACCES):
        return _not_permitted(subject, a.errno)
    return Probe(subject, Status.INCONCLUSIVE, f"{_errname(a.errno)} without a verifier log")


# ------------------------------------------------------------------- ISA
def _i(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Instruction:
    return Instruction(opcode, dst, src, off, imm)


_R0_0 = _i(op.ALU64 | op.MOV | op.K)
_EXIT = _i(op.EXIT_OP)
ISA_FEATURES: dict[str, tuple[int, list[Instruction]]] = {
    "v1 (base)": (1, [_R0_0, _EXIT]),
    "v2 jlt/jle/jslt/jsle": (2, [_R0_0, _i(op.JMP | op.JLT | op.K, 0, 0, 0, 1), _EXIT]),
    "v3 jmp32": (3, [_R0_0, _i(op.JMP32 | op.JLT | op.K, 0, 0, 0, 1), _EXIT]),
    "v3 alu32": (3, [_i(op.ALU | op.MOV | op.K), _i(op.ALU | op.ADD | op.K, 0, 0, 0, 1), _EXIT]),
    "v4 sdiv/smod": (4, [_R0_0, _i(op.ALU64 | op.DIV | op.K, 0, 0, 1, 3),
                         _i(op.ALU64 | op.MOD | op.K, 0, 0, 1, 3), _EXIT]),
    "v4 movsx": (4, [_R0_0, _i(op.ALU64 | op.MOV | op.X, 0, 0, 8), _EXIT]),
    "v4 ldsx": (4, [_i(op.ST | op.MEM | op.DW, 10, 0, -8, 0),
                    _i(op.LDX | op.MEMSX | op.B, 0, 10, -8), _R0_0, _EXIT]),
    "v4 bswap": (4, [_R0_0, _i(op.ALU64 | op.END, 0, 0, 0, 16), _EXIT]),
    "v4 gotol": (4, [_R0_0, _i(op.JMP32 | op.JA, 0, 0, 0, 0), _EXIT]),
}


def isa_feature(name: str) -> Probe:
    """Does the verifier accept the instructions of ISA feature ``name`` (see ISA_FEATURES)?"""
    return _cached(("isa", name), lambda: _probe_isa(name))


def _probe_isa(name: str) -> Probe:
    _, insns = ISA_FEATURES[name]
    a = _load(insns, ProgType.SOCKET_FILTER)
    if a.ok:
        return Probe(name, Status.SUPPORTED)
    if a.errno in (E.EPERM,) or (a.errno == E.EACCES and not a.log.strip()):
        return _not_permitted(name, a.errno)
    if a.errno == E.EINVAL:
        return Probe(name, Status.UNSUPPORTED, _last_line(a.log) or "EINVAL")
    return Probe(name, Status.INCONCLUSIVE, _last_line(a.log) or _errname(a.errno))


def isa(version: int) -> Probe:
    """Is eBPF ISA ``version`` (1-4, as LLVM's -mcpu=vN) fully accepted?"""
    if version not in (1, 2, 3, 4):
        raise ValueError(f"ISA version must be 1..4, not {version}")
    parts = [isa_feature(n) for n, (v, _) in ISA_FEATURES.items() if v <= version]
    subject = f"v{version}"
    if all(parts):
        return Probe(subject, Status.SUPPORTED)
    bad = [p for p in parts if p.status is Status.UNSUPPORTED]
    if bad:
        return Probe(subject, Status.UNSUPPORTED, "; ".join(f"{p.subject}: {p.detail}" for p in bad))
    return Probe(subject, Status.INCONCLUSIVE,
                 "; ".join(f"{p.subject}: {p.detail}" for p in parts if not p))
