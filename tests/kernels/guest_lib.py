"""The in-guest check framework shared by guest_checks.py and its sibling check modules.

Kept apart from the checks so that each concern (attach points, tools, the
verifier differential) can live in its own small module and still register
into one ``CHECKS`` table that guest_checks.py runs. Standard library only:
it is imported on the host (to list the checks) and in the guest.
"""

from __future__ import annotations

import importlib
import json
import time
import traceback
from typing import Callable

__all__ = ["CHECKS", "Skip", "check", "need", "run"]

CHECKS: dict[str, Callable[[], dict]] = {}


class Skip(Exception):
    """A piece this check needs is not in pybpf yet."""


def check(fn: Callable[[], dict]) -> Callable[[], dict]:
    """Register ``check_NAME`` as check ``NAME`` (run in registration order)."""
    CHECKS[fn.__name__.removeprefix("check_")] = fn
    return fn


def need(dotted: str):
    """Import ``pybpf.x.y`` (module, or module attribute); Skip naming it when absent.

    Only absence skips: a module that exists but fails to import fails the check.
    """
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            obj = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name is not None and modname.startswith(exc.name):
                continue  # this module (or a parent) does not exist; try the parent
            raise
        for j, attr in enumerate(parts[i:], i):
            if not hasattr(obj, attr):
                raise Skip(f"{'.'.join(parts[:j + 1])} not available")
            obj = getattr(obj, attr)
        return obj
    raise Skip(f"{dotted} not available")


def run(names: list[str]) -> int:
    """Run the named checks (default: all), one ``PYBPF-CHECK {json}`` line each; 1 if any failed."""
    failed = 0
    for name in names or list(CHECKS):
        t0 = time.monotonic()
        try:
            result = {"status": "pass", "detail": "", "data": CHECKS[name]()}
        except Skip as exc:
            result = {"status": "skip", "detail": f"skipped: {exc}", "data": {}}
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, then the next check runs
            failed += 1
            result = {"status": "fail", "detail": f"{type(exc).__name__}: {exc}",
                      "data": {"traceback": traceback.format_exc()[-3000:]}}
        result = {"name": name, **result, "seconds": round(time.monotonic() - t0, 3)}
        print("PYBPF-CHECK " + json.dumps(result, default=repr), flush=True)
    return 1 if failed else 0
