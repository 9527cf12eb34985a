"""ctypes bindings for bpf(2) and perf_event_open(2): one small wrapper per command.

Raw layer only: callers pass and get plain ints, bytes and ctypes buffers.
Objects with lifetimes (maps, programs, links) live in the packages above.
"""

from .bpf import Cmd, bpf, perf_event_open
from .errors import (BadFD, BPFError, BPFPermissionError, Busy, InvalidArgument, KeyExists,
                     KeyNotFound, MapFull, NotSupported, error_for)
from .fd import FD, fd_of

__all__ = [
    "Cmd", "bpf", "perf_event_open", "FD", "fd_of", "BPFError", "NotSupported", "BPFPermissionError",
    "KeyNotFound", "KeyExists", "MapFull", "InvalidArgument", "BadFD", "Busy", "error_for",
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

# Commands on existing attachments and their layouts load on first use (attach_cmds,
# attr_attach): a tool's start-up needs none of them.
_ATTACH_CMDS = ("link_info", "prog_attach", "prog_detach", "prog_query", "link_update",
                "link_detach", "raw_tracepoint_open", "QueryResult")
__all__ += ["LinkInfo", *_ATTACH_CMDS]


def __getattr__(name: str):
    # TestRunOutput, ProgInfoFull: see prog_cmds.__getattr__ (start-up time).
    if name in ("TestRunOutput", "ProgInfoFull"):
        from . import prog_results
        return getattr(prog_results, name)
    if name in _ATTACH_CMDS:
        from . import attach_cmds
        return getattr(attach_cmds, name)
    if name == "LinkInfo":
        from .attr_attach import LinkInfo
        return LinkInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
