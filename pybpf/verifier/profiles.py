"""Kernel profiles: how an older (or other) kernel's verifier differs from the 6.18 model.

The simulator models Linux 6.18. ``verify(..., kernel="6.1")`` consults a
:class:`KernelProfile` at the few places where kernels of the 6.x series give
different verdicts on the same program:

* the instruction set: ISA v4 (sign-extending loads, ``sdiv``/``smod``,
  ``movsx``, ``bswap``) arrived in 6.6, ``may_goto`` in 6.9,
  load-acquire/store-release in 6.15. An older kernel refuses them with the
  words its feature probe recorded (``unknown opcode d7``, ``BPF_ALU uses
  reserved fields``, ...);
* helpers: which helper ids exist, and which each program type may call, as
  probed on that kernel (``pybpf feature probe --json``);
* verifier rules that changed, keyed by the release that changed them
  (:data:`SEMANTICS`): e.g. before 6.14 a lookup in an array map with a
  constant in-range key still returns ``map_value_or_null``.

A profile is built from a ``pybpf feature probe --json`` document (or the
richer :func:`pybpf.features.profile.capture`); bundled ones, captured inside
Debian's 6.1 and 6.12 kernels and on this project's 6.18 host, live in
``profiles/*.json``. Anything a document does not say is derived from its
release.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pybpf.asm import opcodes as op

from .errors import Reject
from .helper_names import MAX_FUNC_ID

__all__ = ["KernelProfile", "load_profile", "BUNDLED", "SEMANTICS", "ISA_SINCE", "resolve"]

DATA = Path(__file__).with_name("profiles")
BUNDLED = ("6.1", "6.12", "6.18")

# Verifier rules that changed within 6.x: name -> first release with the 6.18 behaviour.
# Each is a verdict difference measured on the project's corpus in Debian's 6.1/6.12.
SEMANTICS: dict[str, tuple[int, int]] = {
    # "bpf: allow ctx writes using BPF_ST_MEM instruction" (Eduard Zingerman): before it,
    # check_mem_access() refused "BPF_ST stores into R%d ctx is not allowed".
    "st_mem_ctx": (6, 3),
    # "bpf: verifier: Support eliding map lookup nullness" (Daniel Xu): bpf_map_lookup_elem
    # on an array map with a constant, in-range key returns map_value, not map_value_or_null.
    "map_lookup_nonnull_const_key": (6, 14),
    # "bpf: Add range tracking for BPF_NEG" (Song Liu): before it, BPF_NEG made the
    # destination an unknown scalar, so e.g. fp + (-(x & 56)) has an unbounded minimum.
    "neg_range": (6, 17),
    # "bpf: Add bitwise tracking for BPF_END" (Tianci Cao, mainline 2026, in the 6.18.y and
    # 6.19.y stable series this project's 6.18 host runs): before it a byte swap made the
    # destination an unknown scalar. Measured: absent on 6.12, present on the 6.18 host.
    "end_range": (6, 18),
}

# Instruction families newer than ISA v3, with the release that accepted them; the
# probe names of pybpf.features (ISA_FEATURES and features.profile.EXTRA_ISA).
ISA_SINCE: dict[str, tuple[int, int]] = {
    "v4 sdiv/smod": (6, 6), "v4 movsx": (6, 6), "v4 ldsx": (6, 6), "v4 bswap": (6, 6),
    "v4 gotol": (6, 6), "may_goto": (6, 9), "load_acquire": (6, 15), "store_release": (6, 15),
}
# What a pre-6.6 kernel says about each (measured on 6.1; used when a profile lacks the detail).
_OLD_WORDS = {"v4 sdiv/smod": "BPF_ALU uses reserved fields", "v4 movsx": "BPF_MOV uses reserved fields",
              "v4 ldsx": "BPF_LDX uses reserved fields", "v4 bswap": "unknown opcode d7",
              "may_goto": "unknown opcode e5", "load_acquire": "BPF_ATOMIC uses invalid atomic opcode 100",
              "store_release": "BPF_ATOMIC uses invalid atomic opcode 110"}


def _version(text: str) -> tuple[int, int]:
    try:
        major, minor = text.split("-")[0].split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise ValueError(f"kernel profile: cannot read a version from {text!r} (want e.g. '6.1')") from None


def isa_feature_of(ins) -> str | None:
    """The ISA_SINCE family ``ins`` belongs to, or None for an ISA v1-v3 instruction."""
    code = ins.opcode
    cls = code & 7
    if cls in (op.ALU, op.ALU64):
        o = code & 0xF0
        if o in (op.DIV, op.MOD) and ins.off == 1:
            return "v4 sdiv/smod"
        if o == op.MOV and code & op.X and ins.off in (8, 16, 32):
            return "v4 movsx"
        if o == op.END and cls == op.ALU64:
            return "v4 bswap"
    elif cls == op.LDX and code & 0xE0 == op.MEMSX:
        return "v4 ldsx"
    elif cls == op.JMP32 and code & 0xF0 == op.JA:
        return "v4 gotol"
    elif cls == op.JMP and code & 0xF0 == op.JCOND:
        return "may_goto"
    elif cls == op.STX and code & 0xE0 == op.ATOMIC:
        if ins.imm == op.LOAD_ACQ:
            return "load_acquire"
        if ins.imm == op.STORE_REL:
            return "store_release"
    return None


@dataclass(frozen=True)
class KernelProfile:
    """What differs on one kernel. ``helpers`` None: use the 6.18 tables unchanged.

    ``isa_missing`` maps each unsupported instruction family to the kernel's
    words for it; ``helpers`` maps a program type number to the helper ids
    its ``get_func_proto`` answers; ``helpers_unknown`` the ids a probe could
    not decide (left to the 6.18 tables).
    """
    name: str
    release: str
    version: tuple[int, int]
    isa_missing: Mapping[str, str] = field(default_factory=dict)
    helpers: Mapping[int, frozenset[int]] | None = None
    helpers_unknown: Mapping[int, frozenset[int]] = field(default_factory=dict)
    max_func_id: int = MAX_FUNC_ID
    program_types: frozenset[str] | None = None
    map_types: frozenset[str] | None = None

    def has(self, rule: str) -> bool:
        """Does this kernel apply the 6.18 behaviour ``rule`` (a key of SEMANTICS)?"""
        return self.version >= SEMANTICS[rule]

    # -- decision points, called by the engine --
    def check_opcode(self, ins, idx: int) -> None:
        """resolve_pseudo_ldimm64()'s opcode table: refuses unknown opcodes anywhere in the program."""
        fam = isa_feature_of(ins)
        if fam is not None:
            words = self.isa_missing.get(fam)
            if words is not None and words.startswith("unknown opcode"):
                raise Reject(f"unknown opcode {ins.opcode:02x}", idx, errno=22)

    def check_insn(self, env, ins, idx: int) -> None:
        """do_check(), before the 6.18 checks of ``ins``: what this kernel refuses on the walk."""
        if ins.opcode & 7 == op.ST and not self.has("st_mem_ctx") and ins.dst < 10:
            from .state import PTR_TO_CTX
            if env.state.regs[ins.dst].type == PTR_TO_CTX:
                raise Reject(f"BPF_ST stores into R{ins.dst} ctx is not allowed", idx)
        fam = isa_feature_of(ins)
        if fam is not None:
            words = self.isa_missing.get(fam)
            if words is not None:
                if words.startswith("unknown opcode"):
                    words = f"unknown opcode {ins.opcode:02x}"
                raise Reject(words, idx, errno=22)

    def check_helper(self, prog_type: int, func_id: int) -> None:
        """check_helper_call(): the helper must exist on this kernel and be allowed for the type."""
        if self.helpers is None:
            return
        from pybpf.asm.helpers import HELPER_NAMES
        name = HELPER_NAMES.get(func_id, "unknown")
        if func_id >= self.max_func_id:
            raise Reject(f"invalid func unknown#{func_id}", errno=22)
        allowed = self.helpers.get(prog_type)
        if allowed is None or func_id in allowed or func_id in self.helpers_unknown.get(prog_type, ()):
            return
        # measured: 6.1 says "unknown func", 6.12 the newer words (the release between is a guess)
        if self.version < (6, 2):
            raise Reject(f"unknown func bpf_{name}#{func_id}", errno=22)
        raise Reject(f"program of this type cannot use helper bpf_{name}#{func_id}", errno=22)

    # -- construction --
    @classmethod
    def from_probe(cls, doc: Mapping, name: str | None = None) -> "KernelProfile":
        """A profile from ``pybpf feature probe --json`` output (optionally with a "profile" section)."""
        from .context import PROG_TYPES
        from pybpf.asm.helpers import HELPER_IDS
        if "kernel" not in doc:
            raise ValueError("kernel profile: not a 'pybpf feature probe --json' document (no \"kernel\" key)")
        release = str(doc["kernel"])
        extra = doc.get("profile", {}) or {}
        version = _version(str(extra.get("version") or release))
        isa_status = {n: r for n, r in (doc.get("isa", {}).get("instructions", {}) or {}).items()}
        isa_status.update(extra.get("isa", {}) or {})
        missing: dict[str, str] = {}
        for fam, since in ISA_SINCE.items():
            r = isa_status.get(fam)
            if r is None:  # not probed: derive from the release
                if version < since:
                    missing[fam] = _OLD_WORDS[fam]
            elif r.get("status") == "unsupported":
                missing[fam] = r.get("detail") or _OLD_WORDS[fam]
        helpers = None
        max_id = MAX_FUNC_ID
        if doc.get("helpers"):
            helpers = {}
            for pt, names in doc["helpers"].items():
                if pt in PROG_TYPES:
                    helpers[PROG_TYPES[pt]] = frozenset(HELPER_IDS[n.removeprefix("bpf_")] for n in names
                                                        if n.removeprefix("bpf_") in HELPER_IDS)
            seen = [h for ids in helpers.values() for h in ids]
            max_id = max(seen) + 1 if seen else MAX_FUNC_ID
        unknown = {PROG_TYPES[pt]: frozenset(HELPER_IDS[n.removeprefix("bpf_")] for n in names
                                             if n.removeprefix("bpf_") in HELPER_IDS)
                   for pt, names in (extra.get("helpers_inconclusive", {}) or {}).items() if pt in PROG_TYPES}

        def supported(key):
            d = doc.get(key)
            return frozenset(n for n, r in d.items() if r.get("status") == "supported") if d else None

        return cls(name or "%d.%d" % version, release, version, missing, helpers, unknown, max_id,
                   supported("program_types"), supported("map_types"))

    @classmethod
    def from_version(cls, version: str) -> "KernelProfile":
        """A profile from a release alone: ISA and rules by version, helpers as in 6.18."""
        v = _version(version)
        missing = {fam: _OLD_WORDS[fam] for fam, since in ISA_SINCE.items() if v < since}
        return cls("%d.%d" % v, version, v, missing)


@functools.lru_cache(maxsize=None)
def _bundled(name: str) -> KernelProfile:
    return KernelProfile.from_probe(json.loads((DATA / f"{name}.json").read_text()), name)


def load_profile(path: str | os.PathLike) -> KernelProfile:
    """Read a profile JSON file (``pybpf feature probe --json > FILE``)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"kernel profile {path}: {exc}") from None
    return KernelProfile.from_probe(doc)


def resolve(kernel) -> KernelProfile | None:
    """``verify(kernel=...)``: None, a KernelProfile, a bundled name, a release, a dict or a path."""
    if kernel is None or isinstance(kernel, KernelProfile):
        return kernel
    if isinstance(kernel, Mapping):
        return KernelProfile.from_probe(kernel)
    if isinstance(kernel, os.PathLike) or (isinstance(kernel, str) and kernel.endswith(".json")):
        return load_profile(kernel)
    if isinstance(kernel, str):
        v = _version(kernel)
        name = "%d.%d" % v
        if name in BUNDLED:
            return _bundled(name)
        return KernelProfile.from_version(kernel)
    raise TypeError(f"kernel= takes a version ('6.1'), a profile dict, a JSON path or a KernelProfile, "
                    f"not {type(kernel).__name__}")
