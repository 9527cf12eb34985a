"""Parsing the running kernel's BTF (/sys/kernel/btf), cross-checked with bpftool."""

import json
import os
import shutil
import subprocess

import pytest

from pybpf.btf import (Kind, MemberNotFoundError, Spec, TypeNotFoundError, load_kernel_btf,
                       load_module_btf, module_btf_names)
from pybpf.btf import types as T

pytestmark = pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"),
                                reason="kernel without /sys/kernel/btf/vmlinux")


@pytest.fixture(scope="module")
def btf() -> Spec:
    return load_kernel_btf()


def test_cached(btf):
    assert load_kernel_btf() is btf


def test_task_struct_pid_tgid(btf):
    pid_off, pid_size = btf.member_offset("task_struct", "pid")
    tgid_off, tgid_size = btf.member_offset("task_struct", "tgid")
    assert pid_size == tgid_size == 4
    assert tgid_off == pid_off + 4
    assert 0 < pid_off < btf.sizeof("task_struct")
    pid = btf.struct("task_struct").member("pid")
    assert pid.type.name == "pid_t"
    resolved = btf.resolve(pid.type)
    assert isinstance(resolved, T.Int) and resolved.signed and resolved.size == 4


def test_sock_daddr_through_anonymous_members(btf):
    # struct sock { struct sock_common __sk_common; ... }, and skc_daddr sits in an
    # anonymous union/struct inside sock_common.
    common = btf.struct("sock_common")
    assert "skc_daddr" not in common.member_names()
    loc = btf.struct("sock").member("__sk_common.skc_daddr")
    assert loc.size == 4 and btf.type_name(loc.type) == "__be32"
    inner = btf.member("sock_common", "skc_daddr")
    assert loc.offset == btf.member_offset("sock", "__sk_common")[0] + inner.offset
    assert btf.member_offset("sock_common", "skc_rcv_saddr") == (inner.offset + 4, 4)


def test_sk_buff_len_and_bitfield(btf):
    off, size = btf.member_offset("sk_buff", "len")
    assert size == 4 and 0 < off < btf.sizeof("sk_buff")
    pkt_type = btf.member("sk_buff", "pkt_type")
    assert pkt_type.is_bitfield and pkt_type.bitfield_size == 3


def test_arrays_and_indexing(btf):
    comm = btf.member("task_struct", "comm")
    assert btf.type_name(comm.type) == "char[16]" and comm.size == 16
    assert btf.member_offset("task_struct", "comm[3]") == (comm.offset + 3, 1)
    with pytest.raises(MemberNotFoundError, match="out of bounds"):
        btf.member("task_struct", "comm[16]")


def test_member_errors_name_the_problem(btf):
    with pytest.raises(MemberNotFoundError, match="struct task_struct has no member named 'nope'"):
        btf.member_offset("task_struct", "nope")
    with pytest.raises(MemberNotFoundError, match="pointers must be read first"):
        btf.member_offset("task_struct", "mm.pgd")
    with pytest.raises(TypeNotFoundError, match="no BTF type named 'no_such_struct_xyz'"):
        btf.struct("no_such_struct_xyz")


def test_func_id_and_args(btf):
    fid = btf.func_id("tcp_v4_connect")
    func = btf.type_by_id(fid)
    assert func.kind == Kind.FUNC and func.name == "tcp_v4_connect"
    assert btf.func_args("tcp_v4_connect") == [
        ("sk", "struct sock *"), ("uaddr", "struct sockaddr *"), ("addr_len", "int")]
    assert btf.type_name(func.proto.return_type) == "int"


def test_enum(btf):
    e = btf.enum("bpf_prog_type")
    assert e.value_of("BPF_PROG_TYPE_UNSPEC") == 0
    assert e.value_of("BPF_PROG_TYPE_SOCKET_FILTER") == 1


def _bpftool_json(path: str, base: str | None = None) -> list[dict]:
    tool = shutil.which("bpftool")
    if tool is None:
        pytest.skip("bpftool not installed (apt-get install bpftool) for the cross-check")
    cmd = [tool, "-j", "btf", "dump", "file", path, "format", "raw"]
    if base:
        cmd[2:2] = ["-B", base]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode:
        pytest.skip(f"bpftool failed: {out.stderr.strip()}")
    return json.loads(out.stdout)["types"]


