"""The histogram layout is BCC's, character for character."""

from pybpf.tools.histogram import format_log2_hist, log2_bucket

# Produced by BCC 0.26's table._print_log2_hist([0, 1, 0, 10, 3], "usecs", False).
BCC_SMALL = """\
     usecs               : count     distribution
         0 -> 1          : 1        |****                                    |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 10       |****************************************|
         8 -> 15         : 3        |************                            |"""


def test_small_histogram_matches_bcc():
    assert format_log2_hist([0, 1, 0, 10, 3], "usecs") == BCC_SMALL


def test_strip_leading_zero_and_empty():
    out = format_log2_hist([0, 0, 0, 5], "msecs", strip_leading_zero=True)
    assert out.splitlines()[1].startswith("         4 -> 7          : 5 ")
    assert len(out.splitlines()) == 2
    assert format_log2_hist([0, 0, 0]) == ""


def test_wide_layout_past_bucket_32():
    vals = [0] * 40
    vals[35] = 2
    lines = format_log2_hist(vals, "nsecs").splitlines()
    assert lines[0] == "               nsecs                         : count     distribution"
    assert lines[35] == "%20d -> %-20d : %-8d |%-*s|" % (1 << 34, (1 << 35) - 1, 2, 20, "*" * 20)


def _bcc_log2(v: int) -> int:
    """BCC's bpf_log2 (src/cc/export/helpers.h), step by step on a u32."""
    r = (v > 0xFFFF) << 4
    v >>= r
    shift = (v > 0xFF) << 3
    v >>= shift
    r |= shift
    shift = (v > 0xF) << 2
    v >>= shift
    r |= shift
    shift = (v > 0x3) << 1
    v >>= shift
    r |= shift
    return r | (v >> 1)


def _bcc_log2l(v: int) -> int:
    """BCC's bpf_log2l: the high word's log2 + 33 if it is set, else the low word's + 1."""
    v &= (1 << 64) - 1
    hi = v >> 32
    return _bcc_log2(hi) + 32 + 1 if hi else _bcc_log2(v) + 1


def test_buckets_match_bpf_log2l():
    # 0 shares bucket 1 with 1 (bpf_log2(0) is 0, plus one): BCC's "0 -> 1" row.
    assert [log2_bucket(v) for v in (0, 1, 2, 3, 4, 7, 8, 1023, 1024)] == [1, 1, 2, 2, 3, 3, 4, 10, 11]
    edges = {0, (1 << 64) - 1, 1 << 63}
    for bit in range(64):
        edges |= {(1 << bit) - 1, 1 << bit, (1 << bit) + 1}
    for v in sorted(edges):
        assert log2_bucket(v) == _bcc_log2l(v), v
    assert log2_bucket(1 << 64) == _bcc_log2l(1 << 64) == 1  # the C argument is 64 bits wide
