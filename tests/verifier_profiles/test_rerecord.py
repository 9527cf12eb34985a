"""Re-record the 6.1/6.12 verdicts and profiles in QEMU guests and check verify(kernel=) again.

Marked ``kernels`` (deselected by default; ``pytest -m kernels``): it boots
each kernel once (~10 s under TCG, ~35 s with the profile capture) through
tests/kernels/vm.py. It writes to a temporary directory, never over the
bundled files; to refresh those, run ``python tests/kernels/profile_refresh.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent / "kernels"))

import agreement  # noqa: E402
import version_cases  # noqa: E402

pytestmark = pytest.mark.kernels

KERNELS = [k for k in os.environ.get("PYBPF_KERNELS", "6.1,6.12").split(",") if k]
MIN_AGREEMENT = 99.0


def test_rerecorded_agreement(tmp_path):
    import profile_refresh
    fixture = profile_refresh.refresh(KERNELS, 300, 11, tmp_path / "profiles", tmp_path / "recorded.json")
    profiles = {v: str(tmp_path / "profiles" / f"{v}.json") for v in fixture["kernels"]}
    results = agreement.measure(fixture, profiles)
    print("\n" + agreement.report(results))
    for k in KERNELS:
        assert k in results, f"no verdicts recorded for {k}"
    for v, r in results.items():
        assert r.percent >= MIN_AGREEMENT, agreement.report({v: r})
        verdicts = fixture["kernels"][v]["verdicts"]
        wrong = {n: verdicts[n] for n, acc in version_cases.ACCEPTED_BY.items()
                 if verdicts[n]["ok"] != (v in acc)}
        assert not wrong, f"{v}: version cases whose verdict is not the expected one: {wrong}"
