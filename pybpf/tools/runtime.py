"""The kernel side every tool shares: loading, choosing an attach point, event channels.

Kept separate from :mod:`pybpf.tools.common` (options and printing) so a tool
imports only the layers it uses: startup time is part of what these tools
are judged on, and BCC's half a second is the thing to beat.

Programs are loaded with the verifier simulator off: these are small,
fixed programs, the kernel verifies them anyway, and the simulator costs
start-up time for no added safety here (the tool tests load every variant
through the real verifier).
"""

from __future__ import annotations

import errno
import os
import struct
import sys

from pybpf.asm import Builder, Reg, r1, r2, r3, r4, r5, r10, w3
from pybpf.maps import Map, MapSpec
from pybpf.program import Program, ProgramSpec

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["load", "attach", "attach_kprobes", "attach_mode", "program_type", "ATTACH_CHOICES",
           "Events", "pt_regs_offset", "announce", "fail", "run", "ExitStack", "BPF_F_CURRENT_CPU",
           "kprobes_available", "no_kprobes_error", "store_bytes"]

ATTACH_CHOICES = ("auto", "kprobe", "tracepoint")
BPF_F_CURRENT_CPU = 0xFFFFFFFF

# struct pt_regs member offsets (arch/*/include/asm/ptrace.h): the kprobe context.
# PARM1..PARM5 are the C calling convention's argument registers, RC the return value.
_PT_REGS = {
    "x86_64": {"parm1": 112, "parm2": 104, "parm3": 96, "parm4": 88, "parm5": 72, "rc": 80},
    # arm64 user_pt_regs: u64 regs[31]; x0..x7 carry arguments, x0 the return value.
    "aarch64": {"parm1": 0, "parm2": 8, "parm3": 16, "parm4": 24, "parm5": 32, "rc": 0},
}


def pt_regs_offset(what: str) -> int:
    """Offset of ``parm1``..``parm5`` or ``rc`` in this architecture's ``struct pt_regs``."""
    machine = os.uname().machine  # what platform.machine() returns, without importing it
    try:
        return _PT_REGS[machine][what]
    except KeyError:
        raise NotImplementedError(f"kprobe argument {what!r}: struct pt_regs layout of "
                                  f"{machine} is not known; use --attach tracepoint") from None


def store_bytes(b: Builder, at: int, data: bytes, scratch: Reg = r1) -> None:
    """Emit stores that put ``data`` (padded with NULs to 8 bytes) at ``r10 + at``."""
    data = data + bytes(-len(data) % 8)
    for i in range(0, len(data), 8):
        b.ld_imm64(scratch, int.from_bytes(data[i:i + 8], "little"))
        b.stx(r10, at + i, scratch)


def kprobes_available() -> bool:
    """The kprobe PMU or tracefs ``kprobe_events`` exists (what pybpf.link.kprobe checks).

    Checked on the file system here so that choosing the attach point imports nothing.
    """
    if os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        return True
    return any(os.path.exists(f"{root}/kprobe_events")
               for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))


def attach_mode(requested: str) -> str:
    """``auto`` becomes ``kprobe`` where the kernel has kprobes, else ``tracepoint``.

    ``kprobe`` on a kernel without kprobes is refused here, before anything is
    loaded, with the tools' advice (the option to use) rather than the link
    layer's (a Python call to make).
    """
    if requested == "auto":
        return "kprobe" if kprobes_available() else "tracepoint"
    if requested == "kprobe" and not kprobes_available():
        raise no_kprobes_error()
    return requested


def no_kprobes_error() -> NotImplementedError:
    """What a tool says when ``--attach kprobe`` cannot work here."""
    return NotImplementedError(
        "--attach kprobe: kprobes are not available on this kernel (built without kprobes: no "
        "kprobe PMU in /sys/bus/event_source/devices, no tracefs kprobe_events); use "
        "--attach tracepoint (or --attach auto, which picks the tracepoints here)")


def program_type(mode: str) -> str:
    """The program type an attach mode needs: kprobe programs read ``struct pt_regs``."""
    return "kprobe" if mode == "kprobe" else "tracepoint"


def attach(prog: Program, mode: str, *, tracepoint: str, kprobe: str = "",
           kretprobe: str = "") -> tuple[Any, str]:
    """Attach ``prog`` where ``mode`` says; returns (link, the attach point as announced).

    ``tracepoint`` is ``"category:name"``; in kprobe mode the program goes on
    function ``kprobe``, or on the return of ``kretprobe``.
    """
    if mode == "kprobe":
        return attach_kprobes(prog, kprobe=kprobe, kretprobe=kretprobe)
    from pybpf.link.tracepoint import attach_tracepoint
    category, _, name = tracepoint.partition(":")
    return attach_tracepoint(prog, category, name), f"tracepoint {tracepoint}"


