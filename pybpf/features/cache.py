"""Whole-kernel probing and the optional on-disk cache.

Probe results depend on the kernel build, so the disk cache is keyed by the
kernel release (``uname -r``). Inconclusive answers depend on who asks
(capabilities, lockdown) and are never written to disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pybpf.asm.helpers import HELPER_NAMES
from pybpf.maps.types import MapType
from pybpf.program.types import ProgType

from . import probes
from .probes import ISA_FEATURES, Probe, Status

__all__ = ["probe_all", "cache_path", "load_disk_cache", "save_disk_cache"]


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pybpf" / f"features-{probes.kernel_release()}.json"


def load_disk_cache(path: Path | None = None) -> int:
    """Seed the in-process cache from disk; returns how many answers were loaded."""
    path = path or cache_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    if data.get("kernel") != probes.kernel_release():
        return 0
    n = 0
    with probes._lock:
        for entry in data.get("probes", []):
            key = tuple(entry["key"])
            probes._cache[key] = Probe(entry["subject"], Status(entry["status"]), entry.get("detail", ""))
            n += 1
    return n


def save_disk_cache(path: Path | None = None) -> Path:
    path = path or cache_path()
    with probes._lock:
        entries = [{"key": list(k), "subject": p.subject, "status": p.status.value, "detail": p.detail}
                   for k, p in probes._cache.items() if p.status is not Status.INCONCLUSIVE]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"kernel": probes.kernel_release(), "probes": entries}))
    tmp.replace(path)
    return path


def probe_all(*, helpers: bool = True, disk_cache: bool = False) -> dict:
    """Every probe, as a JSON-ready dict (the shape ``pybpf feature probe --json`` prints)."""
    if disk_cache:
        load_disk_cache()
    out: dict = {"kernel": probes.kernel_release(),
                 "program_types": {t.bpftool_name: probes.prog_type(t).as_dict()
                                   for t in ProgType if t != ProgType.UNSPEC},
                 "map_types": {t.bpftool_name: probes.map_type(t).as_dict()
                               for t in MapType if t != MapType.UNSPEC},
                 "isa": {**{f"v{v}": probes.isa(v).as_dict() for v in (1, 2, 3, 4)},
                         "instructions": {n: probes.isa_feature(n).as_dict() for n in ISA_FEATURES}}}
    if helpers:
        table: dict = {}
        for t in ProgType:
            if t == ProgType.UNSPEC or not probes.prog_type(t) or probes.prog_type(t).detail:
                continue
            table[t.bpftool_name] = [f"bpf_{HELPER_NAMES[h]}" for h in sorted(HELPER_NAMES)
                                     if h and probes.helper(t, h)]
        out["helpers"] = table
    if disk_cache:
        save_disk_cache()
    return out
