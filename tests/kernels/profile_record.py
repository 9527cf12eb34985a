"""Record one kernel's verifier verdicts on a bounded sample of the verifier corpus.

Run inside a guest (``run_in_vm``) or on the host; it loads every sampled
program with ``BPF_PROG_LOAD`` and writes, as JSON, both the programs
(self-contained: bytecode as hex plus the map specs of its map-loading
``ld_imm64``s, so a later corpus edit cannot silently change what a recorded
verdict refers to) and this kernel's verdict on each::

    python tests/kernels/profile_record.py OUT.json [--generated 200] [--seed 7]
    python tests/kernels/profile_record.py OUT.json --programs FIXTURE.json

With ``--programs`` the programs of an existing fixture are replayed instead of
rebuilt from the corpus, so all kernels are measured on the same bytes.
Standard library plus pybpf and the corpus; runs under the guest's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
VERIFIER_TESTS = CHECKOUT / "tests" / "verifier"
CORPUS = VERIFIER_TESTS / "corpus"
for _d in (str(CORPUS), str(VERIFIER_TESTS)):
    if _d not in sys.path:
        sys.path.insert(0, _d)

__all__ = ["program_of", "sample", "record", "main"]

MAP_SRCS = (1, 2, 5, 6)  # ld_imm64 src values that load a map


def _map_dict(m) -> dict:
    d = {k: int(getattr(m, k, 0) or 0) for k in ("type", "key_size", "value_size", "max_entries", "flags")}
    inner = getattr(m, "inner", None)
    if inner is not None:
        d["inner"] = _map_dict(inner)
    return d


def program_of(case) -> dict:
    """A corpus case as plain JSON: bytecode hex and maps keyed by logical ld_imm64 index."""
    from pybpf.asm.instruction import encode
    maps = {str(i): _map_dict(ins.map) for i, ins in enumerate(case.insns)
            if ins.map is not None and ins.opcode == 0x18 and ins.src in MAP_SRCS}
    code = encode([ins.replace(map=None) for ins in case.insns])
    return {"name": case.name, "prog_type": int(case.prog_type), "attach": int(case.attach or 0),
            "flags": int(case.flags or 0), "code": code.hex(), "maps": maps,
            "expect": case.expect, "tags": list(case.tags)}


def sample(generated: int, seed: int) -> list[dict]:
    """The version cases, every fast hand-written corpus case and ``generated`` seeded ones."""
    import all as corpus  # tests/verifier/corpus/all.py
    sys.path.insert(0, str(CHECKOUT / "tests" / "verifier_profiles"))
    import version_cases  # tests/verifier_profiles/version_cases.py
    cases = (list(version_cases.CASES) + list(corpus.hand_cases(include_slow=False))
             + list(corpus.generated(generated, seed)))
    return [program_of(c) for c in cases]


class _MapSpec:
    """What tests/verifier/runner.map_fd reads (hashable, one kernel map per distinct spec)."""

    def __init__(self, d: dict):
        self.type, self.key_size, self.value_size = d["type"], d["key_size"], d["value_size"]
        self.max_entries, self.flags = d["max_entries"], d.get("flags", 0)
        self.inner = _MapSpec(d["inner"]) if d.get("inner") else None
        self._key = json.dumps(d, sort_keys=True)

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _MapSpec) and other._key == self._key


def kernel_verdict(prog: dict) -> dict:
    import kernel  # tests/verifier/kernel.py
    import runner  # tests/verifier/runner.py
    from pybpf.asm.instruction import decode
    insns = decode(bytes.fromhex(prog["code"]))
    for k, m in prog["maps"].items():
        insns[int(k)] = insns[int(k)].replace(map=_MapSpec(m))
    r = kernel.load(runner.kernel_bytes(insns), prog["prog_type"],
                    expected_attach_type=prog["attach"], prog_flags=prog["flags"])
    return {"ok": r.ok, "error": r.error, "errno": r.errno}


def record(programs: list[dict]) -> dict:
    t0 = time.monotonic()
    verdicts = {p["name"]: kernel_verdict(p) for p in programs}
    release = platform.release()
    return {"release": release, "version": ".".join(release.split(".")[:2]),
            "seconds": round(time.monotonic() - t0, 2), "verdicts": verdicts}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON file to write ({programs, kernels: {version: record}})")
    ap.add_argument("--generated", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--programs", help="replay the programs of this fixture instead of the corpus")
    args = ap.parse_args(argv)
    if args.programs:
        programs = json.loads(Path(args.programs).read_text())["programs"]
    else:
        programs = sample(args.generated, args.seed)
    rec = record(programs)
    out = Path(args.out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"programs": programs, "kernels": {rec["version"]: rec}}))
    os.replace(tmp, out)
    n_ok = sum(v["ok"] for v in rec["verdicts"].values())
    print(f"{rec['release']}: {len(programs)} programs, {n_ok} accepted, {rec['seconds']}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
