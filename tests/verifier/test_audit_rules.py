"""Programs with BTF func_info: the simulator must decline what it cannot model, not reject it.

bpf_loop() callbacks (ld_imm64 src_reg 4) need the program's BTF; the simulator
used to call the callback body unreachable and Program.load(verify=True) refused
a program the kernel accepts. The table cases live in corpus/cases_audit_rules.py.
"""

import struct

import pytest

import kernel
from dsl import call_local, exit_, mov, r0, r1, r6
from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction as I
from pybpf.asm.text import assemble
from pybpf.verifier import verify

needs_kernel = pytest.mark.skipif(not kernel.available(), reason="needs root and bpf(2)")

BPF_LOOP = """r1 = 10
r2 = func[cb]
r3 = 0
r4 = 0
call bpf_loop#181
r0 = 0
exit
cb:
r0 = {ret}
exit"""


def test_callback_is_reachable_and_declined():
    with pytest.raises(NotImplementedError, match="callback"):
        verify(assemble(BPF_LOOP.format(ret=0)), "socket_filter")


def test_ld_abs_in_btf_subprog_is_declined_not_rejected():
    insns = [call_local(2), mov(r0, 0), exit_(), mov(r6, r1), I(op.LD | op.ABS | op.B, 0, 0, 0, 0), exit_()]
    res = verify(insns, "socket_filter")
    assert not res.ok and res.error == "LD_ABS is not allowed in subprogs without BTF"
    with pytest.raises(NotImplementedError, match="BTF subprogram"):
        verify(insns, "socket_filter", func_info=b"\0" * 16)


def _btf_loop_spec(ret: int):
    from pybpf.btf.encode import Builder
    from pybpf.btf.kinds import FuncLinkage
    from pybpf.btf.load import load_btf
    from pybpf.program.spec import ProgramSpec
    b = Builder()
    i64 = b.add_int("long", 8, signed=True)
    main = b.add_func("main", b.add_func_proto(i64, [("ctx", i64)]), FuncLinkage.GLOBAL)
    cb = b.add_func("cb", b.add_func_proto(i64, [("i", i64), ("ctx", i64)]), FuncLinkage.STATIC)
    btf = load_btf(b.encode())
    # the callback starts at slot 8 (the ld_imm64 counts two)
    func_info = struct.pack("<II", 0, main) + struct.pack("<II", 8, cb)
    spec = ProgramSpec(assemble(BPF_LOOP.format(ret=ret)), 1, prog_btf_fd=int(btf),
                       func_info=func_info, func_info_rec_size=8)
    return spec, btf


@pytest.mark.kernel
@needs_kernel
def test_program_load_reaches_the_kernel_for_bpf_loop():
    from pybpf.errors import VerifierError
    from pybpf.program.load import Program
    spec, btf = _btf_loop_spec(0)
    try:
        with Program.load(spec, verify=True) as prog:
            assert not prog.closed
    finally:
        btf.close()
    spec, btf = _btf_loop_spec(5)  # out of the callback's [0, 1] return range: the kernel's reason
    try:
        with pytest.raises(VerifierError) as exc:
            Program.load(spec, verify=True)
    finally:
        btf.close()
    assert exc.value.origin == "kernel"
    assert "At callback return the register R0" in str(exc.value)
