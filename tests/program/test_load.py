"""Loading, test runs and info against the running kernel."""

import os
import struct
import subprocess
import sys
import textwrap
import warnings

import pytest

from pybpf.asm import opcodes as op
from pybpf.asm.builder import Builder
from pybpf.asm.instruction import Instruction as I
from pybpf.asm.registers import r0, r1, r2, r10
from pybpf.errors import VerifierError
from pybpf.maps import MapSpec, MapType
from pybpf.program import Program, ProgramSpec, ProgType, SimulatorDisagreement
from pybpf.syscall import prog_cmds
from pybpf.syscall.errors import ObjectNotFound

pytestmark = pytest.mark.kernel

PKT = bytes(range(64))


def _write_first_byte(data_off: int, end_off: int, value: int, rc: int) -> list[I]:
    """if data + 1 <= data_end: data[0] = value; return rc"""
    return [
        I(op.LDX | op.MEM | op.W, 2, 1, data_off), I(op.LDX | op.MEM | op.W, 3, 1, end_off),
        I(op.ALU64 | op.MOV | op.X, 4, 2), I(op.ALU64 | op.ADD | op.K, 4, 0, 0, 1),
        I(op.JMP | op.JGT | op.X, 4, 3, 1), I(op.ST | op.MEM | op.B, 2, 0, 0, value),
        I(op.ALU64 | op.MOV | op.K, 0, 0, 0, rc), I(op.EXIT_OP),
    ]


@pytest.mark.parametrize("rc", [0, 1, 2, 3, 4])  # XDP_ABORTED .. XDP_REDIRECT
def test_xdp_return_codes(ret, rc):
    with ProgramSpec(ret(rc), ProgType.XDP).load() as prog:
        res = prog.test_run(PKT)
        assert res.retval == rc
        assert res.data_out == PKT
        assert res.duration >= 0


def test_xdp_packet_modification_visible():
    with ProgramSpec(_write_first_byte(0, 4, 0xAB, 3), "xdp").load() as prog:
        res = prog.test_run(PKT)
    assert res.retval == 3
    assert res.data_out == b"\xab" + PKT[1:]


def test_xdp_adjust_head_grows_data_out():
    grow = [I(op.ALU64 | op.MOV | op.K, 2, 0, 0, -16), I(op.CALL_OP, imm=44),  # bpf_xdp_adjust_head
            I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 2), I(op.EXIT_OP)]
    with ProgramSpec(grow, "xdp").load() as prog:
        res = prog.test_run(PKT)
        assert len(res.data_out) == len(PKT) + 16 and res.data_out.endswith(PKT)
        # An output buffer the kernel finds too small is retried at the size it reports.
        res = prog.test_run(PKT, data_size_out=8)
        assert len(res.data_out) == len(PKT) + 16


def test_socket_filter_sees_skb_len():
    prog_insns = [I(op.LDX | op.MEM | op.W, 0, 1, 0), I(op.EXIT_OP)]  # r0 = skb->len
    with ProgramSpec(prog_insns, "socket_filter").load() as prog:
        # Socket filters see the packet after the Ethernet header was pulled (not L2).
        for size in (14, 60, 200):
            assert prog.test_run(bytes(size)).retval == size - 14


def test_sched_cls_modifies_packet_and_ctx_roundtrip():
    with ProgramSpec(_write_first_byte(76, 80, 0x5A, 2), "sched_cls").load() as prog:
        res = prog.test_run(PKT)
        assert res.retval == 2 and res.data_out == b"\x5a" + PKT[1:]
        ctx = bytearray(192)  # struct __sk_buff; mark is at offset 8 and is copied in and out
        struct.pack_into("<I", ctx, 8, 0xBEEF)
        res = prog.test_run(PKT, ctx_in=bytes(ctx))
        assert struct.unpack_from("<I", res.ctx_out, 8)[0] == 0xBEEF


def test_raw_tracepoint_ctx_only():
    insns = [I(op.LDX | op.MEM | op.DW, 0, 1, 8), I(op.EXIT_OP)]  # r0 = args[1]
    with ProgramSpec(insns, "raw_tracepoint").load() as prog:
        res = prog.test_run(ctx_in=struct.pack("<QQ", 1, 0x1234))
        assert res.retval == 0x1234 and res.data_out is None
        with pytest.raises(ValueError, match="repeat must be 1"):
            prog.test_run(ctx_in=bytes(16), repeat=10)


