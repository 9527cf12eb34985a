"""One small wrapper per bpf(2) command for programs, BTF and links.

Raw layer: plain ints, bytes and ctypes structures in, plain values out, or a
typed :class:`~pybpf.syscall.errors.BPFError`. Retry policies (growing the
verifier log, growing test-run output buffers) live one layer up, in
``pybpf.program``, where the caller's intent is known; here a failing call
attaches what the kernel reported (``err.log``, ``err.log_true_size``,
``err.data_size_out``) to the exception so that layer can decide.
"""

from __future__ import annotations

import ctypes
import sys

from pybpf._record import Record

from .attr_prog import BPF_OBJ_NAME_LEN, BtfLoadAttr, LinkCreateAttr, ProgInfo, ProgLoadAttr, TestRunAttr
from .bpf import Cmd, bpf
from .errors import BPFError
from .map_cmds import obj_get_info_by_fd

TYPE_CHECKING = False  # typing is not imported at run time: see pybpf._record
if TYPE_CHECKING:
    from .prog_results import ProgInfoFull, TestRunOutput

__all__ = [
    "LoadResult", "TestRunOutput", "ProgInfoFull", "prog_load", "prog_test_run", "btf_load",
    "prog_info", "prog_info_full", "link_create",
]

# Names defined on first use by __getattr__ below (start-up time a tool would pay):
# result dataclasses in prog_results, commands on existing attachments (and their
# ctypes layouts) in attach_cmds. pybpf.syscall resolves them through here too.
LAZY = {"TestRunOutput": "prog_results", "ProgInfoFull": "prog_results",
        "QueryResult": "prog_results", "LinkInfo": "attr_attach",
        **dict.fromkeys(("link_info", "prog_attach", "prog_detach", "prog_query", "link_update",
                         "link_detach", "raw_tracepoint_open"), "attach_cmds")}

# The kernel refuses log buffers above UINT_MAX >> 2 (kernel/bpf/log.c).
MAX_LOG_SIZE = (1 << 30) - 1


def _buf(data: bytes | bytearray | memoryview | None):
    """A ctypes buffer holding ``data`` (kept alive by the caller) and its address."""
    if data is None:
        return None, 0
    buf = (ctypes.c_char * max(len(data), 1)).from_buffer_copy(bytes(data) or b"\0")
    return buf, ctypes.addressof(buf)


def _log_buffer(log_level: int, log_size: int):
    """A log buffer for ``log_level`` (None when 0) and its size, clamped to what the kernel takes."""
    if not log_level:
        return None, 0
    size = min(max(log_size, 128), MAX_LOG_SIZE)
    return ctypes.create_string_buffer(size), size


def _log_text(log) -> str:
    return log.value.decode(errors="replace") if log is not None else ""


class LoadResult(Record):
    """A successful BPF_PROG_LOAD: the raw fd (caller owns it) and the verifier log if asked."""

    __slots__ = ("fd", "log", "log_true_size")
    fd: int
    log: str
    log_true_size: int

    def __init__(self, fd: int, log: str, log_true_size: int) -> None:
        self._assign(fd=fd, log=log, log_true_size=log_true_size)


