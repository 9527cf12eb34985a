"""Checks that run inside each kernel of the matrix; prints one JSON line per check.

Run by tests/kernels/test_kernels_matrix.py through ``vm.run_in_vm`` as a
plain script (importing pytest costs seconds under TCG)::

    python3 tests/kernels/guest_checks.py [CHECK ...]

Each line is ``PYBPF-CHECK {"name", "status", "detail", "data", "seconds"}``
with status ``pass``, ``fail`` or ``skip``. A check is one function decorated
with ``@check``: it returns a dict of facts (pass), raises :class:`Skip` when a
piece of pybpf it needs does not exist yet, and raises anything else to fail.
The host side asserts on ``data`` again (see ``HOST_EXPECT`` in the test).

The framework (``check``, ``Skip``, ``need``, ``run``) is in guest_lib.py;
guest_tools.py (the tools' kprobe path) and guest_verifier.py (the verifier
differential) register their checks into the same table, after these.

Checks named ``selftest_*`` use only ctypes: they prove the harness (boot,
root, bpf(2), perf events, the trigger) end to end, independent of pybpf.
Checks named ``pybpf_*`` use pybpf's own API and skip, naming the missing
piece, until it exists; once it exists, a wrong result fails the matrix.
"""

from __future__ import annotations

import ctypes
import errno
import gzip
import os
import platform
import struct
import sys
from typing import Callable

from guest_lib import CHECKS, Skip, check, need, run  # noqa: F401 (re-exported)

CONFIG_OPTIONS = ("CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS", "CONFIG_BPF_KPROBE_OVERRIDE",
                  "CONFIG_FPROBE", "CONFIG_DEBUG_INFO_BTF", "CONFIG_BPF_LSM", "CONFIG_BPF_JIT",
                  "CONFIG_FUNCTION_TRACER", "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS")
GETPID_CALLS = 1000
SYS_getpid = 39  # x86-64
GETPID_SYMBOL = "__x64_sys_getpid"


def trigger_getpid(n: int = GETPID_CALLS) -> None:
    """Exactly ``n`` getpid system calls (os.getpid() is cached by nothing, but be explicit)."""
    syscall = _libc.syscall
    for _ in range(n):
        syscall(SYS_getpid)


# ------------------------------------------------------------------ boot facts

def kernel_config() -> dict[str, str]:
    """CONFIG_* values of the running kernel ('n' for '# ... is not set')."""
    release = platform.release()
    for path in ["/proc/config.gz", f"/boot/config-{release}"]:
        try:
            raw = (gzip.open(path) if path.endswith(".gz") else open(path, "rb")).read().decode()
            break
        except OSError:
            continue
    else:
        return {}
    config = {}
    for line in raw.splitlines():
        if line.startswith("CONFIG_"):
            k, _, v = line.partition("=")
            config[k] = v
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[2:-11]] = "n"
    return config


@check
def check_boot() -> dict:
    uname = platform.uname()
    config = kernel_config()
    if not config:
        raise AssertionError(f"no kernel config found for {uname.release}")
    if os.geteuid() != 0:
        raise AssertionError(f"not root in the guest (euid {os.geteuid()})")
    return {"release": uname.release, "version": uname.version, "machine": uname.machine,
            "config": {k: config.get(k, "absent") for k in CONFIG_OPTIONS},
            "kprobe_pmu": os.path.exists("/sys/bus/event_source/devices/kprobe/type"),
            "btf_vmlinux": os.path.exists("/sys/kernel/btf/vmlinux"),
            "tracefs": os.path.exists("/sys/kernel/tracing/events"),
            "python": sys.version.split()[0]}


# ------------------------------------------------------------------ selftest: ctypes only

_libc = ctypes.CDLL(None, use_errno=True)
NR_bpf, NR_perf_event_open = 321, 298
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_PROG_LOAD = 0, 1, 5
BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACEPOINT = 2, 5
PERF_TYPE_TRACEPOINT = 2
PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_SET_BPF = 0x2400, 0x40042408
PERF_FLAG_FD_CLOEXEC = 8


