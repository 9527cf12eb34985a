"""Program: a program loaded into the kernel, owned through its fd.

``Program.load(spec)`` is the one step from a spec to the kernel: run the
verifier simulator (optional), create the maps the spec only describes,
relocate map references to fds, BPF_PROG_LOAD, and on failure turn the
kernel's log into a :class:`~pybpf.errors.VerifierError` that names the
reason, the instruction and the Python line that emitted it.

The load is first tried without a log (the common success path pays
nothing); a failure is retried with a log, grown on ENOSPC to the size the
kernel reports in ``log_true_size``.
"""

from __future__ import annotations

import errno
import os

from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction, slot_offsets
from pybpf.syscall import prog_cmds
from pybpf.syscall.errors import (BPFError, BPFPermissionError, TooBig, WrongObjectKind,
                                  error_for, expect_kind)
from pybpf.syscall.fd import FD
from pybpf.syscall.map_cmds import prog_get_fd_by_id

from .spec import ProgramSpec
from .types import ProgType

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Any
    from .info import ProgramInfo
    from .run import TestRunResult

# The log parser, info reader, test runner and simulator are imported where they are
# used: loading a known-good program (what a tracing tool does at start-up) needs none.

__all__ = ["Program", "DEFAULT_LOG_SIZE", "load_kernel"]

DEFAULT_LOG_SIZE = 1 << 16
_MASK32 = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1


def _map_fd(obj: Any) -> int | None:
    fd = getattr(obj, "fd", None)
    if fd is None:
        return None
    try:
        return int(fd)
    except (TypeError, ValueError):
        return None


def _create_map(spec: Any) -> Any:
    """Create a map from a map spec (whatever ``pybpf.maps`` calls it), owned by the program."""
    create = getattr(spec, "create", None)
    if callable(create):
        return create()
    from pybpf import maps  # lazy: the maps package sits beside this one
    cls = getattr(maps, "Map", None)
    if cls is None:
        raise TypeError(f"cannot create a map from {spec!r}: pybpf.maps has no Map")
    make = getattr(cls, "create", None) or getattr(cls, "from_spec", None)
    return make(spec) if callable(make) else cls(spec)


def relocate(insns: list[Instruction]) -> tuple[list[Instruction], list[Any]]:
    """Point every map-referencing ld_imm64 at its map's fd, creating maps given as specs.

    Returns the relocated instruction list and the maps created here (the
    caller owns them). Pseudo map-value loads keep their value offset (high half).
    """
    created: dict[int, Any] = {}
    out = []
    try:
        for i, insn in enumerate(insns):
            if insn.opcode != op.LD_IMM64 or insn.map is None:
                out.append(insn)
                continue
            m = insn.map
            if getattr(m, "closed", False):
                raise ValueError(_closed_map_message(m, insns, i))
            fd = _map_fd(m)
            if fd is None:
                if id(m) not in created:
                    created[id(m)] = _create_map(m)
                fd = _map_fd(created[id(m)])
                if fd is None:
                    raise TypeError(f"insn {i}: map object {m!r} has no fd after creation")
            src = insn.src if insn.src in (op.PSEUDO_MAP_FD, op.PSEUDO_MAP_VALUE) else op.PSEUDO_MAP_FD
            imm = (insn.imm & ~_MASK32 & _MASK64) | (fd & _MASK32) if src == op.PSEUDO_MAP_VALUE else fd
            out.append(insn.replace(src=src, imm=imm))
    except BaseException:
        for m in created.values():
            _close(m)
        raise
    return out, list(created.values())


def _closed_map_message(m: Any, insns: list[Instruction], i: int) -> str:
    """Name the closed map and where the program refers to it (the kernel's slot index)."""
    what = getattr(m, "_ctx", None) or repr(m)
    where = f"insn {slot_offsets(insns)[i]}"
    if insns[i].source:
        where += f", emitted at {insns[i].source}"
    return f"the program references {what}, which is closed ({where})"


def _close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        close()


_MAX_INSNS = 1_000_000  # BPF_COMPLEXITY_LIMIT_INSNS; 4096 (BPF_MAXINSNS) without CAP_BPF


