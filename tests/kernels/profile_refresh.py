"""Re-capture the bundled kernel profiles and the recorded verdicts, booting 6.1 and 6.12.

    python tests/kernels/profile_refresh.py [--kernels 6.1,6.12] [--generated 600] [--seed 7]
                                            [--check-only]

On the host (the 6.18 reference) it builds the program sample
(profile_record.sample: version cases, hand-written corpus, seeded generated
programs), records this kernel's verdicts and captures its profile; then in
each guest (one boot each, through vm.run_in_vm) it captures that kernel's
profile (``pybpf.features.profile.capture``) and records its verdicts on the
*same bytes*. Results go to pybpf/verifier/profiles/<version>.json and
tests/verifier_profiles/recorded.json (the fast test's fixture), unless
``--check-only``, which writes to a temporary directory and prints the
per-kernel agreement of ``verify(..., kernel=...)`` only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import profile_record  # noqa: E402

PROFILES = CHECKOUT / "pybpf" / "verifier" / "profiles"
FIXTURE = CHECKOUT / "tests" / "verifier_profiles" / "recorded.json"
GUEST_TIMEOUT = 900

__all__ = ["refresh", "main"]


def _capture_here() -> dict:
    from pybpf.features.profile import capture
    return capture()


def refresh(kernels: list[str], generated: int, seed: int, out_profiles: Path, out_fixture: Path) -> dict:
    """Record everything; returns the fixture document. Raises RuntimeError when a guest fails."""
    import vm
    programs = profile_record.sample(generated, seed)
    host = profile_record.record(programs)
    out_profiles.mkdir(parents=True, exist_ok=True)
    profiles = {host["version"]: _capture_here()}
    records = {host["version"]: host}
    # guest output goes through the read-write checkout, in a directory removed afterwards
    work = Path(tempfile.mkdtemp(prefix=".profile-refresh-", dir=CHECKOUT / "tests" / "verifier_profiles"))
    try:
        progs = work / "programs.json"
        progs.write_text(json.dumps({"programs": programs}))
        for k in kernels:
            prof, rec = work / f"profile-{k}.json", work / f"rec-{k}.json"
            py = sys.executable
            cmd = (f"{py} -c 'import json,sys; from pybpf.features.profile import capture; "
                   f"json.dump(capture(), open(sys.argv[1], \"w\"))' {prof} && "
                   f"{py} {HERE / 'profile_record.py'} {rec} --programs {progs}")
            r = vm.run_in_vm(cmd, kernel=k, timeout=GUEST_TIMEOUT, cwd=CHECKOUT)
            if r.rc != 0 or not rec.exists() or not prof.exists():
                raise RuntimeError(f"kernel {k}: guest failed (rc {r.rc})\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
            doc = json.loads(rec.read_text())
            for version, record in doc["kernels"].items():
                records[version] = record
            p = json.loads(prof.read_text())
            profiles[p["profile"]["version"]] = p
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for version, p in profiles.items():
        (out_profiles / f"{version}.json").write_text(json.dumps(p, indent=1, sort_keys=True) + "\n")
    fixture = {"generated": generated, "seed": seed, "programs": programs,
               "kernels": {v: records[v] for v in sorted(records, key=lambda s: tuple(map(int, s.split("."))))}}
    out_fixture.write_text(json.dumps(fixture, indent=0, sort_keys=True) + "\n")
    return fixture


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default="6.1,6.12")
    ap.add_argument("--generated", type=int, default=600)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--check-only", action="store_true", help="do not overwrite the bundled files")
    args = ap.parse_args(argv)
    kernels = [k for k in args.kernels.split(",") if k]
    if args.check_only:
        tmp = Path(tempfile.mkdtemp(prefix="pybpf-profiles-"))
        out_profiles, out_fixture = tmp / "profiles", tmp / "recorded.json"
    else:
        out_profiles, out_fixture = PROFILES, FIXTURE
    fixture = refresh(kernels, args.generated, args.seed, out_profiles, out_fixture)
    sys.path.insert(0, str(CHECKOUT / "tests" / "verifier_profiles"))
    import agreement  # tests/verifier_profiles/agreement.py
    profiles = {v: str(out_profiles / f"{v}.json") for v in fixture["kernels"]}
    print(agreement.report(agreement.measure(fixture, profiles)))
    if args.check_only:
        shutil.rmtree(out_profiles.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
