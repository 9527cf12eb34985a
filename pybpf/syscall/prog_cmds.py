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
import errno

from pybpf._record import Record

from .attr_prog import (BPF_OBJ_NAME_LEN, BtfLoadAttr, LinkCreateAttr, LinkDetachAttr, LinkInfo,
                        LinkUpdateAttr, ProgAttachAttr, ProgInfo, ProgLoadAttr, ProgQueryAttr,
                        RawTracepointOpenAttr, TestRunAttr)
from .bpf import Cmd, bpf
from .errors import BPFError, ObjectNotFound
from .map_cmds import obj_get_info_by_fd

TYPE_CHECKING = False  # typing is not imported at run time: see pybpf._record
if TYPE_CHECKING:
    from .prog_results import ProgInfoFull, QueryResult, TestRunOutput

__all__ = [
    "LoadResult", "TestRunOutput", "ProgInfoFull", "QueryResult",
    "prog_load", "prog_test_run", "btf_load", "prog_info", "prog_info_full",
    "link_info", "prog_attach", "prog_detach", "prog_query", "link_create", "link_update",
    "link_detach", "raw_tracepoint_open",
]

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


def link_info(fd: int) -> tuple[LinkInfo, str]:
    """struct bpf_link_info, and the tracepoint name for raw_tracepoint links."""
    info = obj_get_info(fd, LinkInfo(), f"link info of fd {fd}")
    name = ""
    if info.type == 1:  # BPF_LINK_TYPE_RAW_TRACEPOINT: second call to fetch the name
        size = info.u.raw_tracepoint.tp_name_len or 1
        buf = ctypes.create_string_buffer(size)
        again = LinkInfo()
        again.u.raw_tracepoint.tp_name = ctypes.addressof(buf)
        again.u.raw_tracepoint.tp_name_len = size
        info = obj_get_info(fd, again, f"link info of fd {fd}")
        name = buf.value.decode(errors="replace")
    return info, name


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0, *,
                replace_prog_fd: int = 0, relative_fd: int = 0, expected_revision: int = 0,
                context: str = "") -> None:
    """BPF_PROG_ATTACH (cgroups, sockmaps, flow dissector, lirc, legacy tcx/mprog)."""
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                          attach_flags=flags, replace_bpf_fd=replace_prog_fd,
                          relative_fd=relative_fd, expected_revision=expected_revision)
    bpf(Cmd.PROG_ATTACH, attr, context)


def prog_detach(target_fd: int, attach_type: int, prog_fd: int = 0, *, flags: int = 0,
                relative_fd: int = 0, expected_revision: int = 0, context: str = "") -> None:
    """BPF_PROG_DETACH."""
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                          attach_flags=flags, relative_fd=relative_fd,
                          expected_revision=expected_revision)
    bpf(Cmd.PROG_DETACH, attr, context)


def prog_query(target_fd: int, attach_type: int, query_flags: int = 0, *, max_progs: int = 64,
               context: str = "") -> QueryResult:
    """BPF_PROG_QUERY: the programs (and links, for mprog hooks) attached at a hook."""
    ids = (ctypes.c_uint32 * max_progs)()
    flags = (ctypes.c_uint32 * max_progs)()
    links = (ctypes.c_uint32 * max_progs)()
    attr = ProgQueryAttr(target_fd=target_fd, attach_type=attach_type, query_flags=query_flags,
                         prog_ids=ctypes.addressof(ids), prog_cnt=max_progs,
                         prog_attach_flags=ctypes.addressof(flags))
    try:
        bpf(Cmd.PROG_QUERY, attr, context)
    except BPFError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return prog_query(target_fd, attach_type, query_flags, max_progs=attr.prog_cnt, context=context)
    from .prog_results import QueryResult

    n = attr.prog_cnt
    # link_ids are reported only for mprog hooks (tcx, netkit); ask again with the array.
    link_list: tuple[int, ...] = ()
    if n:
        attr2 = ProgQueryAttr(target_fd=target_fd, attach_type=attach_type, query_flags=query_flags,
                              prog_ids=ctypes.addressof(ids), prog_cnt=max_progs,
                              link_ids=ctypes.addressof(links))
        try:
            bpf(Cmd.PROG_QUERY, attr2, context)
            link_list = tuple(links[:n])
        except BPFError:
            link_list = ()
    return QueryResult(attr.attach_flags, tuple(ids[:n]), tuple(flags[:n]), link_list, attr.revision)


def link_create(attr: LinkCreateAttr, context: str = "") -> int:
    """BPF_LINK_CREATE with a filled :class:`LinkCreateAttr`; returns the raw link fd.

    Per-kind fields go in ``attr.u`` (``attr.u.tracing.cookie``, ``attr.u.tcx.relative_fd``...);
    buffers they point to must stay alive for the call.
    """
    return bpf(Cmd.LINK_CREATE, attr, context)


def link_update(link_fd: int, new_prog_fd: int, *, old_prog_fd: int = 0, flags: int = 0,
                context: str = "") -> None:
    """BPF_LINK_UPDATE: swap the program behind a link (BPF_F_REPLACE checks ``old_prog_fd``)."""
    bpf(Cmd.LINK_UPDATE, LinkUpdateAttr(link_fd=link_fd, new_prog_fd=new_prog_fd, flags=flags,
                                        old_prog_fd=old_prog_fd), context)


def link_detach(link_fd: int, context: str = "") -> None:
    """BPF_LINK_DETACH: detach the link from its hook while the fd stays open (link defunct)."""
    bpf(Cmd.LINK_DETACH, LinkDetachAttr(link_fd=link_fd), context)


def raw_tracepoint_open(name: str | None, prog_fd: int, cookie: int = 0, context: str = "") -> int:
    """BPF_RAW_TRACEPOINT_OPEN; ``name`` None for tp_btf/fentry-style programs. Returns the link fd."""
    buf = ctypes.create_string_buffer(name.encode()) if name else None
    attr = RawTracepointOpenAttr(name=ctypes.addressof(buf) if buf is not None else 0,
                                 prog_fd=prog_fd, cookie=cookie)
    # ENOENT here means "no such tracepoint", not a missing map key.
    return bpf(Cmd.RAW_TRACEPOINT_OPEN, attr, context or (f"raw tracepoint {name!r}" if name else ""),
               errors={errno.ENOENT: ObjectNotFound})


def __getattr__(name: str):
    # The result types of test runs, info dumps and queries are defined on first use
    # (pybpf.syscall.prog_results): loading a program, what every tool does at
    # start-up, needs only LoadResult, and each dataclass costs its creation time.
    if name in ("TestRunOutput", "ProgInfoFull", "QueryResult"):
        from . import prog_results
        return getattr(prog_results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
