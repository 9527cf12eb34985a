"""What every tool shares: options, the root check, the run loop and output.

Tools print like their BCC namesakes; ``--json`` switches to one JSON object
per event (one per line), which is what scripts and tests read.
"""

from __future__ import annotations

import os
import sys
import time

try:
    # The C module that signal.py wraps: the wrapper only converts numbers to and
    # from enums, and importing it (with enum) is start-up time every tool pays.
    import _signal as signal
except ImportError:  # an interpreter without it
    import signal

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    import argparse
    from typing import Callable, Iterable, NoReturn

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


class _Option:
    """One declared option: what the plain parser needs to know about it."""

    __slots__ = ("names", "dest", "flag", "type", "choices", "default", "required", "kwargs")

    def __init__(self, names: tuple[str, ...], kwargs: dict) -> None:
        self.names = names
        self.kwargs = kwargs                     # passed on unchanged to add_argument
        longs = [n for n in names if n.startswith("--")]
        self.dest = (longs or names)[0].lstrip("-").replace("-", "_")  # argparse's rule
        self.flag = kwargs.get("action") == "store_true"
        self.type = kwargs.get("type")
        self.choices = kwargs.get("choices")
        self.required = kwargs.get("required", False)
        self.default = kwargs.get("default", False if self.flag else None)


class Options:
    """A tool's options, declared once; plain command lines are parsed without argparse.

    Why: a tool is judged on the wall time from process start to its first
    event, and importing argparse and building a parser costs more than the
    rest of option handling put together (it imports re, enum, gettext and
    locale, and its help formatter shutil with fnmatch, zlib, bz2 and lzma).
    Typical command lines (``--json -p 42 --duration=5 -U``) need none of
    that, so :meth:`parse` reads them here. Anything else -- ``-h``/``--help``,
    an unknown or abbreviated option, a missing or malformed value, a value
    starting with ``-``, bundled short flags, ``--`` -- goes to a real
    :class:`argparse.ArgumentParser` built from the same declarations, which
    stays the authority: its help text, its error messages and exit status 2,
    its abbreviations. The plain reading accepts only what argparse would
    accept with the same result (tests/tools/test_options.py checks that).

    :meth:`add` takes the subset of ``add_argument`` the tools use: option
    strings (``-s`` and/or ``--long``), ``type`` (int, float, str, or the
    checked types :func:`process_id` and :func:`positive_float`),
    ``action="store_true"``, ``choices``, ``default``, ``required``, ``help``
    and ``metavar``.
    """

    def __init__(self, prog: str, description: str | None = None) -> None:
        self.prog = prog
        self.description = description
        self._options: list[_Option] = []
        self._by_name: dict[str, _Option] = {}
        self._parser: argparse.ArgumentParser | None = None

    def add(self, *names: str, type: type | None = None, action: str | None = None,
            choices: tuple | None = None, default: object = None, required: bool = False,
            help: str | None = None, metavar: str | None = None) -> None:
        """Declare an option, as ``ArgumentParser.add_argument`` would."""
        for name in names:
            if not name.startswith("-") or name in ("-", "--") or \
                    (not name.startswith("--") and len(name) != 2):
                raise ValueError(f"option {name!r}: expected -x or --long (positional "
                                 "arguments and long single-dash options are not supported)")
            if name in self._by_name or name in ("-h", "--help"):
                raise ValueError(f"option {name!r} is declared twice (-h/--help is argparse's)")
        if action not in (None, "store_true"):
            raise ValueError(f"option {names[0]}: action {action!r} is not supported "
                             "(only store_true)")
        if type not in (None, int, float, str, process_id, positive_float):
            raise ValueError(f"option {names[0]}: type {type!r} is not supported "
                             "(int, float, str, common.process_id or common.positive_float)")
        if action == "store_true" and (type or choices or metavar):
            raise ValueError(f"option {names[0]}: store_true takes no type, choices or metavar")
        given = {"type": type, "action": action, "choices": choices, "default": default,
                 "required": required, "help": help, "metavar": metavar}
        kwargs = {k: v for k, v in given.items() if v is not None and v is not False}
        if default is False:  # a meaningful default, unlike the None/False "not given" above
            kwargs["default"] = False
        option = _Option(names, kwargs)
        self._options.append(option)
        for name in names:
            self._by_name[name] = option

    def parse(self, argv: list[str] | None = None) -> object:
        """The parsed options, with the attributes and defaults argparse would give.

        Exits with status 0 after printing help, or 2 after argparse's usage
        and error message, exactly as ``ArgumentParser.parse_args`` does.
        """
        argv = sys.argv[1:] if argv is None else list(argv)
        args = self.parse_plain(argv)
        return self.argparser().parse_args(argv) if args is None else args

    def error(self, message: str) -> NoReturn:
        """Print usage and ``message`` and exit with status 2 (``ArgumentParser.error``)."""
        self.argparser().error(message)

    def argparser(self) -> argparse.ArgumentParser:
        """The real argparse parser for the same declarations (built once, on demand)."""
        if self._parser is None:
            import argparse
            self._parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
            for option in self._options:
                self._parser.add_argument(*option.names, **option.kwargs)
        return self._parser

    def parse_plain(self, argv: list[str]) -> object | None:
        """The options of a plain command line without argparse, or None to let argparse decide.

        When not None, the result has the attributes argparse would give
        (``vars()`` equal to ``parse_args(argv)``'s).
        """
        values = {}
        i, n = 0, len(argv)
        while i < n:
            arg = argv[i]
            i += 1
            if arg[:1] != "-" or arg in ("-", "--"):
                return None                      # positional or "--": none of the tools has any
            if arg[1] == "-":
                name, eq, value = arg.partition("=")
                option = self._by_name.get(name)
                if option is None:
                    return None                  # unknown or abbreviated: argparse resolves it
                if option.flag:
                    if eq:
                        return None              # --json=x: argparse's error
                    values[option.dest] = True
                    continue
                if not eq:
                    if i == n or argv[i][:1] == "-":
                        return None              # missing value, or one argparse may not take
                    value = argv[i]
                    i += 1
            else:
                option = self._by_name.get(arg[:2])
                if option is None:
                    return None
                if option.flag:
                    if len(arg) > 2:
                        return None              # -Uj: bundled flags
                    values[option.dest] = True
                    continue
                if len(arg) > 2:
                    value = arg[2:]              # -p42
                    if "=" in value or any(s.startswith(arg) for s in self._by_name):
                        return None              # -p=42 and prefix matches vary by version
                elif i == n or argv[i][:1] == "-":
                    return None
                else:
                    value = argv[i]
                    i += 1
            converted = _convert(option, value)
            if converted is _INVALID:
                return None
            values[option.dest] = converted
        result = {}                              # in declaration order, as argparse's
        for option in self._options:
            if option.dest in values:
                result[option.dest] = values[option.dest]
                continue
            if option.required:
                return None
            default = option.default
            if isinstance(default, str) and option.type is not None:
                default = _convert(option, default)  # argparse converts string defaults
                if default is _INVALID:
                    return None
            result[option.dest] = default
        from types import SimpleNamespace
        return SimpleNamespace(**result)