def load_kernel(spec: ProgramSpec, code: bytes, *, log_level: int = 0,
                log_size: int = DEFAULT_LOG_SIZE, fd_array: list[int] | None = None,
                ) -> prog_cmds.LoadResult:
    """BPF_PROG_LOAD ``code`` with ``spec``'s attributes; raise the explained error on failure.

    With ``log_level`` 0 the first attempt runs without a log and a failure is
    retried once at level 1 to learn the reason. ENOSPC from a full log is
    retried with the kernel's ``log_true_size`` (or 4x the buffer).
    """
    level, size = log_level, log_size
    retried_for_log = False
    while True:
        try:
            return prog_cmds.prog_load(
                code, int(spec.prog_type), license=spec.license, name=spec.name,
                log_level=level, log_size=size if level else 0, kern_version=spec.kern_version,
                prog_flags=spec.prog_flags,
                expected_attach_type=int(spec.expected_attach_type or 0),
                prog_btf_fd=spec.prog_btf_fd or 0, attach_btf_id=spec.attach_btf_id or 0,
                attach_prog_fd=spec.attach_prog_fd or 0,
                fd_array=fd_array or list(spec.fd_array) or None,
                func_info=spec.func_info, func_info_rec_size=spec.func_info_rec_size,
                line_info=spec.line_info, line_info_rec_size=spec.line_info_rec_size,
                ifindex=spec.ifindex, context=_context(spec))
        except BPFError as exc:
            if level and exc.errno == errno.ENOSPC and size < prog_cmds.MAX_LOG_SIZE:
                grown = max(getattr(exc, "log_true_size", 0) or 0, size * 4)
                size = min(grown, prog_cmds.MAX_LOG_SIZE)
                continue
            slots = len(code) // 8
            if exc.errno == errno.E2BIG and (slots == 0 or slots > _MAX_INSNS):
                # bpf_prog_load() checks insn_cnt before the verifier runs: no log to read.
                # (Within the limits, E2BIG is the verifier's "too large": its log says more.)
                raise TooBig(exc.errno, exc.command, exc.context,
                             f"program too large or empty ({slots} instructions; the "
                             f"kernel takes 1 to 4096, or up to 1M with CAP_BPF)") from None
            if not level and not retried_for_log and exc.errno not in (errno.ENOMEM, errno.EBADF):
                level, size, retried_for_log = 1, max(log_size, DEFAULT_LOG_SIZE), True
                continue
            raise explain(spec, exc) from None


def _context(spec: ProgramSpec) -> str:
    name = f" {spec.name!r}" if spec.name else ""
    return f"{spec.prog_type.bpftool_name} program{name}"


def explain(spec: ProgramSpec, exc: BPFError) -> BPFError:
    """Turn a failed BPF_PROG_LOAD into the most useful typed error."""
    text = getattr(exc, "log", "") or ""
    err = exc.errno
    if err in (errno.EPERM,) or (err == errno.EACCES and not text.strip()):
        from .privileges import permission_hint
        return BPFPermissionError(err, "BPF_PROG_LOAD", _context(spec),
                                  permission_hint(spec.prog_type))
    hint = _probe_hint(spec, exc, text)
    if text.strip():
        from pybpf.errors import VerifierError
        from .log import summarize
        summary = summarize(text)
        verr = VerifierError(summary.error or os.strerror(err), log=text, insn=summary.insn,
                             source_line=spec.source_line(summary.insn), err=err)
        verr.processed_insns = summary.processed_insns
        if hint:
            _add_hint(verr, hint)
        return verr
    if hint:
        return error_for(err, "BPF_PROG_LOAD", _context(spec), hint=hint)
    return exc


def _add_hint(exc: BPFError, hint: str) -> None:
    exc.hint = hint
    exc.strerror = f"{exc.strerror}. {hint}"


_PROBE_WORTHY = (errno.EINVAL, errno.EOPNOTSUPP, 524, errno.E2BIG)


def _probe_hint(spec: ProgramSpec, exc: BPFError, text: str) -> str | None:
    """Ask the feature probes why, when the errno or the log suggests a missing feature."""
    if exc.errno not in _PROBE_WORTHY:
        return None
    try:
        from pybpf.features import explain_load_failure
    except ImportError:
        return None
    try:
        return explain_load_failure(spec, exc)
    except Exception:  # a probe failing must never hide the original error
        return None


