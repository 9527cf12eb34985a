"""Key iteration with BPF_MAP_GET_NEXT_KEY that terminates under concurrent deletion.

The kernel's hash maps and LPM tries answer "next key after K" with the
*first* key when K has been deleted meanwhile. A naive loop then restarts
from the beginning every time another thread deletes the key it is standing
on, and with a busy deleter never finishes (a known problem of other
libraries). Here:

* every key already yielded is remembered, so a restart never yields twice;
* after a restart, iteration first resumes from the most recent yielded keys
  that still exist (their successor is where we were), so most deletions
  cost one extra syscall instead of a walk from the beginning;
* full restarts are bounded (``max_restarts``), and so are resumes (at most
  ``max_entries``: more keys deleted under the iterator than the map can hold
  means someone keeps replacing its contents), steps that yield nothing, and
  distinct keys (twice ``max_entries``); beyond any bound
  :class:`MapIterationAborted` is raised instead of spinning.

Array-like maps index by position and never restart, so they take a plain loop.
"""

from __future__ import annotations

import ctypes
from collections import deque

from pybpf.syscall.map_cmds import map_get_next_key

from .types import MapType

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Iterator

__all__ = ["iter_raw_keys", "MapIterationAborted", "INDEXED_TYPES"]

INDEXED_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                           MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                           MapType.ARRAY_OF_MAPS})
_HISTORY = 16


class MapIterationAborted(RuntimeError):
    """Iteration restarted too often because other users kept deleting keys under it."""


def iter_raw_keys(fd: int, key_size: int, map_type: int, *, max_entries: int | None = None,
                  max_restarts: int = 100, context: str = "") -> Iterator[bytes]:
    """Yield each key (raw bytes) of the map behind ``fd`` at most once."""
    # ctypes buffers: the cheapest thing to hand the kernel on this hot path
    nxt = ctypes.create_string_buffer(key_size)
    cur_buf = ctypes.create_string_buffer(key_size)
    if map_type in INDEXED_TYPES:
        if not map_get_next_key(fd, None, nxt, context):
            return
        while True:
            key = nxt.raw
            yield key
            nxt, cur_buf = cur_buf, nxt
            if not map_get_next_key(fd, cur_buf, nxt, context):
                return

    seen: set[bytes] = set()
    history: deque[bytes] = deque(maxlen=_HISTORY)
    restarts = resumes = idle = 0
    max_resumes = max_entries if max_entries is not None else float("inf")
    max_seen = 2 * max_entries + 16 if max_entries is not None else float("inf")
    cur: bytes | None = None
    while True:
        if not map_get_next_key(fd, None if cur is None else cur_buf, nxt, context):
            return
        key = nxt.raw
        if key not in seen:
            if len(seen) >= max_seen:
                raise MapIterationAborted(
                    f"{context or 'map'}: {len(seen)} distinct keys seen, twice max_entries: the "
                    f"map's contents are being replaced faster than they can be read")
            seen.add(key)
            history.append(key)
            cur = key
            nxt, cur_buf = cur_buf, nxt
            yield key
            continue
        idle += 1  # a step that yields nothing: bounded so that no pattern of churn spins
        if idle > (max_restarts + 2) * (len(seen) + 1):
            raise MapIterationAborted(
                f"{context or 'map'}: {idle} get_next_key steps without a new key because keys "
                f"were deleted concurrently; {len(seen)} keys were returned")
        if cur is None or cur not in history:
            cur = key  # walking already-yielded keys after a restart: keep going
            cur_buf.raw = key
            continue
        # ``cur`` was deleted and the kernel went back to the first key (``key``).
        # Resume from the newest earlier key that still exists.
        history.remove(cur)
        resumed = None
        while history:
            prev = history.pop()
            if not map_get_next_key(fd, prev, nxt, context):
                return  # prev is alive and is the last key, or the map is empty
            after = nxt.raw
            if after != key:  # prev still exists: ``after`` is where we were
                history.append(prev)
                resumed = after
                break
        if resumed is not None:
            resumes += 1
            if resumes > max_resumes:
                raise MapIterationAborted(
                    f"{context or 'map'}: {resumes} keys were deleted under the iterator, more "
                    f"than max_entries {max_entries}: the map's contents are being replaced "
                    f"faster than they can be read; {len(seen)} keys were returned")
            cur = resumed
            cur_buf.raw = resumed
            if resumed in seen:
                continue
            seen.add(resumed)
            history.append(resumed)
            yield resumed
            continue
        restarts += 1
        if restarts > max_restarts:
            raise MapIterationAborted(
                f"{context or 'map'}: iteration restarted {restarts} times because keys were "
                f"deleted concurrently; {len(seen)} keys were returned")
        cur = key
        cur_buf.raw = key
