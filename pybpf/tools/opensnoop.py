"""opensnoop: who opens which file, one line per open(), openat() or openat2().

    # pybpf tool opensnoop --path /etc/
    PID     COMM             FILE
    4242    cat              /etc/shadow

The file name is copied from the caller's memory with
``bpf_probe_read_user_str``. ``--path PREFIX`` is checked in the kernel, eight
bytes at a time against constants baked into the program, so absolute names
outside the prefix cost no wakeup and no copy to user space: the
security-audit use ("who reads /etc/shadow") stays cheap on a busy machine.

A relative name ("passwd" after ``cd /etc``, or ``openat(dirfd, "shadow")``)
says nothing about where the file is, so under ``--path`` the kernel lets
every relative name through and user space resolves it against the opener's
working directory (``/proc/TID/cwd``) or its ``dirfd`` (``/proc/TID/fd/N``),
then applies the prefix; the line shows the resolved name. That is best
effort, and these limits remain:

- resolving happens after the open, so a process that has exited, changed
  directory or closed ``dirfd`` by then is resolved wrongly or not at all; an
  unresolved relative name is printed as it was passed (never dropped);
- names are compared as written: ``..`` in a relative name is folded
  lexically, but an absolute name with ``..``, ``//`` or a symbolic link on
  the way (``/tmp/link-to-etc/shadow``) does not match ``/etc/``, nor does a
  hard link elsewhere to the same file;
- a name the kernel could not read at syscall entry (its page not yet
  faulted in) is not seen under ``--path``;
- inside a chroot or container, names are relative to the opener's root.

Attach points: the tracepoints ``syscalls:sys_enter_open`` (where the
architecture has open(2): x86_64 does, arm64 does not), ``sys_enter_openat``
and ``sys_enter_openat2``, each record's ``filename`` and ``dfd`` offsets read
from its tracefs format; or, where the kernel has kprobes, one kprobe on
``do_sys_openat2`` (dfd, filename, how), which all three reach and BCC uses too.
"""

from __future__ import annotations

import os
import struct
import sys

from pybpf.asm import Builder, r0, r1, r2, r3, r6, r7, r10

from . import common, runtime

NAME = "opensnoop"
NAME_MAX = 256
# struct event { u32 pid; u32 tid; u32 uid; s32 dfd; char comm[16]; char fname[NAME_MAX]; }
RECORD = struct.Struct(f"<IIIi16s{NAME_MAX}s")
EVENT_AT = -RECORD.size            # the record sits at the bottom of the used stack
COMM_AT = EVENT_AT + 16
FNAME_AT = EVENT_AT + 32           # 8-byte aligned: the prefix compare loads u64s
MAX_PREFIX = NAME_MAX - 1
AT_FDCWD = -100
_FILENAME_OFFSET = 24              # syscalls:sys_enter_openat "filename" (checked by the tests)
_DFD_OFFSET = 16                   # syscalls:sys_enter_openat "dfd"
# The syscalls traced, as tracepoints; only sys_enter_openat must exist.
TRACEPOINTS = ("sys_enter_open", "sys_enter_openat", "sys_enter_openat2")


def filename_offset(tracepoint: str = "sys_enter_openat") -> int:
    """Offset of ``filename`` in a syscalls tracepoint record (from its tracefs format)."""
    from pybpf.tracefs.events import event_format
    return event_format("syscalls", tracepoint).field("filename").offset


def tracepoint_layouts() -> dict[tuple[int, int | None], list[str]]:
    """{(filename offset, dfd offset or None): [tracepoints]} for the open syscalls here.

    Tracepoints with the same layout share one program. A missing
    ``sys_enter_open`` (arm64 has no open(2)) or ``sys_enter_openat2``
    (before 5.6) is skipped; a missing ``sys_enter_openat`` is an error.
    """
    from pybpf.tracefs import TracefsError
    from pybpf.tracefs.events import event_format
    layouts: dict[tuple[int, int | None], list[str]] = {}
    for name in TRACEPOINTS:
        try:
            fmt = event_format("syscalls", name)
        except TracefsError as exc:
            if name != "sys_enter_openat" and exc.errno == 2:  # ENOENT: no such syscall here
                continue
            raise
        dfd = next((f.offset for f in fmt.fields if f.name == "dfd"), None)
        layouts.setdefault((fmt.field("filename").offset, dfd), []).append(name)
    return layouts


