"""How often the verifier simulator agrees with the running kernel's verifier.

Runs every program of the verifier corpus (tests/verifier/corpus: hand-written
cases per rule plus seeded generated programs) through the simulator and
through BPF_PROG_LOAD, and prints:

  agreement %            same verdict (accept/reject)
  message agreement %    same last line of the reason, among programs both reject
  sim-accepts/kernel-rejects, sim-rejects/kernel-accepts, crashes
  simulator time vs the kernel's load time on the same programs (ratio)

Goals from issue 6: >= 98% agreement over >= 1000 programs; 0 crashes;
simulator time <= 20x the kernel's. ``--fuzz N`` additionally runs N generated
programs through the simulator alone, counting crashes and hangs (no root needed).

    python bench/verifier_agreement.py [--generated 1000] [--seed 1] [--fuzz 0] [-v]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "verifier"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "verifier", "corpus"))

import all as corpus  # noqa: E402
import gen  # noqa: E402
import kernel  # noqa: E402
from runner import run_kernel, run_sim  # noqa: E402

PT_NAMES = dict(gen.PROG_TYPES)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--unpriv", type=int, default=300,
                    help="generated programs loaded without CAP_PERFMON (CAP_BPF + CAP_NET_ADMIN)")
    ap.add_argument("--slow", action="store_true", help="include cases that run 1M insns")
    ap.add_argument("--fuzz", type=int, default=0, help="simulator-only crash/hang run")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    cases = (corpus.hand_cases(args.slow) + corpus.generated(args.generated, args.seed)
             + gen.corpus_unpriv(args.unpriv, args.seed))
    if not kernel.available():
        print("needs root and bpf(2): the kernel is the reference", file=sys.stderr)
        return 2
    n = len(cases)
    agree = msg_agree = both_reject = 0
    sa_kr = sr_ka = crashes = 0
    sim_t = ker_t = 0.0
    both_accept = same_processed = 0
    sim_processed = ker_processed = 0
    declined = 0
    per_type: Counter = Counter()
    per_mode: Counter = Counter()
    per_mode_bad: Counter = Counter()
    per_type_bad: Counter = Counter()
    reasons: Counter = Counter()
    for c in cases:
        k = run_kernel(c)
        s = run_sim(c)
        ker_t += k.seconds
        sim_t += s.seconds
        per_type[c.prog_type] += 1
        mode = "privileged" if c.priv else "unprivileged"
        per_mode[mode] += 1
        if s.declined:
            declined += 1
            per_mode_bad[mode] += 1
            if args.verbose:
                print(f"DECLINED {c.name}: {s.declined}")
            continue
        if s.crash:
            crashes += 1
            per_type_bad[c.prog_type] += 1
            per_mode_bad[mode] += 1
            if args.verbose:
                print(f"CRASH {c.name}: {s.crash}")
            continue
        if s.ok == k.ok:
            agree += 1
            if k.ok:
                both_accept += 1
                same_processed += s.processed == k.processed
                sim_processed += s.processed or 0
                ker_processed += k.processed or 0
            if not k.ok:
                both_reject += 1
                msg_agree += s.error == k.error
                if args.verbose and s.error != k.error:
                    print(f"message {c.name}: kernel {k.error!r} simulator {s.error!r}")
        else:
            per_type_bad[c.prog_type] += 1
            per_mode_bad[mode] += 1
            if s.ok:
                sa_kr += 1
            else:
                sr_ka += 1
            reasons[(k.error, s.error)] += 1
            if args.verbose:
                print(f"DISAGREE {c.name}: kernel {k.error!r} simulator {s.error!r}")
    hand = n - args.generated - args.unpriv
    print(f"programs                     {n}  (hand-written {hand}, generated {args.generated} + "
          f"{args.unpriv} unprivileged, seed {args.seed})")
    print(f"agreement                    {100 * agree / n:.2f}%  ({agree}/{n}, counting declined and crashes as disagreements)")
    print(f"message agreement            {100 * msg_agree / max(both_reject, 1):.2f}%  ({msg_agree}/{both_reject} both-reject)")
    print(f"sim-accepts/kernel-rejects   {sa_kr}")
    print(f"sim-rejects/kernel-accepts   {sr_ka}")
    print(f"crashes                      {crashes}")
    print(f"declined (not modelled)      {declined}")
    print(f"same processed_insns         {100 * same_processed / max(both_accept, 1):.1f}%  of {both_accept} both-accept"
          f" (sum: simulator {sim_processed}, kernel {ker_processed})")
    print(f"simulator time               {sim_t:.3f} s")
    print(f"kernel load time             {ker_t:.3f} s")
    print(f"simulator / kernel           {sim_t / max(ker_t, 1e-9):.1f}x  (goal <= 20x)")
    print("per privilege mode (programs, disagreements incl. declined/crashes):")
    for mode in sorted(per_mode):
        print(f"  {mode:<16} {per_mode[mode]:>5} {per_mode_bad[mode]:>4}")
    print("per program type (programs, disagreements):")
    for pt in sorted(per_type):
        print(f"  {PT_NAMES.get(pt, pt):<16} {per_type[pt]:>5} {per_type_bad[pt]:>4}")
    for (ke, se), cnt in reasons.most_common(10):
        print(f"  {cnt:>4}  kernel: {ke!r}  simulator: {se!r}")
    if args.fuzz:
        fuzz(args.fuzz, args.seed)
    return 0


def fuzz(n: int, seed: int) -> None:
    """Simulator-only robustness: every generated program must give a verdict, fast."""
    from pybpf.verifier import verify
    rng = random.Random(seed ^ 0x5EED)
    crashes = slow = 0
    worst = 0.0
    t0 = time.perf_counter()
    for i in range(n):
        c = gen.generate(rng, f"fuzz{i}")
        t = time.perf_counter()
        try:
            verify(c.insns, c.prog_type)
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            crashes += 1
            if crashes <= 5:
                print(f"fuzz crash {c.name}: {type(exc).__name__}: {exc}")
        dt = time.perf_counter() - t
        worst = max(worst, dt)
        slow += dt > 10
    print(f"fuzz: {n} programs, {crashes} crashes, {slow} over 10 s, worst {worst:.2f} s, "
          f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