def _sys_bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, 144)
    fd = _libc.syscall(NR_bpf, cmd, buf, 144)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bpf(cmd {cmd}): {errno.errorcode.get(e, e)}")
    return fd


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _raw_counter_prog(map_fd: int) -> bytes:
    """key=0; v=map_lookup_elem(map, &key); if v: lock *(u64 *)v += 1; return 0."""
    return b"".join([
        _insn(0x62, 10, 0, -4, 0),        # *(u32 *)(r10 -4) = 0
        _insn(0x18, 1, 1, 0, map_fd),     # r1 = map[fd] (ld_imm64, BPF_PSEUDO_MAP_FD)
        _insn(0),
        _insn(0xbf, 2, 10),               # r2 = r10
        _insn(0x07, 2, 0, 0, -4),         # r2 += -4
        _insn(0x85, imm=1),               # call bpf_map_lookup_elem
        _insn(0x15, 0, 0, 2, 0),          # if r0 == 0 goto +2
        _insn(0xb7, 1, imm=1),            # r1 = 1
        _insn(0xdb, 0, 1, 0, 0),          # lock *(u64 *)(r0 +0) += r1
        _insn(0xb7, 0, imm=0),            # r0 = 0
        _insn(0x95)])                     # exit


def _raw_count(perf_type: int, config: int, config1: int, prog_type: int) -> int:
    """Attach a counter to a perf event, make GETPID_CALLS getpid calls, return the count."""
    fds = []
    try:
        map_fd = _sys_bpf(BPF_MAP_CREATE, struct.pack("IIII", BPF_MAP_TYPE_ARRAY, 4, 8, 1))
        fds.append(map_fd)
        insns = ctypes.create_string_buffer(_raw_counter_prog(map_fd))
        lic = ctypes.create_string_buffer(b"GPL")
        log = ctypes.create_string_buffer(1 << 16)
        attr = struct.pack("IIQQIIQ", prog_type, (len(insns) - 1) // 8, ctypes.addressof(insns),
                           ctypes.addressof(lic), 1, len(log), ctypes.addressof(log))
        try:
            prog_fd = _sys_bpf(BPF_PROG_LOAD, attr)
        except OSError as exc:
            raise AssertionError(f"{exc}; verifier log: {log.value.decode(errors='replace')[-500:]}")
        fds.append(prog_fd)
        pattr = bytearray(128)
        struct.pack_into("IIQ", pattr, 0, perf_type, 128, config)
        struct.pack_into("QQ", pattr, 56, config1, 0)  # config1 (kprobe_func), config2 (probe_offset)
        struct.pack_into("Q", pattr, 16, 1)  # sample_period
        pbuf = ctypes.create_string_buffer(bytes(pattr), 128)
        pfd = _libc.syscall(NR_perf_event_open, pbuf, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
        if pfd < 0:
            e = ctypes.get_errno()
            raise AssertionError(f"perf_event_open: {errno.errorcode.get(e, e)}")
        fds.append(pfd)
        import fcntl
        fcntl.ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog_fd)
        fcntl.ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0)
        trigger_getpid()
        key, value = ctypes.create_string_buffer(4), ctypes.create_string_buffer(8)
        _sys_bpf(BPF_MAP_LOOKUP_ELEM, struct.pack("IIQQQ", map_fd, 0, ctypes.addressof(key),
                                                  ctypes.addressof(value), 0))
        return struct.unpack("<Q", value.raw)[0]
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _tracefs() -> str:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.exists(root + "/events"):
            return root
    raise AssertionError("tracefs is not mounted in the guest")


