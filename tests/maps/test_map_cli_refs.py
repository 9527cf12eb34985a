"""How ``pybpf map`` and ``pybpf prog`` read object references, and what they say when one is wrong.

None of these reach the kernel: a usage error or a directory is caught first.
"""

import pytest

from pybpf.cli import main
from pybpf.cli_map import UsageError, object_ref


@pytest.mark.parametrize("words,expected", [
    (["42"], ("id", 42)), (["id", "42"], ("id", 42)),
    (["pinned", "/sys/fs/bpf/x"], ("pinned", "/sys/fs/bpf/x")), (["/sys/fs/bpf/x"], ("pinned", "/sys/fs/bpf/x")),
])
def test_object_ref_forms(words, expected):
    assert object_ref(words, "map") == expected


@pytest.mark.parametrize("words,message", [
    (["pinned"], "missing path after 'pinned'"),
    (["id"], "missing id after 'id'"),
    (["id", "x"], "map id 'x' is not a number"),
    (["id", "1", "2"], "cannot parse map reference 'id 1 2'"),
])
def test_object_ref_usage_errors(words, message):
    with pytest.raises(UsageError, match=message):
        object_ref(words, "map")


@pytest.mark.parametrize("command", ["map", "prog"])
def test_missing_path_is_a_usage_error(command, capsys):
    assert main([command, "show", "pinned"]) == 2
    err = capsys.readouterr().err
    assert f"pybpf {command} show: missing path after 'pinned'" in err
    assert "open pinned" not in err and "/sys/fs/bpf/pinned" not in err


@pytest.mark.parametrize("command,noun", [("map", "map"), ("prog", "program")])
def test_directory_is_not_a_pinned_object(command, noun, tmp_path, capsys):
    for words in ([str(tmp_path)], ["pinned", str(tmp_path)]):
        assert main([command, "show", *words]) == 1
        err = capsys.readouterr().err
        assert f"{tmp_path} is a directory, not a pinned {noun}" in err
        assert "EACCES" not in err and "lockdown" not in err


def test_prog_show_accepts_the_map_forms(capsys):
    # Before: argparse took `id` for the program id ("invalid int value: 'id'").
    assert main(["prog", "show", "id", "x"]) == 2
    assert "program id 'x' is not a number" in capsys.readouterr().err
