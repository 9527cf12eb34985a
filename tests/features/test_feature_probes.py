"""Feature probes against the running kernel, and how their answers are used."""

import errno
import json
import subprocess
import sys

import pytest

from pybpf import features
from pybpf.asm import opcodes as op
from pybpf.asm.instruction import Instruction as I
from pybpf.features import Status, probes
from pybpf.maps import MapSpec, MapType
from pybpf.program import ProgramSpec, ProgType

pytestmark = pytest.mark.kernel


def test_core_program_and_map_types_supported():
    for ptype in ("socket_filter", "xdp", "sched_cls", "raw_tracepoint", "kprobe", "tracepoint"):
        assert features.prog_type(ptype).status is Status.SUPPORTED, ptype
    for mtype in (MapType.HASH, MapType.ARRAY, MapType.RINGBUF, MapType.LPM_TRIE,
                  MapType.HASH_OF_MAPS, MapType.QUEUE, MapType.SK_STORAGE):
        assert features.map_type(mtype), mtype


def test_probes_match_real_objects():
    """A supported map type really can be created with a MapSpec; the probe is not a guess."""
    assert features.map_type(MapType.RINGBUF)
    with MapSpec(MapType.RINGBUF, 0, 0, 4096).create() as rb:
        assert rb.fd > 0


def test_unknown_types_unsupported():
    # Type numbers beyond the UAPI enums: the kernel knows nothing of them.
    a = probes._load(probes._RET0, 200)
    assert not a.ok and a.errno == errno.EINVAL and not a.log.strip()


def test_helper_probes():
    assert features.helper(ProgType.XDP, "map_lookup_elem")
    assert features.helper("sched_cls", "skb_load_bytes")
    p = features.helper("xdp", "skb_load_bytes")
    assert p.status is Status.UNSUPPORTED
    assert "cannot use helper bpf_skb_load_bytes#26" in p.detail
    assert features.helper("xdp", 999).status is Status.UNSUPPORTED


def test_isa_versions():
    for v in (1, 2, 3, 4):
        assert features.isa(v), features.isa(v)  # Linux 6.18 accepts ISA v4
    with pytest.raises(ValueError):
        features.isa(5)


def test_eperm_is_inconclusive_not_unsupported(monkeypatch):
    monkeypatch.setattr(probes, "_load", lambda insns, ptype: probes._Attempt(False, errno.EPERM, ""))
    p = features.prog_type("tracing")
    assert p.status is Status.INCONCLUSIVE and "EPERM" in p.detail
    assert not p and not p.conclusive


def test_results_cached(monkeypatch):
    assert features.prog_type("xdp")
    monkeypatch.setattr(probes, "_load", lambda *a: pytest.fail("probed again"))
    assert features.prog_type("xdp")


def test_disk_cache_roundtrip_skips_inconclusive(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert features.map_type(MapType.HASH)
    with probes._lock:
        probes._cache[("prog", 999)] = probes.Probe("x", Status.INCONCLUSIVE, "EPERM")
    path = features.save_disk_cache()
    assert probes.kernel_release() in path.name
    features.clear_cache()
    assert features.load_disk_cache() == 1
    assert ("map", int(MapType.HASH)) in probes._cache and ("prog", 999) not in probes._cache


def test_explain_load_failure_names_helper_and_program_type():
    spec = ProgramSpec([I(op.CALL_OP, imm=27), I(op.ALU64 | op.MOV | op.K), I(op.EXIT_OP)], "xdp")
    assert features.explain_load_failure(spec) == "helper bpf_get_stackid is not allowed in program type xdp"
    ok = ProgramSpec([I(op.ALU64 | op.MOV | op.K), I(op.EXIT_OP)], "xdp")
    assert features.explain_load_failure(ok) is None
    lirc = ProgramSpec([I(op.ALU64 | op.MOV | op.K), I(op.EXIT_OP)], "lirc_mode2")
    if features.prog_type("lirc_mode2").status is Status.UNSUPPORTED:
        assert "does not support program type lirc_mode2" in features.explain_load_failure(lirc)


def test_explain_map_failure(monkeypatch):
    assert features.explain_map_failure(MapType.HASH) is None
    monkeypatch.setattr(probes, "_probe_map_type",
                        lambda t: probes.Probe(t.bpftool_name, Status.UNSUPPORTED, "EINVAL"))
    assert features.explain_load_failure(MapSpec(MapType.ARENA, 0, 0, 1, flags=1 << 10)) == \
        "this kernel does not support map type arena (BPF_MAP_TYPE_ARENA)"


def test_cli_json():
    out = subprocess.run([sys.executable, "-m", "pybpf", "feature", "probe", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["program_types"]["xdp"]["status"] == "supported"
    assert data["map_types"]["ringbuf"]["status"] == "supported"
    assert data["isa"]["v4"]["status"] == "supported"
    assert "bpf_map_lookup_elem" in data["helpers"]["xdp"]
    assert "bpf_skb_load_bytes" not in data["helpers"]["xdp"]
    assert "bpf_skb_load_bytes" in data["helpers"]["sched_cls"]
    text = subprocess.run([sys.executable, "-m", "pybpf", "feature", "probe", "--no-helpers"],
                          capture_output=True, text=True, timeout=120).stdout
    assert "eBPF program_type xdp is available" in text
