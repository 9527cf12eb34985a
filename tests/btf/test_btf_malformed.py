"""Malformed BTF: the parser answers BTFFormatError naming the type, never hangs.

Each hand-made case is also handed to the kernel (BPF_BTF_LOAD), which must
reject the same blob with the words our message borrows.
"""

import signal
import struct
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpf.btf import (Builder, BTFError, BTFFormatError, FuncLinkage, Kind, Spec,
                       TypeNotFoundError)
from pybpf.btf import types as T

HDR = 24


def _small() -> tuple[bytes, dict[str, int]]:
    """[1] u32, [2] u32[4], [3] FUNC_PROTO, [4] FUNC f, [5] PTR, [6] CONST, [7] VAR, [8] STRUCT."""
    b = Builder()
    ids = {"u32": b.add_int("unsigned int", 4)}
    ids["arr"] = b.add_array(ids["u32"], 4, ids["u32"])
    ids["proto"] = b.add_func_proto(ids["u32"], [("x", ids["u32"])])
    ids["func"] = b.add_func("f", ids["proto"], FuncLinkage.GLOBAL)
    ids["ptr"] = b.add_ptr(ids["u32"])
    ids["const"] = b.add_const(ids["ptr"])
    ids["var"] = b.add_var("v", ids["u32"])
    ids["s"] = b.add_struct("s", 8, [("a", ids["u32"], 0), ("", ids["u32"], 32)])
    return b.encode(), ids


def _offset(blob: bytes, type_id: int) -> int:
    """Byte offset of type ``type_id``'s record in ``blob`` (via the parser's own index)."""
    return HDR + Spec(blob)._offsets[type_id - 1] * 4


def _patch(blob: bytes, type_id: int, word: int, value: int) -> bytes:
    """Set u32 number ``word`` of type ``type_id``'s record (0 name, 1 info, 2 size/type, 3.. tail)."""
    out = bytearray(blob)
    struct.pack_into("=I", out, _offset(blob, type_id) + 4 * word, value)
    return bytes(out)


def _kernel_says(blob: bytes) -> str:
    """The kernel's BTF log for a blob it must reject."""
    from pybpf.btf import BTFLoadError, load_btf
    with pytest.raises(BTFLoadError) as info:
        load_btf(blob).close()
    return info.value.log


# -- the audit's cases ------------------------------------------------------------

def test_array_of_itself_is_a_loop_not_a_recursion():
    blob, ids = _small()
    bad = Spec(_patch(blob, ids["arr"], 3, ids["arr"]))  # elem type = the array itself
    for op in (bad.sizeof, bad.type_name, lambda i: str(bad.type_by_id(i))):
        with pytest.raises(BTFFormatError, match=r"^\[2\] ARRAY \(anon\) Loop detected"):
            op(ids["arr"])


def test_pointer_and_qualifier_loops():
    blob, ids = _small()
    ptr_self = Spec(_patch(blob, ids["ptr"], 2, ids["ptr"]))
    with pytest.raises(BTFFormatError, match=r"\[5\] PTR \(anon\) Loop detected"):
        ptr_self.type_name(ids["ptr"])
    # CONST -> PTR -> CONST: the kernel's own example of a pointer loop.
    const_loop = Spec(_patch(blob, ids["ptr"], 2, ids["const"]))
    with pytest.raises(BTFFormatError, match="Loop detected"):
        const_loop.type_name(ids["const"])
    const_self = Spec(_patch(blob, ids["const"], 2, ids["const"]))
    for op in (const_self.resolve, const_self.sizeof, const_self.type_name):
        with pytest.raises(BTFFormatError, match=r"\[6\] CONST \(anon\) Loop detected"):
            op(ids["const"])


def test_struct_containing_itself_through_an_anonymous_member():
    blob, ids = _small()
    # The anonymous member (second of struct s) now has type s itself.
    rec = _offset(blob, ids["s"])
    out = bytearray(blob)
    struct.pack_into("=I", out, rec + 12 + 12 + 4, ids["s"])
    bad = Spec(bytes(out))
    assert bad.member(ids["s"], "a").offset == 0  # a named member is found before descending
    with pytest.raises(BTFFormatError, match=r"\[8\] STRUCT s Loop detected"):
        bad.member(ids["s"], "nope")


