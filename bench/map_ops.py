"""Dump a 1,000,000-entry hash map: element-wise vs batch lookup vs ``bpftool map dump``.

    python bench/map_ops.py [--entries N] [--chunk N]

All three read the same map in the same run. Goal: the batch dump reaches
>= 1,000,000 entries/s and beats bpftool (which walks the map with
get_next_key + lookup, one element at a time). bpftool is installed with apt
here if missing; it is a baseline, not a pybpf dependency.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from pybpf.maps import MapSpec


def ensure_bpftool() -> str | None:
    path = shutil.which("bpftool")
    if path:
        return path
    print("bpftool not found: installing it with apt-get (benchmark baseline only)")
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    for pkg in ("bpftool", "linux-tools-common"):
        if subprocess.run(["apt-get", "install", "-y", "-qq", pkg], check=False).returncode == 0:
            break
    return shutil.which("bpftool")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=65536, help="elements per batch syscall")
    args = ap.parse_args()
    n = args.entries
    if os.geteuid() != 0:
        print("needs root (bpf(2))", file=sys.stderr)
        return 2
    bpftool = ensure_bpftool()

    with MapSpec.hash("I", "Q", n, name="bench_ops").create() as m:
        keys = range(n)
        values = [k * 3 + 1 for k in keys]
        _, t_fill = timed(lambda: [m.update_batch(keys[i:i + 65536], values[i:i + 65536])
                                   for i in range(0, n, 65536)])
        expect = sum(values)
        print(f"map id {m.id}: {n:,} entries (u32 -> u64), filled with update_batch in "
              f"{t_fill:.2f}s ({n / t_fill:,.0f} entries/s)")

        results: dict[str, float] = {}

        items, t = timed(lambda: list(m.items()))
        assert len(items) == n and sum(v for _, v in items) == expect
        results["element-wise (get_next_key + lookup)"] = t
        del items

        (bk, bv), t = timed(lambda: m.lookup_batch(chunk=args.chunk))
        assert len(bk) == n and len(set(bk)) == n and sum(bv) == expect
        results[f"batch (BPF_MAP_LOOKUP_BATCH, {args.chunk} per call)"] = t
        del bk, bv

        if bpftool:
            with open(os.devnull, "w") as null:
                proc, t = timed(lambda: subprocess.run([bpftool, "map", "dump", "id", str(m.id)],
                                                       stdout=null, stderr=subprocess.PIPE))
            if proc.returncode == 0:
                results["bpftool map dump (to /dev/null)"] = t
            else:
                print(f"bpftool failed: {proc.stderr.decode(errors='replace').strip()}")
        else:
            print("bpftool unavailable: no baseline")

    print(f"\n{'method':<48} {'seconds':>8} {'entries/s':>14}")
    for name, t in results.items():
        print(f"{name:<48} {t:>8.3f} {n / t:>14,.0f}")
    batch = next(t for k, t in results.items() if k.startswith("batch"))
    elem = next(t for k, t in results.items() if k.startswith("element"))
    print(f"\nbatch vs element-wise: {elem / batch:.1f}x faster")
    ok = n / batch >= 1_000_000
    tool = next((t for k, t in results.items() if k.startswith("bpftool")), None)
    if tool is not None:
        print(f"batch vs bpftool:      {tool / batch:.1f}x faster")
        ok = ok and batch < tool
    print(f"goal (batch >= 1,000,000 entries/s and faster than bpftool): "
          f"{'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