@check
def check_selftest_tracepoint_getpid() -> dict:
    tp_id = int(open(_tracefs() + "/events/syscalls/sys_enter_getpid/id").read())
    count = _raw_count(PERF_TYPE_TRACEPOINT, tp_id, 0, BPF_PROG_TYPE_TRACEPOINT)
    if count != GETPID_CALLS:
        raise AssertionError(f"tracepoint syscalls/sys_enter_getpid counted {count}, want {GETPID_CALLS}")
    return {"count": count, "tracepoint_id": tp_id}


@check
def check_selftest_kprobe_getpid() -> dict:
    kprobe_type = int(open("/sys/bus/event_source/devices/kprobe/type").read())
    name = ctypes.create_string_buffer(GETPID_SYMBOL.encode())
    count = _raw_count(kprobe_type, 0, ctypes.addressof(name), BPF_PROG_TYPE_KPROBE)
    if count != GETPID_CALLS:
        raise AssertionError(f"kprobe {GETPID_SYMBOL} counted {count}, want {GETPID_CALLS}")
    return {"count": count, "pmu_type": kprobe_type}


# ------------------------------------------------------------------ pybpf's own API
#
# Hooks these checks call (names in one place, so owners see what is relied on):
#   pybpf.asm.Instruction, pybpf.asm.encode
#   pybpf.syscall.map_create(map_type, key_size, value_size, max_entries) -> FD
#   pybpf.syscall.map_update_elem(fd, key, value) / map_lookup_elem(fd, key, value_out)
#   pybpf.syscall.prog_load(insns: bytes, prog_type, license="GPL") -> LoadResult(.fd)
#   pybpf.link.kprobe.attach_kprobe(prog, symbol) -> Link    (PMU, else tracefs)
#   pybpf.link.kprobe.attach_kretprobe(prog, symbol, maxactive=N) -> Link  (N > 0: tracefs)
#   pybpf.link.kprobe.attach_kprobe(prog, symbol, pmu=False)  (wanted: force tracefs for kprobes)
#   pybpf.link.kprobe.resolve_symbol("sys_getpid") -> "__x64_sys_getpid"
ATTACH_KPROBE = "pybpf.link.kprobe.attach_kprobe"
ATTACH_KRETPROBE = "pybpf.link.kprobe.attach_kretprobe"


def _pybpf_counter(prog_type: int):
    """(map FD, program FD) of the counter program, built with pybpf.asm and loaded by pybpf."""
    asm = need("pybpf.asm")
    map_create = need("pybpf.syscall.map_create")
    prog_load = need("pybpf.syscall.prog_load")
    FD = need("pybpf.syscall.FD")
    I = asm.Instruction
    map_fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    insns = [I(0x62, 10, 0, -4, 0), I(0x18, 1, 1, 0, int(map_fd)), I(0xbf, 2, 10), I(0x07, 2, 0, 0, -4),
             I(0x85, imm=1), I(0x15, 0, 0, 2, 0), I(0xb7, 1, imm=1), I(0xdb, 0, 1, 0, 0),
             I(0xb7, 0, imm=0), I(0x95)]
    try:
        prog = FD(prog_load(asm.encode(insns), prog_type, license="GPL").fd)
    except BaseException:
        map_fd.close()
        raise
    return map_fd, prog


def _pybpf_count(attach: Callable, prog_type: int = BPF_PROG_TYPE_KPROBE) -> int:
    """Attach the counter with ``attach(prog_fd) -> Link``, make the calls, return the count."""
    lookup = need("pybpf.syscall.map_lookup_elem")
    map_fd, prog = _pybpf_counter(prog_type)
    try:
        link = attach(int(prog))
        try:
            trigger_getpid()
        finally:
            link.close()
        value = ctypes.create_string_buffer(8)
        lookup(int(map_fd), struct.pack("<I", 0), value)
        return struct.unpack("<Q", value.raw)[0]
    finally:
        prog.close()
        map_fd.close()


def _expect_count(what: str, count: int) -> dict:
    if count != GETPID_CALLS:
        raise AssertionError(f"{what} counted {count}, want {GETPID_CALLS}")
    return {"count": count}


