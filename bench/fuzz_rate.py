"""Programs per second through the fuzzer's stages: generation, simulator, kernel, both.

    python bench/fuzz_rate.py [--count 300] [--prog-type xdp]

The baseline is the kernel alone (BPF_PROG_LOAD of each program, map creation
included), measured in the same run; the other figures are printed with their
ratio to it. Programs are generated once, from a fixed seed, with
``valid=None`` (half near misses), as ``pybpf fuzz`` does; no minimization.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pybpf.testing import fuzz  # noqa: E402


def rate(label: str, fn, progs, baseline: float | None) -> float:
    t0 = time.perf_counter()
    for p in progs:
        fn(p)
    per_s = len(progs) / (time.perf_counter() - t0)
    ratio = f"  ({per_s / baseline:.2f}x kernel alone)" if baseline else ""
    print(f"{label:<28} {per_s:9.1f} programs/s{ratio}")
    return per_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--prog-type", default="xdp")
    args = ap.parse_args()
    backends = fuzz.load_backends(["sim", "kernel"])
    for name, why in backends.missing.items():
        print(f"{name}: unavailable ({why})")
    fz = fuzz.Fuzzer(backends, prog_type=args.prog_type, seed=1, minimize=False)
    t0 = time.perf_counter()
    progs = [fz.program(i) for i in range(args.count)]
    gen = args.count / (time.perf_counter() - t0)
    print(f"{args.count} {args.prog_type} programs, avg {sum(map(len, progs)) / len(progs):.1f} insns")
    print(f"{'generation':<28} {gen:9.1f} programs/s")
    base = None
    if backends.kernel is not None:
        base = rate("kernel (BPF_PROG_LOAD)", lambda p: backends.kernel(p, False), progs, None)
    if backends.sim is not None:
        rate("simulator (verify)", backends.sim, progs, base)
    if backends.kernel is not None and backends.sim is not None:
        fz.runnable = False
        rate("simulator + kernel", lambda p: fz.check(p), progs, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
