"""In-guest verifier differential: the simulator's verdicts against this kernel's.

The simulator (``pybpf.verifier.verify``) models the verifier of Linux 6.18,
the kernel the project is developed on. Inside 6.1 and 6.12 the same corpus
(tests/verifier/corpus: ``all.hand_cases()`` and ``all.generated(n, seed)``,
or without all.py every ``cases_*.py`` module's ``CASES`` and ``gen.corpus(n, seed)``) is loaded for real with
``BPF_PROG_LOAD`` and verified by the simulator; the check reports the
agreement of the two verdicts (accepted / rejected), every disagreeing case
with both reasons, and a classification of each disagreement:

* ``kernel-version``: the simulator agrees with the corpus' expectation
  (written against 6.18) and this kernel does not. The kernel is older, and
  the reason usually says why: ``isa-v4`` (sign-extending loads, ``sdiv``,
  ``bswap``, ``gotol``, ``movsx`` are unknown before 6.6), ``helper`` (a helper
  id this kernel does not have), ``kfunc``, or a verifier rule that changed;
* ``simulator``: this kernel agrees with the expectation and the simulator
  does not (a simulator bug, visible on the host as well);
* ``other``: neither matches the expectation (a corpus case in flux).

Bounded for TCG: cases tagged ``slow`` are left out (named in the report),
the hand-written sample is capped (a stable hash picks it when the corpus
outgrows the cap, so a growing corpus changes the sample little), each
simulator run has a time limit, and the whole check a time budget. When
``verify`` learns a ``kernel=`` argument (the per-version profile), the check
passes this kernel's version so the prediction targets it.
"""

from __future__ import annotations

import importlib
import inspect
import platform
import re
import signal
import sys
import time
import zlib
from pathlib import Path

from guest_lib import Skip, check, need

CHECKOUT = Path(__file__).resolve().parents[2]
VERIFIER_TESTS = CHECKOUT / "tests" / "verifier"
CORPUS = VERIFIER_TESTS / "corpus"
MAX_HAND_WRITTEN = 400   # hand-written cases in the sample (all of them today: ~220)
GENERATED = 40           # gen.corpus(GENERATED, seed=GEN_SEED)
GEN_SEED = 1
SIM_CASE_LIMIT = 5.0     # seconds the simulator may spend on one case under TCG (~50x the host)
BUDGET = 110.0           # seconds for the whole check; the rest is reported as truncated
SKIP_TAGS = ("slow",)

_REASONS = (
    ("isa-v4", re.compile(r"unknown opcode|invalid BPF_ALU opcode|invalid BPF_LD|"
                          r"reserved fields|invalid (src|dst) register|BPF_(LDX|ALU|JMP|JA)|"
                          r"unknown insn class|sign.?ext|movsx|gotol", re.I)),
    ("helper", re.compile(r"invalid func|unknown func|helper call is not allowed|"
                          r"cannot (call|use) helper", re.I)),
    ("kfunc", re.compile(r"kfunc|kernel function|calling kernel", re.I)),
    # rules newer than 6.12 (seen on 6.12, not on the 6.18 host): an array lookup
    # with a constant in-range key is never NULL, and a variable stack offset
    # no longer needs a bounded minimum
    ("maybe-null", re.compile(r"map_value_or_null")),
    ("stack-var-off", re.compile(r"math between fp pointer and register with unbounded min")),
)


class SimTimeout(BaseException):
    """Raised by SIGALRM in the simulator; a BaseException so its ``except Exception`` misses it."""


def _alarm(signum, frame):
    raise SimTimeout()


def _load_corpus() -> tuple[list, list, list[str]]:
    """(hand-written cases, generated cases, errors): every ``cases_*.py``, then gen.corpus()."""
    if not CORPUS.is_dir():
        raise Skip(f"{CORPUS} does not exist (no verifier corpus yet)")
    for d in (str(CORPUS), str(VERIFIER_TESTS)):
        if d not in sys.path:
            sys.path.insert(0, d)
    hand, errors = [], []
    if (CORPUS / "all.py").exists():      # the corpus' own list of every case, when it has one
        try:
            every = importlib.import_module("all")
            return (list(every.hand_cases(include_slow=True)),
                    list(every.generated(GENERATED, GEN_SEED)), errors)
        except Exception as exc:  # noqa: BLE001 - fall back to the modules themselves
            errors.append(f"all.py: {type(exc).__name__}: {exc}")
    for path in sorted(CORPUS.glob("cases_*.py")):
        try:
            hand += list(importlib.import_module(path.stem).CASES)
        except Exception as exc:  # noqa: BLE001 - a module mid-edit: reported, the rest still runs
            errors.append(f"{path.name}: {type(exc).__name__}: {exc}")
    generated = []
    if (CORPUS / "gen.py").exists():
        try:
            generated = list(importlib.import_module("gen").corpus(GENERATED, GEN_SEED))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"gen.py: {type(exc).__name__}: {exc}")
    return hand, generated, errors