def _kprobe_events() -> list[str]:
    with open(_tracefs() + "/kprobe_events") as f:
        return f.read().splitlines()


@check
def check_pybpf_syscall_map() -> dict:
    map_create = need("pybpf.syscall.map_create")
    update = need("pybpf.syscall.map_update_elem")
    lookup = need("pybpf.syscall.map_lookup_elem")
    with map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4) as fd:
        update(int(fd), struct.pack("<I", 3), struct.pack("<Q", 0x1122334455667788))
        out = ctypes.create_string_buffer(8)
        lookup(int(fd), struct.pack("<I", 3), out)
        got = struct.unpack("<Q", out.raw)[0]
    if got != 0x1122334455667788:
        raise AssertionError(f"array map value {got:#x} after update with 0x1122334455667788")
    return {"value": got}


@check
def check_pybpf_kprobe_getpid() -> dict:
    attach_kprobe = need(ATTACH_KPROBE)
    return _expect_count(f"attach_kprobe({GETPID_SYMBOL!r})",
                         _pybpf_count(lambda prog: attach_kprobe(prog, GETPID_SYMBOL)))


@check
def check_pybpf_kretprobe_getpid() -> dict:
    attach_kretprobe = need(ATTACH_KRETPROBE)
    return _expect_count(f"attach_kretprobe({GETPID_SYMBOL!r})",
                         _pybpf_count(lambda prog: attach_kretprobe(prog, GETPID_SYMBOL)))


@check
def check_pybpf_syscall_prefix_getpid() -> dict:
    """``sys_getpid`` must reach the arch wrapper (__x64_sys_getpid) and count every call."""
    attach_kprobe = need(ATTACH_KPROBE)
    resolve = need("pybpf.link.kprobe.resolve_symbol")
    resolved = resolve("sys_getpid")
    if resolved != GETPID_SYMBOL:
        raise AssertionError(f"resolve_symbol('sys_getpid') = {resolved!r}, want {GETPID_SYMBOL!r}")
    data = _expect_count("attach_kprobe('sys_getpid')",
                         _pybpf_count(lambda prog: attach_kprobe(prog, "sys_getpid")))
    return {**data, "resolved": resolved}


def _tracefs_attach(attach: Callable, what: str) -> dict:
    """Count through the tracefs kprobe_events path; the entry must exist while attached, then go."""
    before = set(_kprobe_events())
    seen: list[str] = []

    def attach_and_look(prog):
        link = attach(prog)
        seen.extend(sorted(set(_kprobe_events()) - before))
        return link

    data = _expect_count(what, _pybpf_count(attach_and_look))
    if not seen:
        raise AssertionError(f"{what}: no kprobe_events entry while attached (not the tracefs path)")
    left = sorted(set(_kprobe_events()) - before)
    if left:
        raise AssertionError(f"{what}: kprobe_events entries left after close(): {left}")
    return {**data, "event": seen[0]}


@check
def check_pybpf_kretprobe_tracefs_getpid() -> dict:
    """maxactive is only settable through kprobe_events, so it takes the legacy path."""
    attach_kretprobe = need(ATTACH_KRETPROBE)
    return _tracefs_attach(lambda prog: attach_kretprobe(prog, GETPID_SYMBOL, maxactive=8),
                           f"attach_kretprobe({GETPID_SYMBOL!r}, maxactive=8)")


@check
def check_pybpf_kprobe_tracefs_getpid() -> dict:
    import inspect
    attach_kprobe = need(ATTACH_KPROBE)
    if "pmu" not in inspect.signature(attach_kprobe).parameters:
        raise Skip(f"{ATTACH_KPROBE}(..., pmu=False) not available (no way to force tracefs)")
    return _tracefs_attach(lambda prog: attach_kprobe(prog, GETPID_SYMBOL, pmu=False),
                           f"attach_kprobe({GETPID_SYMBOL!r}, pmu=False)")


