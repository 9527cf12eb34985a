"""Agreement of the verifier simulator with the running kernel on the kernel's own verifier selftests.

The tables of tools/testing/selftests/bpf/verifier/*.c (``struct bpf_test``)
are GPL kernel code, so they are never stored in this repository: this script
downloads Debian's linux-source packages with ``apt-get download`` (6.1, and
6.12 when the archive has it), extracts only the files it reads into
/var/tmp/pybpf-selftests, converts every entry it can (:mod:`selftest_tables`)
and runs each program through BPF_PROG_LOAD (the reference: the running
kernel, not the table's expected result, which is an older kernel's) and
through ``pybpf.verifier.verify(..., privileged=True)``.

Prints: tests found, converted, skipped (by reason), declined by the
simulator (NotImplementedError), verdict agreement %, reason-line agreement
where both reject, a per-file breakdown and the list of disagreements.

    python bench/verifier_selftests.py [--versions 6.1,6.12] [--file calls.c] [-v]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "verifier"))

import selftest_tables as st  # noqa: E402

CACHE = "/var/tmp/pybpf-selftests"
WANTED = ["tools/testing/selftests/bpf/verifier/", "tools/testing/selftests/bpf/test_verifier.c",
          "include/uapi/linux/bpf.h"]
# program types that need an attach target (BTF id / target fd) to load at all
NEEDS_TARGET = {26: "tracing", 27: "struct_ops", 28: "ext", 29: "lsm"}


def fetch(version: str) -> str | None:
    """The extracted tree of linux-source-VERSION under CACHE, downloading it if needed."""
    root = os.path.join(CACHE, version, f"linux-source-{version}")
    if os.path.isdir(os.path.join(root, WANTED[0])):
        return root
    os.makedirs(CACHE, exist_ok=True)
    debs = glob.glob(os.path.join(CACHE, f"linux-source-{version}_*.deb"))
    if not debs:
        r = subprocess.run(["apt-get", "download", f"linux-source-{version}"], cwd=CACHE,
                           capture_output=True, text=True)
        debs = glob.glob(os.path.join(CACHE, f"linux-source-{version}_*.deb"))
        if not debs:
            print(f"linux-source-{version}: apt-get download failed: {r.stderr.strip()[-200:]}",
                  file=sys.stderr)
            return None
    tmp = os.path.join(CACHE, f"x{version}")
    os.makedirs(tmp, exist_ok=True)
    os.makedirs(os.path.join(CACHE, version), exist_ok=True)
    subprocess.run(f"dpkg-deb --fsys-tarfile {debs[0]} | tar -x -C {tmp} --wildcards '*.tar.xz'",
                   shell=True, check=True)
    tarball = glob.glob(os.path.join(tmp, "usr/src/linux-source-*.tar.xz"))[0]
    members = [f"linux-source-{version}/{w}" + ("*" if w.endswith("/") else "") for w in WANTED]
    subprocess.run(["tar", "-xJf", tarball, "-C", os.path.join(CACHE, version), "--wildcards", *members],
                   check=True)
    subprocess.run(["rm", "-rf", tmp], check=True)
    return root


def _key(c):
    from pybpf.asm.instruction import encode
    return (c.name, encode(c.insns), c.prog_type, c.flags, c.attach)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", default="6.1,6.12")
    ap.add_argument("--file", action="append", help="only these table files (e.g. calls.c)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print agreeing reason mismatches too")
    args = ap.parse_args(argv)

    import kernel
    from runner import run_kernel, run_sim
    if not kernel.available():
        print("needs root and bpf(2): the running kernel is the reference", file=sys.stderr)
        return 2

    cases, seen = [], set()
    found = Counter()
    for v in args.versions.split(","):
        root = fetch(v)
        if root is None:
            continue
        for c in st.load_tree(root):
            if args.file and c.file not in args.file:
                continue
            found[v] += 1
            c.file = f"{v}/{c.file}"
            if c.skip is None:
                k = _key(c)
                if k in seen:
                    found["duplicate"] += 1
                    continue
                seen.add(k)
            cases.append(c)

    skipped = Counter()
    declined = Counter()
    crashes = []
    agree = both_reject = reason_agree = ran = 0
    sa_kr, sr_ka, reason_diff = [], [], []
    per_file = defaultdict(lambda: [0, 0, 0, 0])  # ran, agree, declined, skipped
    sim_t = ker_t = 0.0
    for c in cases:
        pf = per_file[c.file]
        if c.skip is None and c.prog_type in NEEDS_TARGET:
            c.skip = f"prog_type {NEEDS_TARGET[c.prog_type]} needs an attach target"
        if c.skip:
            skipped[c.skip if not c.skip.startswith("not decodable") else "malformed ld_imm64"] += 1
            pf[3] += 1
            continue
        try:
            k = run_kernel(c)
        except OSError as exc:
            skipped[f"map create failed: {exc}"] += 1
            pf[3] += 1
            continue
        t0 = time.perf_counter()
        s = run_sim(c)
        sim_t += time.perf_counter() - t0
        ker_t += k.seconds
        if s.declined:
            declined[s.declined[:90]] += 1
            pf[2] += 1
            continue
        ran += 1
        pf[0] += 1
        if s.crash:
            crashes.append((c, s.crash))
            continue
        if s.ok == k.ok:
            agree += 1
            pf[1] += 1
            if not k.ok:
                both_reject += 1
                if (s.error or "") == (k.error or ""):
                    reason_agree += 1
                else:
                    reason_diff.append((c, k.error, s.error))
        elif s.ok:
            sa_kr.append((c, k.error))
        else:
            sr_ka.append((c, s.error))

    total_found = sum(v for k2, v in found.items() if k2 != "duplicate")
    print(f"tests found:        {total_found} ({', '.join(f'{k2}: {v}' for k2, v in found.items())})")
    print(f"converted + run:    {ran + sum(declined.values())}")
    print(f"skipped:            {sum(skipped.values())}")
    for r, n in skipped.most_common():
        print(f"    {n:5d}  {r}")
    print(f"declined by sim:    {sum(declined.values())}")
    for r, n in declined.most_common():
        print(f"    {n:5d}  {r}")
    print(f"crashes:            {len(crashes)}")
    pct = 100.0 * agree / ran if ran else 0.0
    print(f"verdict agreement:  {agree}/{ran} = {pct:.1f}%")
    print(f"  sim accepts, kernel rejects: {len(sa_kr)}")
    print(f"  sim rejects, kernel accepts: {len(sr_ka)}")
    rpct = 100.0 * reason_agree / both_reject if both_reject else 0.0
    print(f"reason-line agreement (both reject): {reason_agree}/{both_reject} = {rpct:.1f}%")
    print(f"time: simulator {sim_t:.2f}s, kernel {ker_t:.2f}s (ratio {sim_t / ker_t if ker_t else 0:.1f}x)")
    print("\nper file (ran / agree / declined / skipped):")
    for f in sorted(per_file):
        r, a, d, sk = per_file[f]
        mark = "" if r == a else "   <--"
        print(f"  {f:42s} {r:4d} {a:4d} {d:4d} {sk:4d}{mark}")
    print("\ndisagreements:")
    for c, kerr in sa_kr:
        print(f"  SIM-ACCEPT  {c.file}: {c.name!r} (pt {c.prog_type}) kernel: {kerr}")
    for c, serr in sr_ka:
        print(f"  SIM-REJECT  {c.file}: {c.name!r} (pt {c.prog_type}) sim: {serr}")
    for c, err in crashes:
        print(f"  CRASH       {c.file}: {c.name!r}: {err}")
    if args.verbose:
        print("\nreason mismatches (both reject):")
        for c, kerr, serr in reason_diff:
            print(f"  {c.file}: {c.name!r}\n      kernel: {kerr}\n      sim:    {serr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
