"""How fast pybpf.btf gets from nothing to kernel type information.

Target: <= 100 ms from a fresh interpreter (import included, interpreter
start-up excluded) to the first struct member offset.  Baseline in the same
run: bpftool's raw dump of the same file (C, parses everything).

    python bench/btf_parse.py [struct] [member]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time

VMLINUX = "/sys/kernel/btf/vmlinux"
TARGET_MS = 100.0
RUNS = 7

_COLD = """
import time, json, sys
t0 = time.perf_counter()
from pybpf.btf import load_kernel_btf
t1 = time.perf_counter()
spec = load_kernel_btf()
t2 = time.perf_counter()
off = spec.member_offset(sys.argv[1], sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "lookup": t3 - t2, "total": t3 - t0,
                  "offset": off}))
"""


def cold_first_offset(struct: str, member: str) -> list[dict]:
    out = []
    for _ in range(RUNS):
        r = subprocess.run([sys.executable, "-c", _COLD, struct, member],
                           capture_output=True, text=True, check=True)
        out.append(json.loads(r.stdout))
    return out


def warm_figures(struct: str) -> dict[str, float]:
    from pybpf.btf import Spec
    with open(VMLINUX, "rb") as f:
        data = f.read()
    t0 = time.perf_counter()
    spec = Spec(data)
    comp = spec.struct(struct)
    offsets = [spec.member(comp, m.name) for m in comp.members if m.name]
    t1 = time.perf_counter()
    spec2 = Spec(data)
    t2 = time.perf_counter()
    n = sum(1 for _ in spec2.types())
    spec2.name_index()
    t3 = time.perf_counter()
    return {"all_members": t1 - t0, "members": len(offsets), "full": t3 - t2, "types": n}


def bpftool_baseline() -> float | None:
    tool = shutil.which("bpftool")
    if tool is None:
        return None
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([tool, "btf", "dump", "file", VMLINUX, "format", "raw"],
                       stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    struct = sys.argv[1] if len(sys.argv) > 1 else "task_struct"
    member = sys.argv[2] if len(sys.argv) > 2 else "pid"
    cold = cold_first_offset(struct, member)
    med = {k: statistics.median(r[k] for r in cold) * 1e3
           for k in ("import", "open", "lookup", "total")}
    best = min(r["total"] for r in cold) * 1e3
    print(f"first member offset {struct}.{member} = {tuple(cold[0]['offset'])}  "
          f"(fresh interpreter, {RUNS} runs)")
    print(f"  median {med['total']:.1f} ms (import {med['import']:.1f} + open "
          f"{med['open']:.1f} + lookup {med['lookup']:.1f}), best {best:.1f} ms, "
          f"target <= {TARGET_MS:.0f} ms: {'OK' if med['total'] <= TARGET_MS else 'MISSED'}")
    warm = warm_figures(struct)
    print(f"open + all {warm['members']} members of {struct}: {warm['all_members'] * 1e3:.1f} ms")
    print(f"full parse (decode all {warm['types']} types + name index): "
          f"{warm['full'] * 1e3:.0f} ms")
    base = bpftool_baseline()
    if base is None:
        print("baseline: bpftool not installed (apt-get install bpftool) -- no ratio")
    else:
        print(f"baseline bpftool btf dump format raw (full parse + print): {base * 1e3:.1f} ms")
        print(f"  ratio first-offset / bpftool = {med['total'] / (base * 1e3):.2f}, "
              f"full parse / bpftool = {warm['full'] / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
