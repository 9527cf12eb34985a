"""ctypes bindings for bpf(2) and perf_event_open(2): one small wrapper per command.

Raw layer only: callers pass and get plain ints, bytes and ctypes buffers.
Objects with lifetimes (maps, programs, links) live in the packages above.
"""

from .bpf import Cmd, bpf, perf_event_open
from .errors import (BadFD, BPFError, BPFPermissionError, Busy, IndexOutOfRange, InvalidArgument,
                     KeyExists, KeyNotFound, MapFull, NotSupported, TooBig, WrongObjectKind,
                     error_for)
from .fd import FD, fd_of

__all__ = [
    "Cmd", "bpf", "perf_event_open", "FD", "fd_of", "BPFError", "NotSupported", "BPFPermissionError",
    "KeyNotFound", "KeyExists", "TooBig", "MapFull", "IndexOutOfRange", "InvalidArgument", "BadFD",
    "Busy", "WrongObjectKind", "error_for",
]

# --- map, object and id commands (maps engineer) ---
from . import attr_map, map_cmds  # noqa: E402
from .errors import ObjectNotFound  # noqa: E402
from .map_cmds import (BPF_STATS_RUN_TIME, enable_stats, link_get_fd_by_id,  # noqa: E402
                       link_get_next_id, map_create, map_delete_batch, map_delete_elem, map_freeze, map_get_fd_by_id,
                       map_get_info, map_get_next_id, map_get_next_key, map_lookup_and_delete_batch,
                       map_lookup_and_delete_elem, map_lookup_batch, map_lookup_elem,
                       map_update_batch, map_update_elem, obj_get, obj_get_info_by_fd, obj_pin,
                       object_ids, open_objects, prog_get_fd_by_id, prog_get_next_id)

__all__ += ["ObjectNotFound", *map_cmds.__all__]
# --- end map commands ---

# --- program, BTF and link commands (programs engineer) ---
from . import attr_prog, prog_cmds  # noqa: E402
from .attr_prog import AttachFlags, LinkCreateAttr, ProgFlags, ProgInfo, TestRunFlags  # noqa: E402
from .prog_cmds import (LoadResult, btf_load, link_create, prog_info, prog_info_full,  # noqa: E402
                        prog_load, prog_test_run)

__all__ += ["AttachFlags", "LinkCreateAttr", "ProgFlags", "ProgInfo", "TestRunFlags",
            *prog_cmds.__all__]
# --- end program commands ---

# Result dataclasses and commands on existing attachments load on first use: a
# tool's start-up needs none of them (prog_cmds.LAZY says where each one lives).
__all__ += [name for name in prog_cmds.LAZY if name not in __all__]


def __getattr__(name: str):
    if name in prog_cmds.LAZY:
        return getattr(prog_cmds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
