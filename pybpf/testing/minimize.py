"""Delta debugging (Zeller's ddmin) over the instructions of a program.

The predicate is "this smaller program still shows the same disagreement".
Instructions are removed by logical index through
:meth:`GeneratedProgram.without`, which moves labels to the next kept
instruction, so jump targets stay well-formed without offset arithmetic.
The result is 1-minimal: removing any single remaining instruction loses the
disagreement (unless the test budget ran out first).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence, TypeVar

from .program import GeneratedProgram

__all__ = ["ddmin", "minimize_program"]

T = TypeVar("T")


def ddmin(items: Sequence[T], test: Callable[[list[T]], bool], *, max_tests: int = 5000,
          max_seconds: float | None = None) -> list[T]:
    """The smallest sublist (order kept) of ``items`` for which ``test`` still holds.

    ``test(items)`` must be true on entry. Subsets tried are cached; after
    ``max_tests`` calls or ``max_seconds`` the best list so far is returned.
    """
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    current = list(range(len(items)))
    seen: dict[tuple[int, ...], bool] = {}
    calls = 0

    def check(idx: list[int]) -> bool:
        nonlocal calls
        key = tuple(idx)
        if key not in seen:
            if calls >= max_tests or (deadline is not None and time.monotonic() > deadline):
                return False
            calls += 1
            seen[key] = bool(test([items[i] for i in idx]))
        return seen[key]

    n = 2
    while len(current) >= 2:
        chunk = max(1, len(current) // n)
        subsets = [current[i:i + chunk] for i in range(0, len(current), chunk)]
        reduced = False
        for sub in subsets:  # try one chunk alone
            if len(sub) < len(current) and check(sub):
                current, n, reduced = sub, 2, True
                break
        if not reduced:
            for sub in subsets:  # try everything but one chunk
                rest = [i for i in current if i not in set(sub)]
                if rest and check(rest):
                    current, n, reduced = rest, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), n * 2)
        if calls >= max_tests:
            break
    return [items[i] for i in current]


def minimize_program(prog: GeneratedProgram, still_fails: Callable[[GeneratedProgram], bool], *,
                     max_tests: int = 2000, max_seconds: float | None = None) -> GeneratedProgram:
    """The smallest program obtained by deleting instructions that ``still_fails``.

    A candidate that cannot even be encoded (a label past the end is fine,
    a jump out of 16-bit range is not) counts as not failing.
    """
    def test(indexes: list[int]) -> bool:
        drop = set(range(len(prog.insns))) - set(indexes)
        candidate = prog.without(drop)
        try:
            candidate.encode()
        except Exception:
            return False
        return bool(still_fails(candidate))

    keep = ddmin(list(range(len(prog.insns))), test, max_tests=max_tests, max_seconds=max_seconds)
    return prog.without(set(range(len(prog.insns))) - set(keep))
