"""BCC-style tracing tools, each a module with ``main(argv) -> int``.

Run one with ``pybpf tool NAME`` (see :mod:`pybpf.tools.cli` for the list).
Nothing is imported here: a tool's start-up time is judged, so each tool
module imports only the layers it drives.

Start-up also pauses the cyclic garbage collector: importing the layers
creates thousands of long-lived objects (classes, functions, enum members),
and the collections their allocation triggers (about twenty, a fifth of the
import time) would find nothing to free. :func:`pause_gc` is called before
the imports when a tool is the program being run (``python -m
pybpf.tools.NAME`` here, ``pybpf tool NAME`` in :mod:`pybpf.cli`);
:func:`resume_gc` runs once the tool is attached, and moves everything that
exists by then into the permanent generation, so that later collections in
the event loop do not rescan it either.
"""

import gc
import sys

__all__: list[str] = []

_paused = False


def pause_gc() -> None:
    """Disable the collector for the start-up of a tool run as the program (see above)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_gc() -> None:
    """Undo :func:`pause_gc` (a no-op if it did nothing), freezing the start-up objects."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def _run_as_module() -> bool:
    """``python [options] -m pybpf.tools.NAME``: runpy imports this package first."""
    argv = getattr(sys, "orig_argv", [])
    try:
        return argv[argv.index("-m") + 1].startswith("pybpf.tools.")
    except (ValueError, IndexError):
        return False


if _run_as_module():
    pause_gc()
