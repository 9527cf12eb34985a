"""``pybpf fuzz``: differential fuzzing of the verifier simulator, the kernel and the interpreter.

    pybpf fuzz --count 500 --seed 1 --prog-type xdp --compare sim,kernel,vm --out fuzz-out

Exit status: 0 when every backend agreed, 1 when disagreements were found
(each one minimized and written to ``--out``), 2 on bad usage or when fewer
than two backends can be compared.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from .generate import SUPPORTED, TEST_RUNNABLE

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(t.bpftool_name for t in SUPPORTED)
    parser.add_argument("--count", type=int, default=200, help="programs to generate (default 200)")
    parser.add_argument("--seed", type=int, default=None, help="run seed (default: random, printed)")
    parser.add_argument("--start", type=int, default=0,
                        help="number of the first program (to regenerate one program of a run)")
    parser.add_argument("--prog-type", default="xdp", help=f"program type: {names}")
    parser.add_argument("--compare", default="sim,kernel,vm",
                        help="backends to compare, comma separated: sim, kernel, vm")
    parser.add_argument("--valid", choices=("mixed", "true", "false"), default="mixed",
                        help="generate programs meant to be accepted, near misses, or both")
    parser.add_argument("--max-insns", type=int, default=64, help="instructions per program")
    parser.add_argument("--out", default="fuzz-out", help="directory for disagreement files")
    parser.add_argument("--no-minimize", action="store_true", help="write disagreements as found")
    parser.add_argument("--replay", nargs="+", metavar="FILE",
                        help="re-check disagreement files written by an earlier run")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")


class Progress:
    """A ``\\r``-updated line on a terminal, a line every tenth of the run otherwise."""

    def __init__(self, total: int, stream=None, quiet: bool = False):
        stream = sys.stderr if stream is None else stream
        self.total, self.stream, self.quiet = total, stream, quiet
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.every = max(1, total // 10)
        self.last = 0.0
        self.t0 = time.monotonic()

    def line(self, st) -> str:
        rate = st.programs / max(time.monotonic() - self.t0, 1e-9)
        return (f"programs {st.programs}/{self.total}  kernel accepts {st.kernel_accepts} "
                f"rejects {st.kernel_rejects}  sim accepts {st.sim_accepts} rejects {st.sim_rejects}"
                f"  vm runs {st.vm_runs}  disagreements {st.disagreements}  ({rate:.1f}/s)")

    def update(self, st, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            if force or now - self.last > 0.1:
                self.stream.write("\r" + self.line(st) + "\x1b[K")
                self.stream.flush()
                self.last = now
        elif force or st.programs % self.every == 0:
            self.stream.write(self.line(st) + "\n")
            self.stream.flush()

    def note(self, text: str) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self, st) -> None:
        if self.tty and not self.quiet:
            self.update(st, force=True)
            self.stream.write("\n")
        elif not self.quiet and st.programs % self.every:
            self.update(st, force=True)


def _valid(value: str):
    return {"mixed": None, "true": True, "false": False}[value]


def run(args: argparse.Namespace) -> int:
    from pybpf.program.types import prog_type

    from . import fuzz

    try:
        ptype = prog_type(args.prog_type)
    except ValueError as exc:
        print(f"pybpf fuzz: {exc}", file=sys.stderr)
        return 2
    if ptype not in SUPPORTED:
        names = ", ".join(t.bpftool_name for t in SUPPORTED)
        print(f"pybpf fuzz: program type {ptype.bpftool_name} is not supported (one of: {names})",
              file=sys.stderr)
        return 2
    wanted = [w.strip() for w in args.compare.split(",") if w.strip()]
    try:
        backends = fuzz.load_backends(wanted)
    except ValueError as exc:
        print(f"pybpf fuzz: {exc}", file=sys.stderr)
        return 2
    for line in _missing_lines(wanted, backends.missing):
        print(line, file=sys.stderr)
    if len(backends.names) < 2:
        have = ", ".join(backends.names) or "none"
        print(f"pybpf fuzz: need two backends to compare, have: {have}", file=sys.stderr)
        return 2
    if args.count < 0 or args.max_insns < 16:
        print("pybpf fuzz: --count must be >= 0 and --max-insns >= 16", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    fz = fuzz.Fuzzer(backends, prog_type=ptype, seed=seed, valid=_valid(args.valid),
                     max_insns=args.max_insns, minimize=not args.no_minimize)
    if args.replay:
        return _replay(fz, args.replay)
    print(f"pybpf fuzz: seed {seed}, {args.count} {ptype.bpftool_name} programs, comparing "
          f"{', '.join(backends.names)}", file=sys.stderr)
    progress = Progress(args.count, quiet=args.quiet)
    found = []
    t0 = time.monotonic()
    for i in range(args.start, args.start + args.count):
        d = fz.run_one(i)
        if d is not None:
            _write(fz, d, args.out, seed, ptype.bpftool_name)
            found.append(d)
            progress.note(f"disagreement at program {i}: {d.summary}\n  -> {d.path}")
        progress.update(fz.stats)
    progress.done(fz.stats)
    _summary(fz, found, time.monotonic() - t0)
    return 1 if found else 0


def _missing_lines(wanted: list[str], missing: dict[str, str]) -> list[str]:
    """One "comparing without it" line per *asked-for* backend that is unavailable.

    The vm backend needs the kernel (its BPF_PROG_TEST_RUN is what the
    interpreter is compared with), so ``--compare sim,vm`` probes the kernel
    too; when that fails, the kernel's reason belongs to the vm line, not to a
    line about a backend the user did not ask for.
    """
    lines = []
    for name, why in missing.items():
        if name not in wanted:
            continue
        if name == "vm" and "kernel" not in wanted and "kernel" in missing:
            why = f"{why} (kernel: {missing['kernel']})"
        lines.append(f"pybpf fuzz: {name}: {why}; comparing without it")
    return lines


def _write(fz, d, out: str, seed: int, ptype_name: str) -> None:
    from . import report
    prog = d.minimized or d.program
    klog = slog = ""
    if fz.backends.kernel is not None:
        klog = fz.backends.kernel(prog, False, 2)[0].log if _takes_level(fz.backends.kernel) else ""
    if fz.backends.sim is not None and _takes_level(fz.backends.sim):
        slog = fz.backends.sim(prog, 2).log
    d.path = report.write_case(out, d, report.format_case(d, seed=seed, prog_type_name=ptype_name,
                                                          kernel_log=klog, sim_log=slog))


def _takes_level(fn) -> bool:
    import inspect
    try:
        return "log_level" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _summary(fz, found, seconds: float) -> None:
    st = fz.stats
    out = sys.stdout
    print(f"{st.programs} programs in {seconds:.1f}s ({st.programs / max(seconds, 1e-9):.1f}/s), "
          f"seed {fz.seed}", file=out)
    if fz.backends.kernel is not None:
        print(f"  kernel:    {st.kernel_accepts} accepted, {st.kernel_rejects} rejected", file=out)
    if fz.backends.sim is not None:
        print(f"  simulator: {st.sim_accepts} accepted, {st.sim_rejects} rejected, "
              f"{st.sim_crashes} crashed, {st.sim_declined} declined (features not modelled)",
              file=out)
    if fz.backends.vm is not None:
        print(f"  vm:        {st.vm_runs} test runs compared", file=out)
    if not found:
        print("no disagreements", file=out)
        return
    print(f"{len(found)} disagreements:", file=out)
    for kind, n in sorted(st.by_kind.items()):
        print(f"  {n:5d}  {kind}", file=out)
    for d in found:
        size = f"{len(d.program)} -> {len(d.minimized)} insns" if d.minimized else f"{len(d.program)} insns"
        print(f"  program {d.index} ({size}): {d.summary}", file=out)
        print(f"    {d.path}", file=out)


def _replay(fz, paths: list[str]) -> int:
    from .report import load_case
    bad = 0
    for path in paths:
        try:
            prog = load_case(path)
        except OSError as exc:
            print(f"pybpf fuzz: --replay: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            bad += 1
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            # load_case's messages start with the path already
            text = "not a text file" if isinstance(exc, UnicodeDecodeError) else str(exc)
            where = "" if text.startswith(path) else f"{path}: "
            print(f"pybpf fuzz: --replay: {where}{text} (not a disagreement file written by "
                  f"pybpf fuzz)", file=sys.stderr)
            bad += 1
            continue
        fz.prog_type = prog.prog_type
        fz.runnable = prog.prog_type in TEST_RUNNABLE and fz.backends.vm is not None
        res = fz.check(prog)
        verdicts = []
        if res["sim"] is not None:
            verdicts.append(f"simulator {res['sim'].describe()}")
        if res["kernel"] is not None:
            verdicts.append(f"kernel {res['kernel'].describe()}")
        if res["vrun"] is not None:
            verdicts.append(f"vm {res['vrun'].describe()} / kernel {res['krun'].describe()}")
        status = res["kind"] or "agree"
        print(f"{path}: {status}: {'; '.join(verdicts)}")
        bad += res["kind"] is not None
    return 1 if bad else 0

