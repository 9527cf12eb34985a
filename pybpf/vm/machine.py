"""The interpreter: compiled programs, the run loop and its configuration.

A :class:`VM` holds what outlives one run: the maps it created from specs,
the fake clock, the seeded random generator, the identity helpers report
(pid, uid, comm, CPU), the memory ``probe_read`` may read, and captured
``trace_printk`` lines. :meth:`VM.run` mirrors ``Program.test_run``: it
takes ``data``/``ctx`` like ``data_in``/``ctx_in`` and returns ``retval``,
``data_out``, ``ctx_out`` and ``duration``, so one test can run a program on
both the kernel and the VM and compare.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..asm import opcodes as op
from ..asm.errors import AssemblerError
from ..asm.instruction import Instruction, decode, encode
from . import codegen, context, helpers as helper_impl
from .errors import VMError
from .maps import VMMap, create_map
from .memory import Memory, fault

__all__ = ["VM", "RunResult", "Compiled", "run"]

MAX_CALL_FRAMES = 8
MAX_TAIL_CALL_CNT = 33
STACK_SIZE = 512
DEFAULT_INSN_LIMIT = 50_000_000


@dataclass(frozen=True)
class RunResult:
    """What :meth:`VM.run` returns; the first four fields match ``Program.test_run``."""
    retval: int  # r0 truncated to 32 bits, like BPF_PROG_TEST_RUN's retval
    data_out: bytes
    ctx_out: bytes | None
    duration: int  # average ns per run, measured
    r0: int = 0  # the full 64-bit r0
    insns: int = 0  # instructions executed (last run)
    trace: tuple[str, ...] = field(default=())  # trace_printk lines of this call


class _Exit(Exception):
    pass


class _TailCall(Exception):
    def __init__(self, target: "Compiled"):
        self.target = target


class Compiled:
    """A program translated for one VM (its map references resolved)."""

    def __init__(self, insns: list[Instruction], blocks: list, lens: list[int], prog_type: int):
        self.insns = insns
        self.blocks = blocks
        self.lens = lens
        self.prog_type = prog_type
        self.slots = codegen.slot_offsets(insns) if insns else []

    def locate(self, err: VMError, pc: int) -> VMError:
        i = err.index if err.index is not None else pc
        if 0 <= i < len(self.insns):
            err.locate(i, self.slots[i], self.insns[i].source)
        return err


_U = {n: struct.Struct("<" + c).unpack_from for n, c in codegen._CODE.items()}
_P = {n: struct.Struct("<" + c).pack_into for n, c in codegen._CODE.items()}


class VM:
    """An eBPF interpreter with the kernel's semantics and configurable surroundings.

    ``cpus``/``cpu``: the per-CPU map width and the CPU programs run on.
    ``clock_ns``/``clock_step_ns``: what ``bpf_ktime_get_ns`` returns, advancing by the
    step after each call. ``seed``: for ``bpf_get_prandom_u32``. ``probe_memory``:
    ``{address: bytes}`` that ``bpf_probe_read*`` can read. ``insn_limit``: a run
    stops with a :class:`VMError` after this many instructions (no hangs).
    """

    def __init__(self, *, cpus: int = 1, cpu: int = 0, seed: int = 0, clock_ns: int = 1_000_000_000,
                 clock_step_ns: int = 0, boot_offset_ns: int = 0, pid: int = 1000, tgid: int = 1000,
                 uid: int = 0, gid: int = 0, comm: bytes = b"python", probe_memory=None,
                 insn_limit: int = DEFAULT_INSN_LIMIT):
        if not 0 <= cpu < cpus:
            raise ValueError(f"cpu {cpu} out of range for {cpus} CPUs")
        self.cpus, self.cpu = cpus, cpu
        self.random = random.Random(seed)
        self.clock_ns, self.clock_step_ns, self.boot_offset_ns = clock_ns, clock_step_ns, boot_offset_ns
        self.pid, self.tgid, self.uid, self.gid = pid, tgid, uid, gid
        self.comm = comm.encode() if isinstance(comm, str) else bytes(comm)
        self.probe_memory: dict[int, bytes] = dict(probe_memory or {})
        self.insn_limit = insn_limit
        self.trace: list[str] = []
        self.mem = Memory()
        self.reservations: dict[int, tuple] = {}
        self._maps_by_spec: dict[int, tuple[object, VMMap]] = {}
        self._map_addr: dict[int, VMMap] = {}
        self._addr_of_map: dict[int, int] = {}
        self._cache: dict[tuple, tuple] = {}
        self._frames: list = []
        self._stacks: list[int] = []
        self._tail_calls = 0
        self._setup: context.Setup | None = None
        self._maps_arg = None
        self._helpers = {hid: (lambda r, fn=fn: fn(self, r))
                         for hid, fn in helper_impl.build_table().items()}
        self._ns = {
            "R": self.mem.regions, "M64": codegen.M64, "M32": codegen.M32,
            "sdiv": codegen.sdiv, "smod": codegen.smod, "bswap": codegen.bswap,
            "sext": codegen.sext, "FAULT": self._fault, "CALL": self._call,
            "ENTER": self._enter, "LEAVE": self._leave, "TAIL": self._tail,
            "LDABS": self._ldabs, "UNSUPPORTED": self._unsupported,
            **{f"U{n}": f for n, f in _U.items()}, **{f"P{n}": f for n, f in _P.items()},
        }

    # -- maps ---------------------------------------------------------------------------
    def map(self, spec) -> VMMap:
        """The VM map standing for ``spec`` (created on first use), for test code to read."""
        if isinstance(spec, VMMap):
            return spec
        hit = self._maps_by_spec.get(id(spec))
        if hit is None:
            hit = (spec, create_map(spec, cpus=self.cpus))
            self._maps_by_spec[id(spec)] = hit
        return hit[1]

    def _map_handle(self, mp: VMMap) -> int:
        addr = self._addr_of_map.get(id(mp))
        if addr is None:
            addr = self.mem.add("map_ptr", bytearray(0), writable=False, fixed=True)
            self._addr_of_map[id(mp)] = addr
            self._map_addr[addr] = mp
        return addr

    def map_arg(self, addr: int, helper: str) -> VMMap:
        mp = self._map_addr.get(addr)
        if mp is None:
            raise VMError(f"R1 type=scalar expected=map_ptr in call to bpf_{helper} "
                          f"({addr:#x} is not a map)", address=addr)
        mp.cpu = self.cpu
        return mp

    def _resolve_map(self, insn: Instruction, maps, k: int) -> VMMap:
        ref = insn.map
        if isinstance(ref, VMMap):
            return ref
        fd = insn.imm & 0xFFFF_FFFF
        candidates = []
        if ref is not None:
            candidates += [ref, getattr(ref, "name", None)]
        candidates.append(fd)
        found = None
        if isinstance(maps, Mapping):
            for c in candidates:
                try:
                    if c is not None and c in maps:
                        found = maps[c]
                        break
                except TypeError:  # unhashable reference
                    continue
        elif isinstance(maps, Sequence) and insn.src in (op.PSEUDO_MAP_IDX, op.PSEUDO_MAP_IDX_VALUE):
            if fd < len(maps):
                found = maps[fd]
        if found is None and ref is not None and hasattr(ref, "key_size"):
            found = ref
        if found is None:
            raise VMError(f"fd {fd} is not pointing to valid bpf_map (pass it in maps=)", index=k)
        return self.map(found)

    def _pseudo(self, insn: Instruction, maps, k: int):
        """A zero-argument function computing the value of a pseudo ld_imm64."""
        src = insn.src
        if src in (op.PSEUDO_MAP_FD, op.PSEUDO_MAP_IDX):
            addr = self._map_handle(self._resolve_map(insn, maps, k))
            return lambda: addr
        if src in (op.PSEUDO_MAP_VALUE, op.PSEUDO_MAP_IDX_VALUE):
            mp = self._resolve_map(insn, maps, k)
            off = insn.imm >> 32
            if not hasattr(mp, "_data") or not isinstance(mp._data, list):
                raise VMError(f"map {mp.name!r}: direct value access needs an array map", index=k)
            mem = self.mem

            def value_addr():
                mp.cpu = self.cpu
                v = mp.bpf_lookup(b"\0\0\0\0")
                return mem.addr_of(v, "map_value") + off
            return value_addr
        name = op.PSEUDO_NAMES.get(src, str(src))

        def unsupported():
            raise VMError(f"ld_imm64 with src_reg {src} ({name}) is not supported by the VM", index=k)
        return unsupported

    # -- compilation --------------------------------------------------------------------
    def compile(self, program, *, prog_type=None, maps=None) -> Compiled:
        """Translate ``program`` (instructions, bytecode, or a spec with ``instructions``)."""
        if isinstance(program, Compiled):
            return program
        key = (id(program), id(maps), prog_type)
        snapshot = _snapshot(program)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is program and hit[1] is maps and hit[3] == snapshot:
            return hit[2]
        insns, ptype = _instructions(program)
        ptype = context.prog_type_of(prog_type if prog_type is not None else ptype)
        if not insns:
            raise VMError("program has no instructions")
        tr = codegen.Translator(insns)
        ns = dict(self._ns)
        pseudo = {}
        for k, insn in enumerate(insns):
            if insn.opcode == op.LD_IMM64 and insn.src:
                pseudo[k] = self._pseudo(insn, maps, k)
        tr.pseudo_hook = pseudo
        blocks: list = [None] * (len(insns) + 1)
        lens = [0] * (len(insns) + 1)
        try:
            sources = tr.blocks()
            ns.update(tr.consts)
            for start, count, src in sources:
                exec(compile(src, f"<bpf block {start}>", "exec"), ns)
                blocks[start] = ns.pop(f"b{start}")
                lens[start] = count
        except VMError as err:
            raise Compiled(insns, [], [], ptype).locate(err, err.index or 0) from None

        def fell_off(r):
            raise VMError("fell off the end of the program (the last insn is not an exit or jmp)",
                          index=len(insns) - 1)
        blocks[len(insns)] = fell_off
        comp = Compiled(insns, blocks, lens, ptype)
        if len(self._cache) >= 256:  # a long-lived VM must not keep every program alive
            self._cache.clear()
        self._cache[key] = (program, maps, comp, snapshot)
        return comp

    # -- running ------------------------------------------------------------------------
    def run(self, program, *, ctx=None, data: bytes | None = None, maps=None, repeat: int = 1,
            prog_type=None) -> RunResult:
        """Run ``program`` ``repeat`` times on one context, like BPF_PROG_TEST_RUN.

        ``ctx`` is the context struct as bytes (``ctx_in``) or a dict of its fields;
        ``data`` the packet (``data_in``); ``maps`` resolves the program's map
        references: ``{fd or name or spec: VMMap or spec}`` or a list for map_idx loads.
        """
        comp = self.compile(program, prog_type=prog_type, maps=maps)
        self._maps_arg = maps
        mem = self.mem
        mem.reset()
        self.reservations.clear()
        setup = context.setup(mem, comp.prog_type, ctx, data)
        self._setup = setup
        self._stacks = []
        trace_start = len(self.trace)
        r0 = insns = 0
        t0 = time.perf_counter_ns()
        for _ in range(max(1, repeat)):
            r = [0] * 11
            r[1] = setup.ctx_addr
            r[10] = self._stack(0)
            self._frames.clear()
            self._tail_calls = 0
            r0, insns = self._execute(comp, r)
            if self.reservations:
                addr = next(iter(self.reservations))
                raise VMError(f"Unreleased reference: ring buffer record at {addr:#x} was reserved "
                              "but neither submitted nor discarded", address=addr)
        duration = (time.perf_counter_ns() - t0) // max(1, repeat)
        data_out, ctx_out = setup.finish()
        return RunResult(r0 & 0xFFFF_FFFF, data_out, ctx_out, duration, r0, insns,
                         tuple(self.trace[trace_start:]))

    def _execute(self, comp: Compiled, r: list) -> tuple[int, int]:
        n = 0
        limit = self.insn_limit
        while True:
            blocks, lens = comp.blocks, comp.lens
            pc = 0
            try:
                while n < limit:
                    n += lens[pc]
                    pc = blocks[pc](r)
                raise VMError(f"instruction limit of {limit} exceeded (BPF program is too large "
                              "or loops forever)", index=pc)
            except _Exit as ex:
                if ex.args:  # LD_ABS/LD_IND beyond the packet: the kernel returns 0
                    r[0] = 0
                    n += ex.args[0] - pc + 1 - lens[pc]  # count only up to that insn
                return r[0], n
            except _TailCall as tc:
                comp = tc.target
                self._frames.clear()
                r[10] = self._stacks[0] + STACK_SIZE
            except VMError as err:
                raise comp.locate(err, pc) from None
            except Exception as exc:  # a VM bug must still name the instruction
                err = VMError(f"internal error: {type(exc).__name__}: {exc}")
                raise comp.locate(err, pc) from exc

    def _stack(self, depth: int) -> int:
        """The frame pointer (r10) for call depth ``depth``; one 512-byte region per depth."""
        while len(self._stacks) <= depth:
            self._stacks.append(self.mem.add("stack", bytearray(STACK_SIZE)))
        return self._stacks[depth] + STACK_SIZE

    # -- the functions generated code calls ---------------------------------------------
    def _fault(self, k, addr, size, what, t):
        err = fault(addr, size, what, t)
        if what == "atomic" and t is not None and t[5] is not None:
            err = VMError(f"BPF_ATOMIC stores into {t[6]} is not allowed", address=addr)
        err.index = k
        raise err

    def _call(self, hid: int, r: list, k: int) -> int:
        fn = self._helpers.get(hid)
        try:
            if fn is None:
                raise helper_impl.unknown(hid)
            return fn(r) & codegen.M64
        except VMError as err:
            if err.index is None:
                err.index = k
            raise

    def _enter(self, r: list, ret: int, target: int, k: int) -> int:
        frames = self._frames
        if len(frames) + 1 >= MAX_CALL_FRAMES:
            raise VMError(f"the call stack of {len(frames) + 2} frames is too deep", index=k)
        frames.append((r[6], r[7], r[8], r[9], r[10], ret))
        r[10] = self._stack(len(frames))
        return target

    def _leave(self, r: list) -> int:
        frames = self._frames
        if not frames:
            raise _Exit
        r[6], r[7], r[8], r[9], r[10], ret = frames.pop()
        return ret

    def _tail(self, r: list, k: int) -> None:
        mp = self.map_arg(r[2], "tail_call")
        index = r[3] & 0xFFFF_FFFF
        if getattr(mp, "progs", None) is None:
            raise VMError(f"cannot pass map_type {mp.map_type} into func bpf_tail_call#12", index=k)
        prog = mp.progs.get(index)
        if prog is None or index >= mp.max_entries or self._tail_calls >= MAX_TAIL_CALL_CNT:
            return  # the kernel falls through to the next instruction
        self._tail_calls += 1
        raise _TailCall(self.compile(prog, maps=self._maps_arg))

    def _ldabs(self, offset: int, size: int, k: int) -> int:
        pkt = self._setup.packet if self._setup else None
        if pkt is None:
            raise VMError("BPF_LD_[ABS|IND] instructions need a program type with an skb",
                          index=k)
        data = pkt.payload()
        if offset + size > len(data):
            raise _Exit(k)
        return int.from_bytes(data[offset:offset + size], "big")

    def _unsupported(self, k: int, what: str):
        raise VMError(f"{what} are not supported by the VM", index=k)

    # -- state helpers use ----------------------------------------------------------------
    def tick(self) -> int:
        now = self.clock_ns
        self.clock_ns += self.clock_step_ns
        return now & codegen.M64

    def probe(self, addr: int, size: int) -> bytes | None:
        """``size`` bytes at ``addr`` from probe_memory or the VM's own regions, or None."""
        for start, chunk in self.probe_memory.items():
            if start <= addr and addr + size <= start + len(chunk):
                return bytes(chunk[addr - start:addr - start + size])
        t = self.mem.region(addr)
        if t is not None and t[2] <= addr and addr + size <= t[3] and t[5] is None:
            return bytes(t[0][addr - t[1]:addr - t[1] + size])
        return None

    def need_packet(self, helper: str) -> context.Packet:
        pkt = self._setup.packet if self._setup else None
        if pkt is None:
            raise VMError(f"helper bpf_{helper} needs a program type with packet data")
        return pkt

    def packet_bytes(self) -> bytes:
        pkt = self._setup.packet if self._setup else None
        return pkt.payload() if pkt is not None else b""