def build_program(mode: str, events: runtime.Events, pid: int = 0, prefix: bytes = b"",
                  filename_at: int = _FILENAME_OFFSET,
                  dfd_at: int | None = _DFD_OFFSET) -> Builder:
    """The BPF program: copy the file name, keep it if it may be under ``prefix``, send it.

    ``filename_at``/``dfd_at`` are the tracepoint record's field offsets
    (``dfd_at=None``: open(2), which has no dfd; AT_FDCWD is recorded).
    Names not starting with ``/`` pass the prefix check: user space resolves them.
    """
    if len(prefix) > MAX_PREFIX:
        raise ValueError(f"--path prefix is {len(prefix)} bytes; at most {MAX_PREFIX} fit")
    b = Builder()
    b.mov(r6, r1)                                          # r6 = ctx
    b.call("get_current_pid_tgid")
    b.stx(r10, EVENT_AT + 4, r0, "u32")                    # event.tid (low half)
    b.rsh(r0, 32)
    if pid:
        b.jump_if(r0, "!=", pid, "out")
    b.stx(r10, EVENT_AT, r0, "u32")                        # event.pid
    # r7 = dfd, r3 = the user pointer to the file name
    if mode == "kprobe":
        b.ldx(r7, r6, runtime.pt_regs_offset("parm1"))     # do_sys_openat2(dfd, filename, how)
        b.ldx(r3, r6, runtime.pt_regs_offset("parm2"))
    else:
        if dfd_at is None:
            b.mov(r7, AT_FDCWD)
        else:
            b.ldx(r7, r6, dfd_at)                          # a long holding an int
        b.ldx(r3, r6, filename_at)
    b.stx(r10, EVENT_AT + 12, r7, "u32")                   # event.dfd
    b.stack_ptr(r1, FNAME_AT)
    b.mov(r2, NAME_MAX)
    b.call("probe_read_user_str")                          # event.fname (NUL-terminated)
    if prefix:
        b.ldx(r1, r10, FNAME_AT, "u8")
        b.jump_if(r1, "==", 0, "out")                      # unreadable (or empty) name
        b.jump_if(r1, "!=", ord("/"), "send")              # relative: user space resolves it
    # Prefix filter: compare 8 bytes at a time, the last chunk masked to the prefix length.
    for i in range(0, len(prefix), 8):
        chunk = prefix[i:i + 8]
        b.ldx(r1, r10, FNAME_AT + i, "u64")
        if len(chunk) < 8:
            b.ld_imm64(r2, (1 << (8 * len(chunk))) - 1)
            b.and_(r1, r2)
        b.ld_imm64(r2, int.from_bytes(chunk, "little"))
        b.jump_if(r1, "!=", r2, "out")
    b.label("send")
    b.call("get_current_uid_gid")
    b.stx(r10, EVENT_AT + 8, r0, "u32")                    # event.uid
    b.stack_ptr(r1, COMM_AT)
    b.mov(r2, 16)
    b.call("get_current_comm")                             # event.comm
    events.emit(b, r6, EVENT_AT)
    b.label("out")
    b.ret(0)
    return b


def resolve(tid: int, dfd: int, name: bytes) -> bytes:
    """``name`` made absolute against the opener's cwd or ``dfd``; unchanged if it cannot be.

    Best effort (see the module docstring): the opener may have exited,
    moved or closed ``dfd`` since. ``..`` is folded lexically.
    """
    if name[:1] == b"/":
        return name
    where = b"cwd" if dfd == AT_FDCWD else b"fd/%d" % dfd
    try:
        base = os.readlink(b"/proc/%d/%s" % (tid, where))
    except OSError:
        return name
    if base[:1] != b"/":                                   # "pipe:[42]", "anon_inode:..."
        return name
    return os.path.normpath(os.path.join(base, name))


def prefix_bytes(path: str) -> bytes:
    """The ``--path`` argument as the kernel compares it.

    os.fsencode gives back the bytes of a non-UTF-8 argument; a relative
    prefix is taken from the current directory, as a shell would, keeping its
    trailing ``/`` (``/etc/`` must not match ``/etcetera``).
    """
    raw = os.fsencode(path)
    if raw and raw[:1] != b"/":
        full = os.path.normpath(os.path.join(os.getcwdb(), raw))
        raw = full + b"/" if raw.endswith(b"/") and full != b"/" else full
    return raw


def options() -> common.Options:
    """opensnoop's command-line options (parsed in :func:`main`, checked by the tests)."""
    p = common.parser(NAME, "Trace open(), openat() and openat2() calls: PID, command and "
                            "file name.")
    p.add("--path", default="", metavar="PREFIX",
          help="only files whose name starts with PREFIX, e.g. /etc/ (checked in-kernel; "
               f"at most {MAX_PREFIX} bytes). Relative names are resolved against the "
               "opener's cwd or dirfd, best effort (after the open); absolute names are "
               "compared as written, so '..', '//' or a symbolic link on the way hides "
               "a match")
    common.add_attach_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = options()
    args = p.parse(argv)
    prefix = prefix_bytes(args.path)
    if len(prefix) > MAX_PREFIX:
        p.error(f"--path: the prefix is {len(prefix)} bytes long; at most {MAX_PREFIX} bytes "
                "fit the kernel-side buffer")
    common.require_root(NAME)
    out = common.Output(args.json, [("pid", "%-7s"), ("comm", "%-16s"), ("file", "%s")])

    def show(rec: tuple) -> None:
        name = rec[5].split(b"\0", 1)[0]
        if prefix and name[:1] != b"/":
            name = resolve(rec[1], rec[3], name)
            if name[:1] == b"/" and not name.startswith(prefix):
                return
        out.event({"pid": rec[0], "uid": rec[2], "comm": common.cstr(rec[4]),
                   "file": common.cstr(name)})  # invalid UTF-8 replaced, as BCC does

    def start(stack):
        mode = runtime.attach_mode(args.attach)
        events = stack.enter_context(runtime.Events(RECORD))
        events.open(show)  # before attaching, so that no event is lost
        kind = runtime.program_type(mode)
        if mode == "kprobe":
            layouts = {(_FILENAME_OFFSET, _DFD_OFFSET): ["do_sys_openat2"]}
        else:
            layouts = tracepoint_layouts()
        where = []
        for (filename_at, dfd_at), points in layouts.items():
            prog = stack.enter_context(runtime.load(
                build_program(mode, events, args.pid or 0, prefix, filename_at, dfd_at),
                kind, NAME))
            for point in points:
                link, desc = runtime.attach(prog, mode, kprobe=point,
                                            tracepoint=f"syscalls:{point}")
                stack.enter_context(link)
                where.append(desc)
        what = "opens via " + ", ".join(where)
        return what + (f" for {common.cstr(prefix)}*" if prefix else ""), events.poll

    return runtime.run(NAME, args.duration, start, header=out.header)


if __name__ == "__main__":
    sys.exit(main())