def attach_kprobes(prog: Program, *, kprobe: str = "", kretprobe: str = "") -> tuple[Any, str]:
    """A kprobe on function ``kprobe`` (or a kretprobe on ``kretprobe``); returns (link, where).

    On a kernel without kprobes the link layer's error suggests a tracepoint
    and a Python call; a tool user needs the option instead (:func:`no_kprobes_error`).
    """
    from pybpf.link.kprobe import attach_kprobe, attach_kretprobe
    from pybpf.syscall import NotSupported
    try:
        if kretprobe:
            return attach_kretprobe(prog, kretprobe), f"kretprobe {kretprobe}"
        return attach_kprobe(prog, kprobe), f"kprobe {kprobe}"
    except NotSupported:
        if kprobes_available():  # kprobes exist: this refusal is about the function
            raise
        raise no_kprobes_error() from None


def load(b: Builder, prog_type: str, name: str, **kw: Any) -> Program:
    """Load the builder's program (kernel verifier only; see the module docstring)."""
    return ProgramSpec(b, prog_type, name=name, **kw).load(verify=False)


def announce(what: str) -> None:
    """The "attached" signal: one stderr line once every probe is in place.

    Tests and scripts wait for ``Hit Ctrl-C to end.``; BCC tools print the same words.
    """
    print(f"Tracing {what}... Hit Ctrl-C to end.", file=sys.stderr, flush=True)


def fail(tool: str, exc: BaseException | str) -> int:
    """Print an error the way command-line tools do (no traceback) and return the exit code."""
    print(f"{tool}: {exc}", file=sys.stderr, flush=True)
    return 1


class ExitStack:
    """What the tools use of :class:`contextlib.ExitStack`: ``enter_context`` and ``callback``.

    contextlib, with the functools and collections it imports, is start-up time
    every tool would pay. Leaving the ``with`` runs the exits newest first,
    each seeing the exception in flight, as contextlib's does: an exit that
    raises does not stop the older ones, its exception propagates chained to
    the one it replaced, and an exit returning true suppresses the exception.
    """

    def __init__(self) -> None:
        self._exits: list[Callable[..., Any]] = []

    def enter_context(self, cm: Any) -> Any:
        """Enter ``cm`` and push its ``__exit__``; returns what ``__enter__`` returned."""
        cls = type(cm)
        try:
            enter, exit = cls.__enter__, cls.__exit__
        except AttributeError:
            raise TypeError(f"'{cls.__module__}.{cls.__qualname__}' object does not support "
                            f"the context manager protocol") from None
        result = enter(cm)
        self._exits.append(lambda typ, value, tb: exit(cm, typ, value, tb))
        return result

    def callback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """Push ``fn(*args, **kwargs)`` (it cannot suppress an exception); returns ``fn``."""
        def exit(typ: Any, value: Any, tb: Any) -> None:
            fn(*args, **kwargs)
        self._exits.append(exit)
        return fn

    def __enter__(self) -> ExitStack:
        return self

    def __exit__(self, typ: Any, value: Any, tb: Any) -> bool:
        received = value is not None
        while self._exits:
            exit = self._exits.pop()
            try:
                if exit(typ, value, tb):
                    typ = value = tb = None
            except BaseException as new:
                # The older exits run while ``new`` is being handled, so that one
                # raising in turn chains to it; they may also suppress it.
                if self.__exit__(type(new), new, new.__traceback__):
                    return received
                raise
        return received and value is None


def run(name: str, duration: float | None,
        start: Callable[[ExitStack], tuple[str, Callable[[float], object]]],
        *, finish: Callable[[], object] | None = None, header: Callable[[], object] | None = None
        ) -> int:
    """The life of a tool: set up, announce, poll until stopped, finish, undo everything.

    ``start(stack)`` loads and attaches, pushing every object to close on
    ``stack`` (closed newest first, so links go before programs and maps), and
    returns (what is traced, a ``poll(timeout)`` function). SIGINT/SIGTERM and
    ``--duration`` end the loop; ``finish`` then runs while the maps are still
    open (readlat prints its histogram there). Errors are printed without a
    traceback and give exit status 1.

    The signal handlers (:class:`pybpf.tools.common.Stop`) are installed
    before anything is opened and removed only after everything is closed:
    a signal at any point ends the tool through the same clean-up, and one
    arriving during the clean-up does not interrupt it.
    """
    from . import resume_gc
    from .common import Stop, discard_stdout, stdout_closed

    if stdout_closed():  # before anything is opened: the first fd would become fd 1
        return fail(name, "standard output is closed")
    stop = Stop(duration)  # installed first: a signal during setup still ends cleanly
    try:
        with ExitStack() as stack:
            what, poll = start(stack)
            resume_gc()  # set up: collect normally from here on (see pybpf.tools)
            if header is not None:
                header()
            announce(what)
            stop.arm()
            try:
                while not stop:
                    poll(stop.remaining())
            except KeyboardInterrupt:  # a signal that abandoned a blocked write (see Stop)
                pass
            stop.disarm()  # the alarm was for a blocked loop; let finish() write
            if finish is not None:
                finish()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # output piped into head(1), which has exited: not an error
        discard_stdout()  # quiet exit-time flush
    except (OSError, ValueError, NotImplementedError) as exc:
        if stop.signalled and getattr(exc, "errno", None) in (errno.EAGAIN, errno.EINTR):
            return 0  # the stop signal interrupted a syscall (the verifier gives up with EAGAIN)
        return fail(name, exc)
    finally:
        stop.restore()
        resume_gc()
    return 0


