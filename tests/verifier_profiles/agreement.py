"""Per-kernel agreement of ``verify(..., kernel=...)`` with recorded kernel verdicts.

The fixture (recorded.json, written by tests/kernels/profile_refresh.py) holds
self-contained programs (bytecode hex + map specs) and, per kernel version,
the real verifier's verdict on each. ``measure`` runs the simulator once with
that kernel's profile and once without (the 6.18 model, the baseline the
profile is meant to improve on) and counts agreement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pybpf.verifier import verify
from pybpf.verifier.api import MapView

FIXTURE = Path(__file__).with_name("recorded.json")

__all__ = ["FIXTURE", "KernelAgreement", "load_fixture", "simulate", "measure", "report"]


@dataclass
class KernelAgreement:
    version: str
    release: str
    compared: int = 0
    agree: int = 0
    baseline_agree: int = 0       # same programs, kernel=None (the 6.18 model)
    declined: int = 0             # the simulator raised NotImplementedError
    both_reject: int = 0
    same_reason: int = 0          # among both_reject: the same last log line
    disagreements: list = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.agree / self.compared if self.compared else 0.0


def load_fixture(path: Path = FIXTURE) -> dict:
    return json.loads(Path(path).read_text())


def _maps(prog: dict) -> dict:
    return {int(k): MapView(m["type"], m["key_size"], m["value_size"], m["max_entries"], m.get("flags", 0))
            for k, m in prog["maps"].items()}


def simulate(prog: dict, kernel=None):
    """The simulator's verdict on one fixture program: (ok, error), or None when it declines."""
    try:
        r = verify(bytes.fromhex(prog["code"]), prog["prog_type"], _maps(prog), prog_flags=prog["flags"],
                   expected_attach_type=prog["attach"], kernel=kernel)
    except NotImplementedError:
        return None
    return r.ok, r.error


def measure(fixture: dict, kernels: dict | None = None) -> dict[str, KernelAgreement]:
    """Agreement per recorded kernel; ``kernels`` maps a version to the kernel= argument to use."""
    out = {}
    for version, rec in fixture["kernels"].items():
        arg = (kernels or {}).get(version, version)
        res = KernelAgreement(version, rec["release"])
        for prog in fixture["programs"]:
            k = rec["verdicts"].get(prog["name"])
            if k is None:
                continue
            sim = simulate(prog, arg)
            if sim is None:
                res.declined += 1
                continue
            base = sim if version == "6.18" else simulate(prog, None)
            res.compared += 1
            res.agree += sim[0] == k["ok"]
            res.baseline_agree += base is not None and base[0] == k["ok"]
            if not sim[0] and not k["ok"]:
                res.both_reject += 1
                res.same_reason += sim[1] == k["error"]
            if sim[0] != k["ok"]:
                res.disagreements.append((prog["name"], k["ok"], k["error"], sim[1]))
        out[version] = res
    return out


def report(results: dict[str, KernelAgreement]) -> str:
    lines = ["kernel  release                  agree/compared      %   without profile  declined  same reason"]
    for v, r in results.items():
        lines.append(f"{v:<7} {r.release:<24} {r.agree:>5}/{r.compared:<7} {r.percent:6.2f}  "
                     f"{r.baseline_agree:>5} ({100.0 * r.baseline_agree / max(r.compared, 1):6.2f}%)  {r.declined:>5}  {r.same_reason}/{r.both_reject}")
        for name, kok, kerr, serr in r.disagreements:
            lines.append(f"    {name}: kernel {'accepts' if kok else 'rejects: ' + str(kerr)}; "
                         f"simulator {'accepts' if not serr else 'rejects: ' + serr}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(load_fixture())))