def test_info_fields_and_xlated_disassembly(ret):
    spec = ProgramSpec(ret(7), "xdp", name="info_test")
    with spec.load() as prog:
        info = prog.info()
        assert (info.id, info.name, info.tag, info.type) == (prog.id, "info_test", prog.tag, ProgType.XDP)
        assert info.verified_insns == 2 and info.xlated_size == 16 and info.jited_size > 0
        assert [i.key() for i in info.insns] == [i.key() for i in ret(7)]
        assert "r0 = 7" in info.disassembly() and "exit" in info.disassembly()
        assert info.gpl_compatible and info.created_by_uid == os.geteuid()
        assert abs(info.loaded_at.timestamp() - __import__("time").time()) < 60
        assert len(prog.tag) == 16


def test_map_spec_is_created_relocated_and_owned():
    counts = MapSpec(MapType.ARRAY, 4, 8, 1)
    b = Builder()
    b.st(r10, -4, 0, 4)
    b.ld_map_fd(r1, counts)
    b.mov(r2, r10)
    b.add(r2, -4)
    b.call("map_lookup_elem")
    with b.if_(r0, "!=", 0):
        b.mov(r1, 1)
        b.atomic_add(r0, 0, r1)
    b.mov(r0, 2)
    b.exit()
    with ProgramSpec(b, "xdp").load() as prog:
        assert len(prog.maps) == 1
        m = prog.maps[0]
        assert prog.info().map_ids == (m.info().id,)
        assert prog.test_run(PKT, repeat=5).retval == 2
        assert struct.unpack("<Q", m[0])[0] == 5  # the program ran five times, counting
    assert m.closed


def test_verifier_error_names_line_insn_and_reason():
    b = Builder()
    b.ld_imm64(r2, 1 << 40)                       # two slots: the bad insn is slot 3
    b.mov(r0, 0)
    bad_line = sys._getframe().f_lineno + 1
    b.ldx(r0, r1, 9999, 4)
    b.exit()
    with pytest.raises(VerifierError) as exc:
        ProgramSpec(b, "xdp").load(verify=False)
    err = exc.value
    assert err.origin == "kernel"
    assert err.error == "invalid bpf_context access off=9999 size=4"
    assert err.insn == 3
    assert err.source_line == f"{__file__}:{bad_line}"
    assert "processed" in err.log and err.log.startswith("0: R1=ctx()")
    assert "insn 3" in str(err) and str(bad_line) in str(err)


def test_verifier_error_r0_not_read():
    with pytest.raises(VerifierError, match="R0 !read_ok") as exc:
        ProgramSpec([I(op.EXIT_OP, source="x.py:9")], "socket_filter").load()
    assert exc.value.insn == 0 and exc.value.source_line == "x.py:9"


def test_log_enospc_retry_grows_buffer(monkeypatch, ret):
    calls = []
    real = prog_cmds.prog_load

    def spy(*a, **kw):
        calls.append((kw.get("log_level"), kw.get("log_size")))
        return real(*a, **kw)

    monkeypatch.setattr(prog_cmds, "prog_load", spy)
    # Rejected program, tiny buffer: ENOSPC, then the kernel's log_true_size.
    bad = [I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0)] * 30 + [I(op.LDX | op.MEM | op.W, 0, 1, 9999), I(op.EXIT_OP)]
    with pytest.raises(VerifierError) as exc:
        ProgramSpec(bad, "xdp").load(log_level=2, log_size=64, verify=False)
    assert exc.value.error == "invalid bpf_context access off=9999 size=4" and exc.value.insn == 30
    assert exc.value.log.startswith("func#0") or exc.value.log.startswith("0: R1=ctx()")
    assert len(calls) >= 2 and calls[-1][1] > calls[0][1]
    # Accepted program with a log that does not fit: retried too, full log kept.
    calls.clear()
    with ProgramSpec(ret(0) [:1] * 40 + ret(0), "xdp").load(log_level=2, log_size=64) as prog:
        assert "processed 42 insns" in prog.log
    assert len(calls) >= 2


def test_no_log_on_success_path_then_log_on_failure(monkeypatch, ret):
    calls = []
    real = prog_cmds.prog_load
    monkeypatch.setattr(prog_cmds, "prog_load",
                        lambda *a, **kw: calls.append(kw["log_level"]) or real(*a, **kw))
    ProgramSpec(ret(0), "xdp").load().close()
    assert calls == [0]
    calls.clear()
    with pytest.raises(VerifierError):
        ProgramSpec([I(op.EXIT_OP)], "xdp").load(verify=False)
    assert calls == [0, 1]