_INVALID = object()


def _convert(option: _Option, value: str) -> object:
    """``value`` after ``type`` and the ``choices`` check, or _INVALID (argparse's error)."""
    if option.type is not None:
        try:
            value = option.type(value)
        except Exception:  # noqa: BLE001 - ValueError, or the checked types' ArgumentTypeError
            return _INVALID
    if option.choices is not None and value not in option.choices:
        return _INVALID
    return value


# The largest pid the kernel can hand out on 64-bit builds (include/linux/threads.h):
# /proc/sys/kernel/pid_max cannot be set above it.
PID_MAX_LIMIT = 4 * 1024 * 1024


def _type_error(message: str) -> Exception:
    """argparse's ArgumentTypeError (whose text argparse prints as is), imported when needed."""
    import argparse  # only on the way to a usage error
    return argparse.ArgumentTypeError(message)


def process_id(text: str) -> int:
    """``--pid``'s type: an int from 1 to PID_MAX_LIMIT, else argparse's usage error.

    Why checked here: a value beyond 32 bits is not a valid immediate in the
    filter (the program fails to assemble), and 0, negative numbers or values
    past PID_MAX_LIMIT are not process ids, so the tool would trace nothing.
    """
    try:
        value = int(text)
    except ValueError:
        raise _type_error(f"invalid int value: {text!r}") from None
    if not 0 < value <= PID_MAX_LIMIT:
        raise _type_error(f"{text!r} is not a process id (1 to {PID_MAX_LIMIT}, "
                          "the kernel's PID_MAX_LIMIT)")
    return value