# ------------------------------------------------------------------ fentry / fexit
#
#   pybpf.btf.load_kernel_btf().func_id(name)                 -> the FUNC's BTF id
#   pybpf.link.fentry.load_tracing(insns, name, kind)         -> Program (attach_btf_id = that id)
#   pybpf.link.fentry.attach_tracing(prog, kind, name)        -> Link (BPF_LINK_CREATE)
# The syscall wrapper __x64_sys_getpid is not a FUNC in Debian's BTF (6.1 and
# 6.12: the wrappers are generated by macros without debug info), so the
# target is what getpid() reaches: task_tgid_vnr() is inline and calls
# __task_pid_nr_ns(), a BTF FUNC on both. Other tasks call it too, so the
# program counts only calls made by this process (bpf_get_current_pid_tgid),
# and between attach and detach this process makes only the getpid() calls.
FENTRY_TARGETS = ("__task_pid_nr_ns",)


def _fentry_target() -> tuple[str, int]:
    btf = need("pybpf.btf.load_kernel_btf")()
    errors = []
    for name in FENTRY_TARGETS:
        try:
            return name, btf.func_id(name)
        except Exception as exc:  # noqa: BLE001 - try the next candidate, report all
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise AssertionError("no fentry target in this kernel's BTF: " + "; ".join(errors))


def _tracing_count(kind: str) -> dict:
    """Load the counter as ``kind`` on the getpid wrapper by BTF id, attach, count the calls."""
    asm = need("pybpf.asm")
    load_tracing = need("pybpf.link.fentry.load_tracing")
    attach_tracing = need("pybpf.link.fentry.attach_tracing")
    map_create = need("pybpf.syscall.map_create")
    lookup = need("pybpf.syscall.map_lookup_elem")
    function, func_id = _fentry_target()
    I = asm.Instruction
    with map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1) as map_fd:
        insns = [I(0x85, imm=14),                    # call bpf_get_current_pid_tgid
                 I(0x77, 0, 0, 0, 32),               # r0 >>= 32 (the tgid)
                 I(0x55, 0, 0, 9, os.getpid()),      # if r0 != our pid goto exit
                 I(0x62, 10, 0, -4, 0), I(0x18, 1, 1, 0, int(map_fd)), I(0xbf, 2, 10),
                 I(0x07, 2, 0, 0, -4), I(0x85, imm=1), I(0x15, 0, 0, 2, 0), I(0xb7, 1, imm=1),
                 I(0xdb, 0, 1, 0, 0), I(0xb7, 0, imm=0), I(0x95)]
        with load_tracing(insns, function, kind) as prog:
            info_btf_id = None
            try:
                info_btf_id = prog.info().attach_btf_id
            except Exception:  # noqa: BLE001 - older kernels / info not exposing it: just not reported
                pass
            with attach_tracing(prog, kind, function):
                trigger_getpid()
        value = ctypes.create_string_buffer(8)
        lookup(int(map_fd), struct.pack("<I", 0), value)
        count = struct.unpack("<Q", value.raw)[0]
    data = _expect_count(f"{kind} {function} (BTF id {func_id}, calls from pid {os.getpid()})", count)
    return {**data, "function": function, "btf_id": func_id, "info_attach_btf_id": info_btf_id}


@check
def check_pybpf_fentry_getpid() -> dict:
    return _tracing_count("fentry")


@check
def check_pybpf_fexit_getpid() -> dict:
    return _tracing_count("fexit")


# The tools' kprobe path and the verifier differential register their checks here.
import guest_tools  # noqa: E402,F401
import guest_verifier  # noqa: E402,F401


if __name__ == "__main__":
    unknown = [n for n in sys.argv[1:] if n not in CHECKS]
    if unknown:
        sys.exit(f"unknown check(s) {unknown}; known: {list(CHECKS)}")
    sys.exit(run(sys.argv[1:]))