def test_unknown_helper_explained_by_probes():
    insns = [I(op.CALL_OP, imm=26), I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0), I(op.EXIT_OP)]  # skb_load_bytes
    with pytest.raises(VerifierError) as exc:
        ProgramSpec(insns, "xdp").load(verify=False)
    assert exc.value.error == "program of this type cannot use helper bpf_skb_load_bytes#26"
    assert "helper bpf_skb_load_bytes is not allowed in program type xdp" in str(exc.value)
    assert exc.value.hint == "helper bpf_skb_load_bytes is not allowed in program type xdp"


def test_from_id_and_pin(ret, tmp_path):
    with ProgramSpec(ret(1), "xdp", name="byid").load() as prog:
        with Program.from_id(prog.id) as again:
            assert (again.id, again.name, again.tag, again.type) == (prog.id, "byid", prog.tag, ProgType.XDP)
            assert again.test_run(PKT).retval == 1
        if os.path.ismount("/sys/fs/bpf"):
            path = f"/sys/fs/bpf/pybpf_test_{os.getpid()}"
            prog.pin(path)
            try:
                with Program.from_pin(path) as pinned:
                    assert pinned.id == prog.id
            finally:
                os.unlink(path)
        gone = prog.id
    with pytest.raises(ObjectNotFound):
        Program.from_id(gone + 10_000_000)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_fd_leak_10000_cycles(ret):
    spec = ProgramSpec(ret(0), "socket_filter")
    code = spec.encode()
    before = _open_fds()
    for _ in range(10_000):
        Program.load(spec, verify=False).close()
    with pytest.raises(VerifierError):  # failure paths must not leak either
        for _ in range(50):
            ProgramSpec([I(op.EXIT_OP)], "socket_filter").load()
    assert _open_fds() == before
    assert code == spec.encode()


def test_simulator_hook(monkeypatch, ret):
    import pybpf.verifier as verifier

    class Verdict:
        def __init__(self, ok):
            self.ok, self.error, self.insn, self.source_line, self.log = ok, "R0 !read_ok", 1, None, "sim log"

    monkeypatch.setattr(verifier, "verify", lambda *a, **kw: Verdict(False), raising=False)
    monkeypatch.setattr(prog_cmds, "prog_load", lambda *a, **kw: pytest.fail("syscall made"))
    insns = [I(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0, source="s.py:1"), I(op.EXIT_OP, source="s.py:2")]
    with pytest.raises(VerifierError) as exc:
        ProgramSpec(insns, "xdp").load()
    assert exc.value.origin == "simulator" and exc.value.insn == 1 and exc.value.source_line == "s.py:2"
    monkeypatch.undo()
    monkeypatch.setattr(verifier, "verify", lambda *a, **kw: Verdict(False), raising=False)
    ProgramSpec(insns, "xdp").load(verify=False).close()  # simulator skipped
    with pytest.warns(SimulatorDisagreement, match="simulator rejected, kernel accepted"):
        prog = ProgramSpec(insns, "xdp").load(verify="compare")
    assert prog.simulator_result.ok is False
    prog.close()

    def not_ready(*a, **kw):
        raise NotImplementedError

    monkeypatch.setattr(verifier, "verify", not_ready, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ProgramSpec(insns, "xdp").load().close()


CHILD = textwrap.dedent("""
    import ctypes, sys
    libc = ctypes.CDLL(None, use_errno=True)
    class Hdr(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    if libc.capset(ctypes.byref(Hdr(0x20080522, 0)), (Data * 2)()) != 0:
        sys.exit("capset failed")
    from pybpf.asm import opcodes as op
    from pybpf.asm.instruction import Instruction as I
    from pybpf.program import ProgramSpec
    from pybpf.syscall import BPFPermissionError
    try:
        ProgramSpec([I(op.ALU64 | op.MOV | op.K), I(op.EXIT_OP)], sys.argv[1]).load(verify=False)
    except BPFPermissionError as exc:
        print("PERM", exc)
    else:
        print("LOADED")
""")


@pytest.mark.parametrize("ptype, missing", [("xdp", "CAP_BPF, CAP_NET_ADMIN"),
                                            ("raw_tracepoint", "CAP_BPF, CAP_PERFMON")])
def test_permission_error_names_missing_caps(ptype, missing):
    out = subprocess.run([sys.executable, "-c", CHILD, ptype], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("PERM"), out.stdout
    assert f"lacks {missing}" in out.stdout
    assert "root" in out.stdout and "EPERM" in out.stdout