def positive_float(text: str) -> float:
    """A duration or interval: a finite float greater than 0, else argparse's usage error.

    ``-d 0`` or ``-d -1`` would attach and detach at once, and ``-d nan``
    would never end (every comparison with NaN is false).
    """
    try:
        value = float(text)
    except ValueError:
        raise _type_error(f"invalid float value: {text!r}") from None
    if not 0 < value < float("inf"):                # also false for NaN
        raise _type_error(f"{text!r} is not a finite number greater than 0")
    return value


def parser(name: str, description: str, *, pid: bool = True,
           json_help: str = "print one JSON object per event") -> Options:
    """The options every tool has: ``-p/--pid`` (unless ``pid=False``), ``--json``, ``-d``.

    ``json_help`` says what ``--json`` prints, for tools that print something
    other than events (a histogram at the end, a table per interval).
    """
    p = Options(f"pybpf tool {name}", description)
    if pid:
        p.add("-p", "--pid", type=process_id, help="trace this process id only")
    p.add("--json", action="store_true", help=json_help)
    p.add("-d", "--duration", type=positive_float, help="stop after this many seconds")
    return p


def require_root(name: str) -> None:
    """Exit with a clear message when the process cannot load tracing programs."""
    from pybpf.syscall.errors import effective_caps  # loaded already: pybpf.syscall
    caps = effective_caps() or 0
    if caps >> CAP_SYS_ADMIN & 1 or (caps >> CAP_BPF & 1 and caps >> CAP_PERFMON & 1):
        return
    print(f"{name}: must be run as root: it loads eBPF programs into the kernel, which needs "
          f"CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN). Try: sudo pybpf tool {name}",
          file=sys.stderr)
    raise SystemExit(1)


_writing = False  # True while write_out() is writing to stdout: see Stop


class Stop:
    """Turns SIGINT/SIGTERM and ``--duration`` into a flag the poll loop checks.

    A flag rather than an exception, so that a signal never lands in the
    middle of setting up or tearing down (a link half made, a tracing
    instance not yet removed): the loop checks it between polls, and the
    handlers stay installed until :meth:`restore`, after the clean-up, so a
    second Ctrl-C or SIGTERM cannot cut the clean-up short either.

    The exception is a write to stdout. One blocked on a full pipe (whoever
    reads it stopped reading) never returns: CPython runs the handler and
    retries the interrupted write() (PEP 475). So while :func:`write_out` is
    writing, the handler raises KeyboardInterrupt, which abandons the write;
    the tool then cleans up as after any stop, and :func:`write_out` points
    stdout at /dev/null so that nothing is left to block on. ``--duration``
    does the same through SIGALRM, shortly after the deadline (:meth:`arm`).
    """

    def __init__(self, duration: float | None):
        self.deadline = None if duration is None else time.monotonic() + duration
        self.signalled = False
        self._armed = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signalled = True
        if _writing:
            raise KeyboardInterrupt

    def arm(self, grace: float = 0.5) -> None:
        """Have SIGALRM arrive ``grace`` seconds after the deadline, for a loop stuck in a write.

        The loop itself ends at the deadline, and :meth:`disarm` cancels the
        timer then, so the alarm only fires for a write blocked past it (and
        cannot cut short whatever is written after the loop, such as readlat's
        histogram). Called once everything is attached, not before: a signal
        pending during BPF_PROG_LOAD makes the verifier give up with EAGAIN.
        """
        if self.deadline is None or self._armed:
            return
        left = self.deadline - time.monotonic()
        if not 0 < left < 1e8:  # passed already (the loop ends at once), or beyond any run
            return
        if signal.SIGALRM not in self._old:
            self._old[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._handle)
        signal.setitimer(signal.ITIMER_REAL, left + grace)
        self._armed = True

    def disarm(self) -> None:
        """Cancel the timer :meth:`arm` set (the handlers stay until :meth:`restore`)."""
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self._armed = False

    def __bool__(self) -> bool:
        return self.signalled or (self.deadline is not None and time.monotonic() >= self.deadline)

    def remaining(self, cap: float = 0.2) -> float:
        if self.deadline is None:
            return cap
        return max(0.0, min(cap, self.deadline - time.monotonic()))

    def restore(self) -> None:
        """Cancel the timer and put the previous handlers back (a second call does nothing)."""
        self.disarm()
        while self._old:
            sig, handler = self._old.popitem()
            signal.signal(sig, handler)


def run_loop(duration: float | None, poll: Callable[[float], object]) -> None:
    """Call ``poll(timeout)`` until the duration ends or SIGINT/SIGTERM arrives."""
    stop = Stop(duration)
    stop.arm()
    try:
        while not stop:
            poll(stop.remaining())
    finally:
        stop.restore()


