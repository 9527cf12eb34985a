"""A process-wide registry of live attachments, undone on every way out.

Attachments held by an fd (perf links, bpf links, raw tracepoints) vanish
when the process dies, but some outlive it: tracefs ``kprobe_events`` /
``uprobe_events`` entries, XDP programs set over netlink, TC filters and
qdiscs, cgroup PROG_ATTACH. Every :class:`Release` (one attachment's undo
steps) is registered here and run, newest first, on:

* normal interpreter exit (``atexit``),
* an exception escaping a ``with`` block (the link's ``__exit__``),
* SIGINT, SIGTERM, SIGHUP (the terminal closed) and SIGQUIT: our handler
  releases everything, then hands the signal to whatever handler was
  installed before (the default one raises ``KeyboardInterrupt`` for SIGINT,
  or ends the process as the signal would have). A signal the process
  ignores (``nohup`` ignores SIGHUP, a shell's background job SIGINT) is left
  ignored: the process lives on, and so do its attachments,
* garbage collection of a link object (its ``__del__``).

SIGKILL cannot be caught; :func:`sweep_stale_probe_events` removes tracefs
events left by dead pybpf processes (their names carry the pid).
"""

from __future__ import annotations

import _thread  # not threading: its import is start-up time every tool would pay
import atexit
import itertools
import os
import sys

try:
    # The C module that signal.py wraps (see pybpf.tools.common): handlers come back
    # as plain ints (SIG_DFL 0, SIG_IGN 1) rather than Handlers enums; compared with ==.
    import _signal as signal
except ImportError:  # an interpreter without it
    import signal

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["Release", "release_all", "live", "install_signal_handlers", "sweep_stale_probe_events"]

_lock = _thread.RLock()
_live: dict[int, "Release"] = {}
_ids = itertools.count(1)
_installed = False
_previous: dict[int, object] = {}
_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Release:
    """The undo steps of one attachment, run at most once, last step first.

    Holds no reference to the link object itself, so the link can be
    garbage-collected (and its ``__del__`` run this).
    """

    __slots__ = ("description", "_steps", "_id", "__weakref__")

    def __init__(self, description: str):
        self.description = description
        self._steps: list[Callable[[], None]] = []
        self._id = next(_ids)

    def add(self, step: Callable[[], None]) -> None:
        """Push an undo step; registers this release on the first step."""
        with _lock:
            self._steps.append(step)
            if len(self._steps) == 1:
                _live[self._id] = self
        _ensure_installed()

    @property
    def pending(self) -> bool:
        return bool(self._steps)

    def __call__(self) -> None:
        """Run every undo step (newest first); errors of one step do not stop the others."""
        with _lock:
            steps, self._steps = self._steps, []
            _live.pop(self._id, None)
        first: BaseException | None = None
        for step in reversed(steps):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep undoing, report the first failure
                first = first or exc
        if first is not None:
            raise first

    def __repr__(self) -> str:
        return f"<Release {self.description!r} steps={len(self._steps)}>"


def live() -> list[Release]:
    """Releases not yet run, oldest first (for tests and diagnostics)."""
    with _lock:
        return list(_live.values())


def release_all() -> None:
    """Undo every live attachment, newest first; never raises."""
    with _lock:
        pending = list(_live.values())
    for rel in reversed(pending):
        try:
            rel()
        except Exception:  # noqa: BLE001 - exit paths must not fail
            pass


def _on_signal(signum: int, frame) -> None:
    release_all()
    prev = _previous.get(signum, signal.SIG_DFL)
    if callable(prev):
        prev(signum, frame)  # e.g. default_int_handler raises KeyboardInterrupt
    else:  # SIG_DFL (or a handler installed from C): die of the signal, as without us
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def install_signal_handlers() -> bool:
    """Install the handlers of the signals that end a process now (done automatically on
    the first attachment); ignored signals stay ignored (see the module docstring).

    Only possible from the main thread; returns whether handlers are in place.
    Handlers installed later by the application replace ours; such an
    application should call :func:`release_all` itself.
    """
    global _installed
    with _lock:
        if _installed:
            return True
        for sig in _HANDLED:
            prev = signal.getsignal(sig)
            if prev is _on_signal or prev == signal.SIG_IGN:
                continue
            try:
                signal.signal(sig, _on_signal)
            except ValueError:  # "signal only works in main thread of the main interpreter"
                return False
            _previous[sig] = prev
        _installed = True
        return True


_atexit_registered = False
_after_weakref = False


def _noop() -> None:
    pass


def _ensure_installed() -> None:
    # release_all runs at normal exit, before the interpreter's teardown collects
    # the link objects (whose __del__ then does nothing: see pybpf.link.base.Link),
    # and before weakref.finalize's exit hook: legacy probe events (pybpf.tracefs)
    # are finalizers, which cannot remove an event while our undo steps have not yet
    # closed the perf event using it. atexit runs hooks last-in first-out, so ours
    # must be registered after weakref's. weakref is not imported on the tools' path
    # (start-up time); once it is, its hook is registered now (creating a finalizer
    # does that) and ours again after it.
    global _atexit_registered, _after_weakref
    if not _after_weakref:
        weakref = sys.modules.get("weakref")
        if weakref is not None:
            weakref.finalize(lambda: None, _noop)  # dies at once; its hook stays registered
            atexit.unregister(release_all)
            _atexit_registered = False
            _after_weakref = True
    if not _atexit_registered:
        atexit.register(release_all)
        _atexit_registered = True
    if not _installed:
        install_signal_handlers()


def _after_fork_in_child() -> None:
    # A forked child shares no kernel-side ownership of the parent's netlink
    # or tracefs attachments: it must not undo them when it exits.
    global _lock
    _lock = _thread.RLock()
    _live.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def sweep_stale_probe_events() -> list[str]:
    """Remove tracefs kprobe/uprobe events created by pybpf processes that no longer exist.

    Legacy probe events are named ``pybpf_<pid>_...``; an event whose pid is
    gone was left by a process killed with SIGKILL. Returns the removed names.
    """
    from pybpf.tracefs import sweep_stale_probe_events as sweep

    return sweep()