def _expected_ok(case) -> bool:
    return case.expect is None


def _kernel_matches_expect(case, ok: bool, error: str | None) -> bool:
    if case.expect is None:
        return ok
    return not ok and case.expect in (error or "")


def _reason_kind(error: str | None) -> str:
    for kind, pattern in _REASONS:
        if error and pattern.search(error):
            return kind
    return "rule"


def _simulate(verify, case, kernel_arg: str | None):
    kw = {"prog_flags": case.flags, "expected_attach_type": case.attach}
    if kernel_arg:
        kw["kernel"] = kernel_arg
    if not getattr(case, "priv", True):  # the kernel side loads it without CAP_PERFMON too
        kw["privileged"] = False
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, SIM_CASE_LIMIT)
    try:
        res = verify(case.insns, case.prog_type, **kw)
        return res.ok, (res.error.splitlines()[-1] if res.error else None), None
    except SimTimeout:
        return None, None, f"timeout after {SIM_CASE_LIMIT:g}s"
    except NotImplementedError as exc:  # declined: the simulator does not model it
        return None, None, f"declined: {exc}"
    except Exception as exc:  # noqa: BLE001 - a simulator crash is a disagreement, with its reason
        return False, None, f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@check
def check_verifier_differential() -> dict:
    verify = need("pybpf.verifier.verify")
    hand, generated, errors = _load_corpus()
    try:
        runner = importlib.import_module("runner")
    except ModuleNotFoundError:
        raise Skip(f"{VERIFIER_TESTS}/runner.py (the corpus' kernel loader) does not exist") from None
    slow = [c.name for c in hand + generated if set(SKIP_TAGS) & set(c.tags)]
    hand = [c for c in hand if not set(SKIP_TAGS) & set(c.tags)]
    generated = [c for c in generated if not set(SKIP_TAGS) & set(c.tags)]
    if len(hand) > MAX_HAND_WRITTEN:
        hand = sorted(hand, key=lambda c: zlib.crc32(c.name.encode()))[:MAX_HAND_WRITTEN]
    sample = hand + generated
    if not sample:
        raise Skip("the verifier corpus has no cases yet")
    version = ".".join(platform.release().split(".")[:2])
    kernel_arg = version if "kernel" in inspect.signature(verify).parameters else None

    t0 = time.monotonic()
    agree, details, timeouts, declined, done = 0, [], [], [], 0
    kernel_vs_expect = 0
    for case in sample:
        if time.monotonic() - t0 > BUDGET:
            break
        done += 1
        k = runner.run_kernel(case)
        sim_ok, sim_error, crash = _simulate(verify, case, kernel_arg)
        has_expect = "generated" not in case.tags   # generated cases carry no verdict
        k_expect = has_expect and _kernel_matches_expect(case, k.ok, k.error)
        kernel_vs_expect += k_expect
        if sim_ok is None:
            (declined if crash and crash.startswith("declined") else timeouts).append(case.name)
            continue
        if crash is None and sim_ok == k.ok:
            agree += 1
            continue
        reason = _reason_kind(k.error)
        if not has_expect:
            kind = "kernel-version" if not k.ok and reason != "rule" else "unclassified"
        elif not k_expect and crash is None and sim_ok == _expected_ok(case):
            kind = "kernel-version"
        elif k_expect:
            kind = "simulator"
        else:
            kind = "other"
        details.append({"name": case.name, "kind": kind, "reason": reason,
                        "kernel_ok": k.ok, "kernel_error": k.error, "sim_ok": sim_ok,
                        "sim_error": crash or sim_error, "expect": case.expect})
    compared = done - len(timeouts) - len(declined)
    if compared == 0:
        raise AssertionError(f"no case compared (timeouts: {timeouts})")
    version_diffs = [d["name"] for d in details if d["kind"] == "kernel-version"]
    rest = compared - len(version_diffs)
    return {
        "kernel": platform.release(), "version": version, "verify_kernel_arg": kernel_arg,
        "corpus_modules": sorted(p.name for p in CORPUS.glob("cases_*.py")),
        "corpus_errors": errors, "sample": len(sample), "hand_written": len(hand),
        "generated": len(generated), "run": done, "truncated": len(sample) - done,
        "compared": compared, "agree": agree, "agreement": round(100.0 * agree / compared, 2),
        "disagree": [d["name"] for d in details], "details": details,
        "kernel_version_differences": version_diffs, "declined": declined,
        # agreement where this kernel behaves like the 6.18 the simulator models
        "agreement_same_rules": round(100.0 * agree / rest, 2) if rest else 100.0,
        "simulator_disagreements": [d["name"] for d in details if d["kind"] == "simulator"],
        "kernel_matches_expect": kernel_vs_expect, "sim_timeouts": timeouts,
        "skipped_slow": slow, "seconds": round(time.monotonic() - t0, 1),
        "cpu_model": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        return ""


# ISA v4 (Linux 6.6): each program is accepted by 6.6+ and refused by older
# kernels ("unknown opcode" or a reserved-field error); the simulator models
# 6.18. Facts from include/uapi/linux/bpf.h and Documentation/bpf/standardization.
def _isa_v4_programs() -> dict[str, list]:
    I = need("pybpf.asm.Instruction")
    mov_r0 = I(0xb7, 0, imm=10)                            # r0 = 10
    return {
        "ldsx": [I(0x7a, 10, 0, -8, -3), I(0x91, 0, 10, -8), I(0x95)],   # r0 = *(s8 *)(r10 -8)
        "sdiv": [mov_r0, I(0x37, 0, 0, 1, -3), I(0x95)],                  # r0 s/= -3
        "smod": [mov_r0, I(0x97, 0, 0, 1, 3), I(0x95)],                   # r0 s%= 3
        "bswap": [mov_r0, I(0xd7, 0, 0, 0, 64), I(0x95)],                 # r0 = bswap64 r0
        "movsx": [I(0xb7, 1, imm=200), I(0xbf, 0, 1, 8), I(0x95)],        # r0 = (s8)r1
    }
# gotol (JMP32|JA, offset in imm) is not among them: Debian's 6.1 verifier walks
# it as a jump and accepts it ("if w0 jmp 0x1 goto pc+0" in its log), so its
# verdict does not tell 6.1 from 6.6.


ISA_V4_SINCE = (6, 6)


@check
def check_verifier_isa_v4() -> dict:
    """ISA v4 instructions: this kernel's verdict, the simulator's, and whether they differ."""
    verify = need("pybpf.verifier.verify")
    encode = need("pybpf.asm.encode")
    if str(VERIFIER_TESTS) not in sys.path:
        sys.path.insert(0, str(VERIFIER_TESTS))
    try:
        kernel = importlib.import_module("kernel")        # tests/verifier/kernel.py: BPF_PROG_LOAD
    except ModuleNotFoundError:
        raise Skip(f"{VERIFIER_TESTS}/kernel.py (the corpus' kernel loader) does not exist") from None
    release = tuple(int(x) for x in platform.release().split(".")[:2])
    version = "%d.%d" % release
    kernel_arg = version if "kernel" in inspect.signature(verify).parameters else None
    out = {}
    for name, insns in _isa_v4_programs().items():
        k = kernel.load(encode(insns), 1)                  # socket filter
        sim_ok, sim_error, crash = _simulate(verify, _ProbeCase(insns), kernel_arg)
        out[name] = {"kernel_ok": k.ok, "kernel_error": k.error, "sim_ok": sim_ok,
                     "sim_error": crash or sim_error}
    want = release >= ISA_V4_SINCE
    wrong = {n: r for n, r in out.items() if r["kernel_ok"] != want}
    if wrong:
        raise AssertionError(f"ISA v4 on {version}: kernel verdicts differ from 'accepted "
                             f"since 6.6' for {wrong}")
    return {"version": version, "kernel_accepts": want, "verify_kernel_arg": kernel_arg,
            "programs": out,
            "sim_differs": sorted(n for n, r in out.items() if r["sim_ok"] != r["kernel_ok"])}


class _ProbeCase:
    """The corpus' Case shape for one socket-filter program (what _simulate reads)."""

    def __init__(self, insns):
        self.insns, self.prog_type, self.flags, self.attach = insns, 1, 0, 0