def test_func_not_pointing_at_a_func_proto():
    blob, ids = _small()
    bad = Spec(_patch(blob, ids["func"], 2, ids["u32"]))
    with pytest.raises(BTFFormatError,
                       match=r"^\[4\] FUNC f Invalid type_id: FUNC must refer to a FUNC_PROTO, not INT"):
        bad.type_by_id(ids["func"])
    with pytest.raises(BTFFormatError, match="Invalid type_id"):
        bad.func_args("f")
    with pytest.raises(BTFFormatError, match="Invalid type_id"):
        bad.type_name(ids["func"])


@pytest.mark.parametrize("what, type_key, word, value, match", [
    ("func linkage", "func", 1, (Kind.FUNC << 24) | 28, r"^\[4\] FUNC f Invalid func linkage 28"),
    ("var linkage", "var", 3, 28, r"^\[7\] VAR v Linkage not supported \(28\)"),
    ("dangling member", "s", 4, 99, r"^\[8\] STRUCT s Invalid member \(type id 99"),
    ("dangling elem", "arr", 3, 99, r"^\[2\] ARRAY \(anon\) Invalid elem"),
    ("dangling ptr", "ptr", 2, 99, r"^\[5\] PTR \(anon\) Invalid type_id"),
    ("void var", "var", 2, 0, r"^\[7\] VAR v Invalid type_id"),
])
def test_bad_fields_are_format_errors(what, type_key, word, value, match):
    blob, ids = _small()
    bad = Spec(_patch(blob, ids[type_key], word, value))
    with pytest.raises(BTFFormatError, match=match):
        bad.type_by_id(ids[type_key])


def test_array_of_function_has_no_size():
    blob, ids = _small()
    bad = Spec(_patch(blob, ids["arr"], 3, ids["proto"]))
    with pytest.raises(BTFFormatError, match=r"\[2\] ARRAY \(anon\) Invalid elem: FUNC_PROTO"):
        bad.sizeof(ids["arr"])
    # Asking for the size of a function itself is a question, not a broken blob.
    with pytest.raises(BTFError, match="has no size") as info:
        Spec(blob).sizeof(ids["proto"])
    assert not isinstance(info.value, BTFFormatError)


@pytest.mark.parametrize("bad_id", [-1, -100, 9, 1 << 40])
def test_out_of_range_ids(bad_id):
    spec = Spec(_small()[0])
    for op in (spec.type_by_id, spec.kind_of, spec.name_of):
        with pytest.raises(TypeNotFoundError, match=f"type id {bad_id} out of range"):
            op(bad_id)


def test_split_spec_rejects_negative_ids():
    base = Spec(_small()[0])
    b = Builder()
    b.add_int("unsigned int", 4)
    split = Spec(b.encode(), base)
    assert split.type_by_id(1).name == "unsigned int"  # through the base
    with pytest.raises(TypeNotFoundError, match="type id -1 out of range"):
        split.type_by_id(-1)


@pytest.mark.kernel
@pytest.mark.parametrize("case, type_key, word, value, words", [
    ("array loop", "arr", 3, 2, "Loop detected"),
    ("pointer loop", "ptr", 2, 5, "Loop detected"),
    ("func to int", "func", 2, 1, "Invalid type_id"),
    ("func linkage", "func", 1, (Kind.FUNC << 24) | 28, "Invalid func linkage"),
    ("var linkage", "var", 3, 28, "Linkage not supported"),
])
def test_kernel_rejects_with_the_same_words(case, type_key, word, value, words):
    blob, ids = _small()
    bad = _patch(blob, ids[type_key], word, value)
    log = _kernel_says(bad)
    assert words in log
    parsed = Spec(bad)
    with pytest.raises(BTFFormatError, match=words):
        for tid in range(1, len(parsed)):
            parsed.type_name(tid)
            parsed.resolve(tid)