def _snapshot(program) -> object:
    """What must not change for a cached translation to stay valid (Builders are mutable)."""
    if isinstance(program, (bytes, bytearray, memoryview)):
        return bytes(program)
    if callable(getattr(program, "instructions", None)) and getattr(program, "is_bytecode", False):
        return bytes(program.insns)
    insns = getattr(program, "insns", program)
    insns = getattr(insns, "insns", insns)  # a ProgramSpec holding a Builder
    labels = getattr(program, "labels", None) or getattr(getattr(program, "insns", None), "labels", None)
    return ([(i.opcode, i.dst, i.src, i.off, i.imm, i.target, id(i.map)) for i in insns],
            dict(labels) if labels else None)


def _instructions(program) -> tuple[list[Instruction], object]:
    """Logical instructions (jump labels resolved) and the program type, if the object has one."""
    if isinstance(program, (bytes, bytearray, memoryview)):
        return decode(bytes(program)), None
    ptype = getattr(program, "prog_type", None)
    if ptype is None:
        ptype = getattr(program, "type", None)
    labels = None
    if callable(getattr(program, "instructions", None)):  # a ProgramSpec
        insns = program.instructions()
        labels = program.label_map() if hasattr(program, "label_map") else None
    elif hasattr(program, "insns"):  # a Builder
        insns, labels = list(program.insns), getattr(program, "labels", None)
    else:
        insns = list(program)
    for i, insn in enumerate(insns):
        if not isinstance(insn, Instruction):
            raise VMError(f"program item {i} is {type(insn).__name__}, not an Instruction", index=i)
    if any(insn.target is not None for insn in insns):
        try:
            resolved = decode(encode(insns, labels))
        except AssemblerError as exc:
            raise VMError(str(exc), index=exc.index) from None
        for old, new in zip(insns, resolved):
            new.source, new.map = old.source, old.map
        insns = resolved
    return insns, ptype


_default: VM | None = None


def run(program, *, ctx=None, data: bytes | None = None, maps=None, repeat: int = 1,
        prog_type=None, vm: VM | None = None) -> RunResult:
    """Run ``program`` on ``vm`` (a shared default VM if not given); see :meth:`VM.run`."""
    global _default
    if vm is None:
        if _default is None:
            _default = VM()
        vm = _default
    return vm.run(program, ctx=ctx, data=data, maps=maps, repeat=repeat, prog_type=prog_type)