def stdout_closed() -> bool:
    """Whether the process started with its standard output closed (``tool >&-``).

    Python then sets ``sys.stdout`` to None, and the first fd the tool opens
    (a map, a program) would become fd 1: check before opening anything.
    """
    out = sys.stdout
    if out is None:
        return True
    try:
        os.fstat(out.fileno())
    except (AttributeError, ValueError):  # not a file (a test's StringIO): not closed
        return False
    except OSError:
        return True
    return False


def discard_stdout() -> None:
    """Point fd 1 at /dev/null, so that what is still buffered cannot block or fail the exit."""
    try:
        fd = sys.stdout.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
    except (AttributeError, OSError, ValueError):
        return
    os.dup2(null, fd)
    os.close(null)


def write_out(text: str) -> None:
    """Write ``text`` to stdout and flush it, in a way SIGINT/SIGTERM/--duration can abandon.

    One write and a flush per call: print() writes the text and its newline
    separately, two syscalls when stdout is unbuffered (PYTHONUNBUFFERED).
    Characters stdout's encoding cannot represent (a non-UTF-8 locale) are
    replaced rather than ending the tool. See :class:`Stop` for the rest.
    """
    global _writing
    out = sys.stdout
    _writing = True
    try:
        try:
            out.write(text)
        except UnicodeEncodeError:  # nothing was written: the encoder runs first
            encoding = out.encoding or "utf-8"
            out.write(text.encode(encoding, "replace").decode(encoding))
        out.flush()
    except KeyboardInterrupt:
        _writing = False
        discard_stdout()  # the abandoned text stays buffered: flush it nowhere at exit
        raise
    finally:
        _writing = False


def _text_format(fmt: str) -> str:
    """The ``%s`` format of the same width as a column's format (``%-18.6f`` -> ``%-18s``)."""
    return "%" + fmt[1:-1].partition(".")[0] + "s"


class Output:
    """Prints events as a BCC-style table or as JSON lines, flushing each line.

    ``columns`` are ``(key, format)`` pairs, the header being the key in
    capitals, or ``(key, format, header)``.
    """

    def __init__(self, as_json: bool, columns: Iterable[tuple[str, ...]]):
        columns = list(columns)
        self.as_json = as_json
        self.columns = [(c[0], c[1]) for c in columns]  # (key, format such as "%-7s")
        self._headers = tuple(c[2] if len(c) > 2 else c[0].upper() for c in columns)
        self._fmt = " ".join(f for _, f in self.columns) + "\n"
        self._header_fmt = " ".join(_text_format(f) for _, f in self.columns) + "\n"

    def header(self) -> None:
        if not self.as_json:
            self._write(self._header_fmt % self._headers)

    def event(self, row: dict) -> None:
        for value in row.values():
            if value.__class__ is str and not value.isascii():
                row = {k: clean_text(v) if v.__class__ is str else v for k, v in row.items()}
                break
        if self.as_json:
            import json  # only JSON mode pays for it
            self._write(json.dumps(row) + "\n")
        else:
            self._write(self._fmt % tuple(row[k] for k, _ in self.columns))

    @staticmethod
    def _write(line: str) -> None:
        write_out(line)


def clean_text(text: str) -> str:
    """``text`` as valid Unicode: lone surrogates become U+FFFD, as in :func:`cstr`.

    Bytes decoded with ``surrogateescape`` (file names, from os.fsdecode) carry
    lone surrogates, which UTF-8 output refuses ("surrogates not allowed") and
    JSON output would pass on as invalid Unicode. They are turned back into the
    bytes they stand for, which are then decoded the way BCC's tools decode
    (``errors="replace"``).
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that stand for no byte
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def cstr(raw: bytes) -> str:
    """A NUL-terminated C string from a record as text, invalid UTF-8 replaced by U+FFFD.

    What BCC's tools do (``.decode('utf-8', 'replace')``): the result always
    prints, in a table or as JSON, whatever the bytes were (a comm or a file
    name need not be UTF-8).
    """
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def tool_pid_filter(pid: int | None) -> int:
    """The tgid a program should filter on (0 = no filter), excluding the tool itself by default."""
    return pid or 0


def own_pid() -> int:
    return os.getpid()


def add_attach_option(p: Options) -> None:
    """``--attach auto|kprobe|tracepoint``: auto picks kprobes where the kernel has them."""
    p.add("--attach", choices=("auto", "kprobe", "tracepoint"), default="auto",
          help="attach point: kprobe where the kernel has kprobes (auto), else the "
               "matching tracepoint")