# -- mutation fuzzing ---------------------------------------------------------------

_SIZED = (T.Int, T.Pointer, T.Array, T.Composite, T.Enum, T.Float, T.Datasec, T.Var)


def _exercise(blob: bytes) -> None:
    """Everything a caller may ask of a spec; only BTFFormatError may escape."""
    spec = Spec(blob)
    for tid in range(len(spec)):
        spec.kind_of(tid)
        spec.name_of(tid)
        t = spec.type_by_id(tid)
        str(t)
        spec.type_name(tid)
        resolved = spec.resolve(tid)
        try:
            spec.sizeof(tid)
        except BTFFormatError:
            raise
        except BTFError as e:  # a sizeless type asked for directly: a fair answer
            assert not isinstance(resolved, _SIZED), e
        if isinstance(resolved, T.Composite):
            for m in resolved.members:
                try:
                    spec.member(resolved, m.name or "nope")
                except (BTFFormatError, KeyError):
                    pass
        if isinstance(t, T.Func):
            spec.func_args(t.name) if t.name else t.proto
        if t.name:
            spec.lookup_all(t.name)
    list(spec.types())
    spec.name_index()


def _timeout(signum, frame):
    raise TimeoutError("BTF parser took over 5 s on one blob: a hang")


def _base_blobs() -> list[bytes]:
    b = Builder()
    i = b.add_int("int", 4, signed=True)
    u = b.add_int("unsigned int", 4)
    p = b.add_ptr(i)
    a = b.add_array(p, 3, u)
    s = b.add_struct("pair", 32, [("a", i, 0), ("", a, 64), ("b", u, 255, 1)])
    b.add_union("un", 8, [("x", s, 0), ("y", p, 0)])
    fp = b.add_func_proto(i, [("ctx", p), ("", 0)])
    b.add_func("fn", fp)
    b.add_typedef("fn_t", fp)
    v = b.add_var("counter", a)
    b.add_datasec(".bss", 24, [(v, 0, 24)])
    b.add_enum("color", 4, [("RED", 0), ("BLUE", -1)], signed=True)
    b.add_enum("big", 8, [("HUGE", 1 << 40)])
    b.add_volatile(b.add_const(b.add_restrict(p)))
    b.add_decl_tag("tag", s, 0)
    b.add_type_tag("user", p)
    b.add_fwd("later", union=True)
    b.add_float("double", 8)
    return [_small()[0], b.encode()]


_BLOBS = _base_blobs()


@st.composite
def _mutated(draw) -> bytes:
    blob = bytearray(draw(st.sampled_from(_BLOBS)))
    n_types = len(Spec(bytes(blob)))
    words = (len(blob) - HDR) // 4
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 3))
        if choice == 3:  # flip one byte anywhere, header included
            pos = draw(st.integers(0, len(blob) - 1))
            blob[pos] ^= draw(st.integers(1, 255))
            continue
        pos = HDR + 4 * draw(st.integers(0, words - 1))
        if choice == 0:  # a type id: in range, just past it, or a self-reference
            value = draw(st.integers(0, n_types + 1))
        elif choice == 1:  # an info word: any kind, small vlen, maybe kind_flag
            value = (draw(st.booleans()) << 31 | draw(st.integers(0, 31)) << 24
                     | draw(st.integers(0, 40)))
        else:
            value = draw(st.integers(0, 2**32 - 1))
        struct.pack_into("=I", blob, pos, value)
    if draw(st.integers(0, 9)) == 0:
        del blob[draw(st.integers(HDR, len(blob) - 1)):]
    return bytes(blob)


@settings(max_examples=400, derandomize=True, deadline=timedelta(seconds=2),
          suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_blobs_give_only_format_errors(blob):
    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(5)  # the deadline only measures; this ends a real hang
    try:
        _exercise(blob)
    except BTFFormatError as e:
        assert str(e)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_valid_blobs_exercise_cleanly():
    for blob in _BLOBS:
        _exercise(blob)