def prog_load(insns: bytes, prog_type: int, *, license: str = "GPL", name: str = "",
              log_level: int = 0, log_size: int = 0, kern_version: int = 0, prog_flags: int = 0,
              expected_attach_type: int = 0, prog_btf_fd: int = 0, attach_btf_id: int = 0,
              attach_prog_fd: int = 0, fd_array: list[int] | None = None,
              func_info: bytes | None = None, func_info_rec_size: int = 0,
              line_info: bytes | None = None, line_info_rec_size: int = 0,
              ifindex: int = 0, token_fd: int = 0, context: str = "") -> LoadResult:
    """BPF_PROG_LOAD. On failure the raised error carries ``log`` and ``log_true_size``."""
    if len(insns) % 8:
        raise ValueError(f"bytecode length {len(insns)} is not a multiple of 8")
    code, code_ptr = _buf(insns)
    lic = ctypes.create_string_buffer(license.encode())
    attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns) // 8, insns=code_ptr,
                        license=ctypes.addressof(lic), kern_version=kern_version,
                        prog_flags=prog_flags, prog_ifindex=ifindex,
                        expected_attach_type=expected_attach_type, prog_btf_fd=prog_btf_fd,
                        attach_btf_id=attach_btf_id, attach_prog_fd=attach_prog_fd,
                        prog_token_fd=token_fd)
    attr.prog_name = name.encode()[:BPF_OBJ_NAME_LEN - 1]
    log, log_size = _log_buffer(log_level, log_size)
    if log is not None:
        attr.log_level, attr.log_size, attr.log_buf = log_level, log_size, ctypes.addressof(log)
    keep = []
    if fd_array:
        arr = (ctypes.c_int32 * len(fd_array))(*fd_array)
        keep.append(arr)
        attr.fd_array = ctypes.addressof(arr)
    for field, data, rec in (("func_info", func_info, func_info_rec_size),
                             ("line_info", line_info, line_info_rec_size)):
        if data:
            buf, ptr = _buf(data)
            keep.append(buf)
            setattr(attr, field, ptr)
            setattr(attr, f"{field}_rec_size", rec)
            setattr(attr, f"{field}_cnt", len(data) // rec)
    try:
        fd = bpf(Cmd.PROG_LOAD, attr, context)
    except BPFError as exc:
        exc.log, exc.log_true_size = _log_text(log), attr.log_true_size
        raise
    return LoadResult(fd, _log_text(log), attr.log_true_size)


def prog_test_run(prog_fd: int, *, data_in: bytes | None = None, data_size_out: int = 0,
                  ctx_in: bytes | None = None, ctx_size_out: int = 0, repeat: int = 0,
                  flags: int = 0, cpu: int = 0, batch_size: int = 0,
                  context: str = "") -> TestRunOutput:
    """BPF_PROG_TEST_RUN. ENOSPC (an output buffer too small) raises with ``data_size_out``
    and ``ctx_size_out`` set to what the kernel needed."""
    din, din_ptr = _buf(data_in)
    cin, cin_ptr = _buf(ctx_in)
    dout = ctypes.create_string_buffer(data_size_out) if data_size_out else None
    cout = ctypes.create_string_buffer(ctx_size_out) if ctx_size_out else None
    attr = TestRunAttr(prog_fd=prog_fd, repeat=repeat, flags=flags, cpu=cpu, batch_size=batch_size)
    if data_in is not None:
        attr.data_in, attr.data_size_in = din_ptr, len(data_in)
    if ctx_in is not None:
        attr.ctx_in, attr.ctx_size_in = cin_ptr, len(ctx_in)
    if dout is not None:
        attr.data_out, attr.data_size_out = ctypes.addressof(dout), data_size_out
    if cout is not None:
        attr.ctx_out, attr.ctx_size_out = ctypes.addressof(cout), ctx_size_out
    try:
        bpf(Cmd.PROG_TEST_RUN, attr, context)
    except BPFError as exc:
        exc.data_size_out = attr.data_size_out
        exc.ctx_size_out = attr.ctx_size_out
        raise
    from .prog_results import TestRunOutput

    data = dout.raw[:attr.data_size_out] if dout is not None else None
    ctx = cout.raw[:attr.ctx_size_out] if cout is not None else None
    if ctx is None and ctx_in is not None and cin is not None:
        ctx = bytes(cin)[:len(ctx_in)]  # BPF_PROG_TYPE_SYSCALL writes back into ctx_in
    return TestRunOutput(attr.retval, data, attr.data_size_out, ctx, attr.ctx_size_out, attr.duration)


def btf_load(data: bytes, *, log_level: int = 0, log_size: int = 0, flags: int = 0,
             token_fd: int = 0, context: str = "") -> LoadResult:
    """BPF_BTF_LOAD. On failure the raised error carries ``log`` and ``log_true_size``."""
    blob, ptr = _buf(data)
    attr = BtfLoadAttr(btf=ptr, btf_size=len(data), btf_flags=flags, btf_token_fd=token_fd)
    log, log_size = _log_buffer(log_level, log_size)
    if log is not None:
        attr.btf_log_buf, attr.btf_log_size, attr.btf_log_level = ctypes.addressof(log), log_size, log_level
    try:
        fd = bpf(Cmd.BTF_LOAD, attr, context)
    except BPFError as exc:
        exc.log, exc.log_true_size = _log_text(log), attr.btf_log_true_size
        raise
    return LoadResult(fd, _log_text(log), attr.btf_log_true_size)


def obj_get_info(fd: int, info: ctypes.Structure, context: str = "") -> ctypes.Structure:
    """BPF_OBJ_GET_INFO_BY_FD into ``info`` (pointer fields in it must already be set)."""
    obj_get_info_by_fd(fd, info, context)
    return info


def prog_info(fd: int) -> ProgInfo:
    """The fixed-size part of struct bpf_prog_info (counts and lengths, no arrays)."""
    return obj_get_info(fd, ProgInfo(), f"program info of fd {fd}")


def prog_info_full(fd: int, *, xlated: bool = True, jited: bool = False) -> ProgInfoFull:
    """bpf_prog_info plus its arrays: two calls, the first to learn the lengths."""
    first = prog_info(fd)
    info = ProgInfo()
    keep = []
    nmaps = first.nr_map_ids
    if nmaps:
        ids = (ctypes.c_uint32 * nmaps)()
        keep.append(ids)
        info.nr_map_ids, info.map_ids = nmaps, ctypes.addressof(ids)
    xl = ji = None
    if xlated and first.xlated_prog_len:
        xl = ctypes.create_string_buffer(first.xlated_prog_len)
        info.xlated_prog_len, info.xlated_prog_insns = first.xlated_prog_len, ctypes.addressof(xl)
    if jited and first.jited_prog_len:
        ji = ctypes.create_string_buffer(first.jited_prog_len)
        info.jited_prog_len, info.jited_prog_insns = first.jited_prog_len, ctypes.addressof(ji)
    obj_get_info(fd, info, f"program info of fd {fd}")
    from .prog_results import ProgInfoFull

    map_ids = tuple(keep[0][:min(nmaps, info.nr_map_ids)]) if nmaps else ()
    # The kernel zeroes the pointer when it may not dump (bpf_dump_raw_ok()).
    xbytes = xl.raw[:info.xlated_prog_len] if xl is not None and info.xlated_prog_insns else b""
    jbytes = ji.raw[:info.jited_prog_len] if ji is not None and info.jited_prog_insns else b""
    return ProgInfoFull(info, xbytes, jbytes, map_ids)


def link_create(attr: LinkCreateAttr, context: str = "") -> int:
    """BPF_LINK_CREATE with a filled :class:`LinkCreateAttr`; returns the raw link fd.

    Per-kind fields go in ``attr.u`` (``attr.u.tracing.cookie``, ``attr.u.tcx.relative_fd``...);
    buffers they point to must stay alive for the call.
    """
    return bpf(Cmd.LINK_CREATE, attr, context)


def __getattr__(name: str):
    if name in LAZY:
        module = f"{__package__}.{LAZY[name]}"
        __import__(module)
        return getattr(sys.modules[module], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
