"""Interpreter speed: instructions per second on loop-heavy programs.

Two programs: a bounded loop summing a 256-entry array map through
bpf_map_lookup_elem (helper-heavy, like real code), and a pure ALU/branch
loop (the interpreter's best case). The baseline, measured in the same run,
is a plain decode-and-dispatch interpreter of the ALU loop (an if-chain on
the opcode per step), to show what translating basic blocks buys.

    python bench/vm_speed.py
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from pybpf import vm
from pybpf.asm import Builder, opcodes as op, r0, r1, r2, r3, r6, r7, r10
from pybpf.asm.instruction import decode

M64 = (1 << 64) - 1


def map_sum_program(arr) -> Builder:
    b = Builder()
    b.mov(r6, 0)
    b.mov(r7, 0)
    b.label("loop")
    b.stx(r10, -4, r6, 4)
    b.map_lookup(arr, -4)
    b.jeq(r0, 0, "next")
    b.ldx(r1, r0, 0, 8)
    b.add(r7, r1)
    b.label("next")
    b.add(r6, 1)
    b.jlt(r6, 256, "loop")
    b.mov(r0, r7)
    b.exit()
    return b


def alu_loop_program(n: int) -> Builder:
    b = Builder()
    b.mov(r0, 0)
    b.mov(r1, 0)
    b.mov(r2, 12345)
    b.label("loop")
    b.mul(r2, 1103515245)
    b.add(r2, 12345)
    b.mov(r3, r2)
    b.rsh(r3, 16)
    b.and_(r3, 0x7FFF)
    b.xor(r0, r3)
    b.add(r1, 1)
    b.jlt(r1, n, "loop")
    b.exit()
    return b


def naive_run(code: bytes) -> tuple[int, int]:
    """The baseline: decode once, then dispatch every step on the opcode (ALU64/JMP subset)."""
    insns = [(i.opcode, i.dst, i.src, i.off, i.imm) for i in decode(code)]
    r = [0] * 11
    pc = steps = 0
    while True:
        opcode, dst, src, off, imm = insns[pc]
        steps += 1
        pc += 1
        cls = opcode & 7
        if cls == op.ALU64:
            val = r[src] if opcode & op.X else imm & M64
            o = opcode & 0xF0
            if o == op.ADD:
                r[dst] = (r[dst] + val) & M64
            elif o == op.MUL:
                r[dst] = (r[dst] * val) & M64
            elif o == op.MOV:
                r[dst] = val
            elif o == op.RSH:
                r[dst] >>= val & 63
            elif o == op.AND:
                r[dst] &= val
            elif o == op.XOR:
                r[dst] ^= val
            else:
                raise NotImplementedError(hex(opcode))
        elif opcode == op.EXIT_OP:
            return r[0], steps
        elif opcode & 0xF0 == op.JLT:
            if r[dst] < (imm & M64):
                pc += off
        else:
            raise NotImplementedError(hex(opcode))


def measure(fn, min_time: float = 1.0) -> tuple[float, int]:
    """(seconds per call, instructions per call), best of several repetitions."""
    best = float("inf")
    insns = 0
    deadline = time.perf_counter() + min_time
    while time.perf_counter() < deadline or best == float("inf"):
        t = time.perf_counter()
        insns = fn()
        best = min(best, time.perf_counter() - t)
    return best, insns


def main() -> None:
    spec = SimpleNamespace(type="array", key_size=4, value_size=8, max_entries=256, flags=0, name="arr")
    machine = vm.VM()
    arr = machine.map(spec)
    for i in range(256):
        arr[i] = i * 3
    msum = map_sum_program(spec)
    res = machine.run(msum)
    assert res.r0 == sum(i * 3 for i in range(256)), res

    alu = alu_loop_program(20_000)
    code = alu.encode()
    vm_r0 = machine.run(alu).r0
    naive_r0, _ = naive_run(code)
    assert vm_r0 == naive_r0, (vm_r0, naive_r0)

    compile_t = time.perf_counter()
    vm.VM().compile(alu)
    compile_t = time.perf_counter() - compile_t

    t_map, n_map = measure(lambda: machine.run(msum).insns)
    t_alu, n_alu = measure(lambda: machine.run(alu).insns)
    t_naive, n_naive = measure(lambda: naive_run(code)[1])
    print(f"map-sum loop (256 lookups):  {n_map:>8} insns  {n_map / t_map / 1e6:6.2f} M insns/s")
    print(f"ALU loop (20000 iterations): {n_alu:>8} insns  {n_alu / t_alu / 1e6:6.2f} M insns/s")
    print(f"baseline: naive dispatch on the ALU loop: {n_naive / t_naive / 1e6:6.2f} M insns/s")
    print(f"ratio VM / naive dispatch (ALU loop): {(n_alu / t_alu) / (n_naive / t_naive):.1f}x")
    print(f"translation of the ALU loop program: {compile_t * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
