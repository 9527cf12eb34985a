"""Assembler throughput: instructions per second for a 100,000-instruction program.

Measures, in the same run:

* build+encode with the DSL (:class:`pybpf.asm.builder.Builder`): goal >= 500,000 insn/s;
* baseline: the same instructions as bare ``Instruction(...)`` objects + ``encode``
  (the floor the DSL's checks and source tracking sit on);
* parsing the same program from kernel-syntax text (``pybpf.asm.text.assemble``)
  and disassembling it (``pybpf.asm.disasm.disassemble``).

The machine this runs on is shared and noisy: figures are medians of
``--runs`` alternating runs, and the DSL/baseline ratio is the steadier number.

    python bench/asm_throughput.py [N] [--runs=7] [--profile]
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import statistics
import sys
import time

from pybpf.asm.builder import Builder
from pybpf.asm.disasm import disassemble
from pybpf.asm.instruction import Instruction, decode, encode
from pybpf.asm.registers import r0, r1, r2, r3, r10, w1, w2
from pybpf.asm.text import assemble

GOAL = 500_000
RUNS = 7
BLOCK = 10  # instructions per block below


def build(n: int) -> Builder:
    """A program of n instructions mixing the common kinds, with a label per block."""
    b = Builder()
    for i in range(n // BLOCK):
        b.label(f"b{i}")
        b.mov(r1, i)
        b.add(r1, r2)
        b.ldx(r3, r10, -8, 8)
        b.stx(r10, -16, r1, 4)
        b.jump_if(r1, ">", 3, f"b{i}")
        b.add(w1, w2)
        b.ld_imm64(r2, 0x1234567890)
        b.atomic_add(r10, -8, r1)
        b.call("ktime_get_ns")
        b.mov(r0, r1)
    return b


def build_raw(n: int) -> list[Instruction]:
    """The same instructions as bare objects (no DSL): the baseline."""
    out = []
    for i in range(n // BLOCK):
        out += [Instruction(0xB7, 1, 0, 0, i), Instruction(0x0F, 1, 2), Instruction(0x79, 3, 10, -8),
                Instruction(0x63, 10, 1, -16), Instruction(0x25, 1, 0, -5, 3), Instruction(0x0C, 1, 2),
                Instruction(0x18, 2, 0, 0, 0x1234567890), Instruction(0xDB, 10, 1, -8, 0),
                Instruction(0x85, 0, 0, 0, 5), Instruction(0xBF, 0, 1)]
    return out


def timed(fn) -> tuple[float, object]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def best(fn, runs: int = RUNS) -> tuple[float, object, float]:
    """(best time, result, median time) of ``runs`` calls."""
    times, result = [], None
    for _ in range(runs):
        t, result = timed(fn)
        times.append(t)
    return min(times), result, statistics.median(times)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    n = int(args[0]) if args else 100_000
    runs = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--runs=")), RUNS)
    # DSL and baseline alternate, so a burst of load on this shared machine
    # hits both; the ratio of each pair is steadier than either figure.
    dsl, raw = [], []
    for _ in range(runs):
        t, code = timed(lambda: build(n).encode())
        dsl.append(t)
        t, code_raw = timed(lambda: encode(build_raw(n)))
        raw.append(t)
    assert code == code_raw, "DSL and raw programs differ"
    ratio = statistics.median(d / r for d, r in zip(dsl, raw))
    med_dsl, med_raw = statistics.median(dsl), statistics.median(raw)
    text = disassemble(code)
    t_text, insns, med_text = best(lambda: assemble(text), runs)
    assert encode(insns) == code, "text round trip differs"
    t_dis, _, med_dis = best(lambda: disassemble(code), runs)
    t_dec, _, _ = best(lambda: decode(code), runs)
    count = len(decode(code))

    def rate(t: float) -> str:
        return f"{count / t:>12,.0f} insn/s"

    print(f"program: {count:,} instructions, {len(code) // 8:,} slots, {len(text.splitlines()):,} text lines;"
          f" {runs} runs, medians")
    print(f"DSL build+encode        {rate(med_dsl)}  (median {med_dsl * 1e3:.0f} ms, best {rate(min(dsl)).strip()})"
          f"  goal {GOAL:,}: {'OK' if count / med_dsl >= GOAL else 'MISSED'}")
    print(f"baseline raw+encode     {rate(med_raw)}  (median {med_raw * 1e3:.0f} ms, best {rate(min(raw)).strip()})")
    print(f"DSL / baseline          {ratio:>12.2f} x     (median of the per-run ratios of times)")
    print(f"text assemble           {rate(med_text)}  (median {med_text * 1e3:.0f} ms, best {t_text * 1e3:.0f} ms,"
          f" {med_text / med_raw:.2f}x baseline)")
    print(f"disassemble             {rate(med_dis)}  (median {med_dis * 1e3:.0f} ms)")
    print(f"decode                  {rate(t_dec)}")
    if "--profile" in sys.argv or count / med_dsl < GOAL:
        print("\nprofile of DSL build+encode (top 12 by own time):")
        prof = cProfile.Profile()
        prof.runcall(lambda: build(n).encode())
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