class Program:
    """A loaded program. Owns its fd (and the maps it created); close it or use ``with``."""

    def __init__(self, fd: FD, *, spec: ProgramSpec | None = None, maps: list[Any] | None = None,
                 log: str = ""):
        self._fd = fd
        self.spec = spec
        self.maps = list(maps or [])
        self.log = log
        self.simulator_result: Any = None
        info = prog_cmds.prog_info(fd.fd)
        self.id: int = info.id
        self.tag: str = bytes(info.tag).hex()
        self.name: str = info.name.decode(errors="replace")
        try:
            self.type: ProgType | int = ProgType(info.type)
        except ValueError:
            self.type = info.type

    # ---------------------------------------------------------------- making
    @classmethod
    def load(cls, spec: ProgramSpec, *, log_level: int = 0, log_size: int = DEFAULT_LOG_SIZE,
             verify: bool | str = True) -> "Program":
        """Load ``spec``. ``verify``: True runs the verifier simulator first and raises its
        VerifierError before any syscall; False skips it; ``"compare"`` loads anyway and
        warns (:class:`SimulatorDisagreement`) when the simulator and the kernel disagree."""
        if not isinstance(spec, ProgramSpec):
            raise TypeError(f"Program.load() needs a ProgramSpec, not {type(spec).__name__}")
        if verify not in (True, False, "compare"):
            raise ValueError(f"verify must be True, False or 'compare', not {verify!r}")
        sim = None
        if verify:
            from .simulate import simulate
            sim = simulate(spec, log_level=log_level)
        if verify is True and sim is not None and not sim.ok:
            raise sim.error_object(spec)
        if spec.is_bytecode:
            code, owned = bytes(spec.insns), []
        else:
            insns, owned = relocate(spec.instructions())
            code = spec.encode(insns)
        try:
            try:
                res = load_kernel(spec, code, log_level=log_level, log_size=log_size)
            except BPFError as exc:
                from pybpf.errors import VerifierError  # on failure only: start-up time
                if isinstance(exc, VerifierError) and verify == "compare" and sim is not None:
                    exc.simulator_result = sim
                    if sim.ok:
                        import warnings  # only here: start-up time the tools pay otherwise
                        warnings.warn(SimulatorDisagreement(
                            f"simulator accepted, kernel rejected: {exc.error}"), stacklevel=2)
                raise
            prog = cls(FD(res.fd), spec=spec, maps=owned, log=res.log)
        except BaseException:
            for m in owned:
                _close(m)
            raise
        if verify == "compare" and sim is not None:
            prog.simulator_result = sim
            if not sim.ok:
                import warnings
                warnings.warn(SimulatorDisagreement(
                    f"simulator rejected, kernel accepted: {sim.error} (insn {sim.insn})"),
                    stacklevel=2)
        return prog

    @classmethod
    def from_fd(cls, fd: int | FD, *, dup: bool = True) -> "Program":
        """Wrap an existing program fd (duplicated unless ``dup=False`` hands over ownership)."""
        owned = fd if isinstance(fd, FD) else FD(os.dup(fd) if dup else fd)
        try:
            # BPF_OBJ_GET_INFO_BY_FD answers for a map too (with the map's id): check first.
            expect_kind(owned.fd, "prog", "Program.from_fd")
            return cls(owned)
        except WrongObjectKind:
            owned.close()
            raise
        except BPFError as exc:
            owned.close()
            if exc.errno == errno.EINVAL:
                raise WrongObjectKind(f"fd {int(fd)} is not a BPF program") from None
            raise

    @classmethod
    def from_id(cls, prog_id: int) -> "Program":
        """Open the loaded program with id ``prog_id`` (ObjectNotFound if gone)."""
        return cls.from_fd(prog_get_fd_by_id(prog_id))

    @classmethod
    def from_pin(cls, path: str | os.PathLike) -> "Program":
        """Open the program pinned at ``path`` on a bpf filesystem (PinError if a map is pinned
        there)."""
        from pybpf.pin import open_pinned_fd  # pinning is rare: not on the start-up path
        fd, _ = open_pinned_fd(path, "prog")
        return cls.from_fd(fd)

    # ------------------------------------------------------------------ using
    @property
    def fd(self) -> int:
        try:
            return self._fd.fd
        except ValueError:
            raise ValueError(f"use of closed program {self.name!r} (id {self.id})") from None

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def info(self, *, xlated: bool = True) -> ProgramInfo:
        """The kernel's view: verified insns, sizes, map ids, run stats, xlated code."""
        from .info import read_info
        return read_info(self.fd, xlated=xlated)

    def test_run(self, data_in: bytes | None = None, ctx_in: bytes | None = None, *,
                 repeat: int = 1, flags: int = 0, cpu: int = 0, batch_size: int = 0,
                 data_size_out: int | None = None, ctx_size_out: int | None = None) -> TestRunResult:
        """Run the program once (or ``repeat`` times) with BPF_PROG_TEST_RUN."""
        from .run import test_run
        return test_run(self.fd, self.type, data_in=data_in, ctx_in=ctx_in, repeat=repeat,
                        flags=flags, cpu=cpu, batch_size=batch_size,
                        data_size_out=data_size_out, ctx_size_out=ctx_size_out)

    def pin(self, path: str | os.PathLike) -> None:
        """Pin at ``path`` on a bpf filesystem (the program outlives this process); a path
        elsewhere is a PinError, as :func:`pybpf.pin.pin` explains."""
        from pybpf.pin import pin  # pinning is rare: not on the start-up path
        pin(self, path)

    def close(self) -> None:
        """Close the fd and the maps this program created (the kernel frees what no one holds)."""
        self._fd.close()
        maps, self.maps = self.maps, []
        for m in maps:
            _close(m)

    def __enter__(self) -> "Program":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd.fd}"
        tname = self.type.bpftool_name if isinstance(self.type, ProgType) else self.type
        return f"<Program {tname} {self.name!r} id={self.id} tag={self.tag} {state}>"


class SimulatorDisagreement(UserWarning):
    """verify='compare': the verifier simulator and the kernel reached different verdicts."""