def _as_bpftool(spec: Spec, t: T.Type) -> dict:
    """Our decoded type in the shape of `bpftool -j btf dump ... format raw`."""
    d = {"id": t.id, "kind": t.kind.name, "name": t.name or "(anon)"}
    if isinstance(t, T.Int):
        d.update(size=t.size, bits_offset=t.bit_offset, nr_bits=t.bits)
    elif isinstance(t, (T.Pointer, T.Qualifier)):
        d["type_id"] = t.type_id
    elif isinstance(t, T.Array):
        d.update(type_id=t.type_id, index_type_id=t.index_type_id, nr_elems=t.nelems)
    elif isinstance(t, T.Composite):
        d.update(size=t.size, vlen=len(t.members), members=[
            {"name": m.name or "(anon)", "type_id": m.type_id, "bits_offset": m.bit_offset,
             **({"bitfield_size": m.bitfield_size} if m.bitfield_size else {})}
            for m in t.members])
    elif isinstance(t, T.Enum):
        d.update(size=t.size, vlen=len(t.values),
                 values=[{"name": v.name, "val": v.value} for v in t.values])
    elif isinstance(t, T.Fwd):
        d["fwd_kind"] = "union" if t.is_union else "struct"
    elif isinstance(t, T.Func):
        d.update(type_id=t.type_id, linkage=t.linkage.name.lower())
    elif isinstance(t, T.FuncProto):
        d.update(ret_type_id=t.return_type_id, vlen=len(t.params), params=[
            {"name": p.name or "(anon)", "type_id": p.type_id} for p in t.params])
    elif isinstance(t, T.Var):
        d.update(type_id=t.type_id)
    elif isinstance(t, T.Datasec):
        d.update(size=t.size, vlen=len(t.vars), vars=[
            {"type_id": v.type_id, "offset": v.offset, "size": v.size} for v in t.vars])
    elif isinstance(t, T.Float):
        d["size"] = t.size
    elif isinstance(t, T.DeclTag):
        d.update(type_id=t.type_id, component_idx=t.component_idx)
    return d


def _compare(spec: Spec, theirs: list[dict], step: int) -> int:
    assert len(theirs) == len(spec) - spec.first_id
    keys_to_skip = {"encoding", "linkage_var"}
    checked = 0
    for i, ref in enumerate(theirs):
        tid = spec.first_id + i
        assert ref["id"] == tid
        assert spec.kind_of(tid).name == ref["kind"], ref
        assert (spec.name_of(tid) or "(anon)") == ref["name"], ref
        if i % step == 0 or ref["name"] in ("task_struct", "sock", "sk_buff", "tcp_v4_connect"):
            ours = _as_bpftool(spec, spec.type_by_id(tid))
            expected = {k: v for k, v in ref.items() if k in ours and k not in keys_to_skip}
            if "values" in expected:  # bpftool -j sign-extends unsigned 32-bit values
                mask = (1 << (8 * ref["size"])) - 1
                for d in (expected, ours):
                    d["values"] = [{**v, "val": v["val"] & mask} for v in d["values"]]
            assert {k: v for k, v in ours.items() if k in expected} == expected
            checked += 1
    return checked


@pytest.mark.kernel
def test_cross_check_with_bpftool(btf):
    theirs = _bpftool_json("/sys/kernel/btf/vmlinux")
    assert _compare(btf, theirs, step=13) > 1000


def test_module_btf():
    names = module_btf_names()
    if not names:
        pytest.skip("no loaded module carries BTF (/sys/kernel/btf has only vmlinux)")
    spec = load_module_btf(names[0])
    base = load_kernel_btf()
    assert spec.first_id == len(base) and len(spec) > len(base)
    assert spec.type_by_id(1) is base.type_by_id(1)  # base ids resolve through the base
    own = list(spec.types())
    assert own, "module BTF has no types of its own"
    named = next(t for t in own if t.name)
    assert named.id in spec.ids_by_name(named.name)
    _compare(spec, _bpftool_json(f"/sys/kernel/btf/{names[0]}", "/sys/kernel/btf/vmlinux"), 1)


def test_split_btf_from_encoder():
    """Split BTF semantics without needing a loaded module: ids and strings
    continue after the base, names resolve across both."""
    import struct
    from pybpf.btf import Builder
    base_b = Builder()
    i32 = base_b.add_int("int", 4, signed=True)
    base = Spec(base_b.encode())
    # A split blob: its first type id is len(base) == 2, string offsets start at
    # base's string section length, and it may reference base types.
    split_strings = b"\0pair\0a\0"
    str_base = len(base_b.encode()) - 24 - 16  # base string section length
    rec = struct.pack("=III", str_base + 1, (Kind.STRUCT << 24) | 1, 4)
    rec += struct.pack("=III", str_base + 6, i32, 0)
    blob = struct.pack("=HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(rec), len(rec),
                       len(split_strings)) + rec + split_strings
    split = Spec(blob, base)
    assert split.first_id == 2 and len(split) == 3
    pair = split.struct("pair")
    assert pair.id == 2 and pair.members[0].name == "a"
    assert split.member("pair", "a").type.name == "int"
    assert split.lookup("int").id == i32