class Events:
    """Where a program sends its records: a perf event array (default) or a ring buffer.

    The same program text works with both; only the helper call differs
    (``bpf_perf_event_output`` needs the context, ``bpf_ringbuf_output`` does not).
    """

    def __init__(self, record: struct.Struct, *, ringbuf: bool = False, name: str = "events",
                 ringbuf_size: int = 1 << 18):
        self.record = record
        self.ringbuf = ringbuf
        spec = MapSpec.ringbuf(ringbuf_size, name=name) if ringbuf else \
            MapSpec.perf_event_array(name=name)
        self.map: Map = spec.create()
        self._reader: Any = None
        self._reported = 0  # lost samples already reported

    def emit(self, b: Builder, ctx: Reg, at: int) -> None:
        """Emit the output of the record at ``r10 + at`` (clobbers r1-r5 and r0)."""
        size = self.record.size
        if self.ringbuf:
            b.ld_map_fd(r1, self.map)
            b.stack_ptr(r2, at)
            b.mov(r3, size)
            b.mov(r4, 0)
            b.call("ringbuf_output")
        else:
            b.mov(r1, ctx)
            b.ld_map_fd(r2, self.map)
            b.mov(w3, -1)  # BPF_F_CURRENT_CPU: a 32-bit move, so the high half stays zero
            b.stack_ptr(r4, at)
            b.mov(r5, size)
            b.call("perf_event_output")

    def open(self, callback: Callable[[tuple], Any]) -> None:
        """Start reading; ``callback`` gets each record unpacked with ``record``.

        Call it before attaching the program: a perf event array slot without
        a reader's fd drops the record (``bpf_perf_event_output`` returns
        -ENOENT), so the first events after the attach would be lost.

        The reader is woken for every record (``wakeup_events=1``, what BCC's
        ``open_perf_buffer`` and bpftrace do), not when a page has filled: these
        tools print events at human rates, and a watermark would hold the first
        line back until the reader's next flush. The ring buffer wakes its
        reader per record by default.
        """
        unpack, size = self.record.unpack_from, self.record.size
        if self.ringbuf:
            from pybpf.ringbuf import RingBuffer
            self._reader = RingBuffer(self.map)
            self._cb = lambda data: callback(unpack(data[:size]))
        else:
            from pybpf.perf import PerfReader
            self._reader = PerfReader(self.map, pages=8, wakeup_events=1)
            # (cpu, data) rather than a Sample: nothing to build per record, and the
            # Sample class (a namedtuple: collections) is never created at start-up.
            self._cb = lambda cpu, data: callback(unpack(data[:size]))

    def poll(self, timeout: float) -> int:
        """Deliver waiting records (waiting up to ``timeout`` s for one); report new losses.

        A perf ring that was full when the program wrote drops the record and
        the kernel later says how many (PERF_RECORD_LOST): after each poll that
        saw some, ``Possibly lost N samples`` goes to stderr, BCC's words. (A
        full ring buffer makes ``bpf_ringbuf_output`` fail in the program;
        nothing reaches user space to count.)
        """
        if self.ringbuf:
            return self._reader.poll(self._cb, timeout)
        n = self._reader.poll(self._cb, timeout, sample=False)
        if self._reader.lost != self._reported:
            self._report_lost()
        return n

    def _report_lost(self) -> None:
        lost = self._reader.lost
        if sys.stderr is not None:
            print(f"Possibly lost {lost - self._reported} samples", file=sys.stderr, flush=True)
        self._reported = lost

    @property
    def lost(self) -> int:
        return getattr(self._reader, "lost", 0)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.map.close()

    def __enter__(self) -> "Events":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
