"""The tools' option parsing: the plain path agrees with argparse, which keeps help and errors.

``common.Options.parse_plain`` reads typical command lines without importing
argparse; whenever it answers, its namespace must be the one argparse builds
from the same declarations. Everything else falls back to argparse, so the
help text, the error messages and exit status 2 are argparse's. No kernel
needed: parsing happens before the root check.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from pybpf.tools import cli, common, execsnoop, hello, opensnoop, readlat, tcpconnect, xdpcount

TOOLS = {m.NAME: m for m in (hello, execsnoop, opensnoop, readlat, tcpconnect, xdpcount)}
ENV = {**os.environ, "COLUMNS": "80"}  # argparse wraps help at the terminal width


def tidy(namespace) -> dict:
    """``vars(namespace)`` with float NaN (``-d nan``) made comparable."""
    return {k: "NaN" if v != v else v for k, v in vars(namespace).items()}


def reference(options: common.Options, argv: list[str]):
    """What argparse does with ``argv``: ("ok", vars) or ("exit", code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    parser = options.argparser()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return ("ok", tidy(parser.parse_args(argv)))
        except SystemExit as exc:
            return ("exit", exc.code, out.getvalue(), err.getvalue())


def outcome(options: common.Options, argv: list[str]):
    """The same for ``Options.parse`` (plain path, else argparse)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return ("ok", tidy(options.parse(argv)))
        except SystemExit as exc:
            return ("exit", exc.code, out.getvalue(), err.getvalue())


def check_plain(name: str, argv: list[str]) -> None:
    """``argv`` takes the plain path, with argparse's result."""
    options = TOOLS[name].options()
    plain = options.parse_plain(argv)
    assert plain is not None, f"{name} {argv}: fell back to argparse"
    assert reference(options, argv) == ("ok", tidy(plain)), (name, argv)


# Valid command lines in every form the plain path reads, for every tool.
PLAIN = [
    ("hello", []),
    ("hello", ["--json"]),
    ("hello", ["-p", "42", "--attach", "tracepoint", "-d", "0.5"]),
    ("hello", ["--pid=42", "--attach=kprobe", "--duration=1e-3", "--json", "--json"]),
    ("execsnoop", ["-U"]),
    ("execsnoop", ["--print-uid", "-p7", "-d2", "--attach", "auto"]),
    ("execsnoop", ["-p", "1", "-p", "2", "--pid=3"]),                      # the last one wins
    ("execsnoop", ["-p", " 12 ", "-d", "1_000.5"]),                       # what int()/float() take
    ("execsnoop", ["-p4194304", "--duration=1e-3"]),                     # the limits: PID_MAX_LIMIT
    ("opensnoop", ["--path", "/etc/"]),
    ("opensnoop", ["--path="]),
    ("opensnoop", ["--path", ""]),
    ("opensnoop", ["--path=--json", "--json"]),
    ("opensnoop", ["--path", "/tmp/a=b", "-p", "9"]),
    ("opensnoop", ["--path", "é ünïcode"]),
    ("readlat", ["--duration", "5", "--attach=tracepoint"]),
    ("readlat", ["-d", "1e6"]),
    ("tcpconnect", ["--ringbuf", "--json", "-p", "3"]),
    ("tcpconnect", ["--ringbuf", "--attach", "kprobe"]),
    ("xdpcount", ["-i", "lo"]),
    ("xdpcount", ["-ieth0", "--drop-port", "9999", "--interval", "0.2", "--mode", "generic"]),
    ("xdpcount", ["--interface=veth-a", "--drop-port=0", "--interval=2", "--mode=driver",
                  "-d", "3"]),
    ("xdpcount", ["--json", "--interface", "lo", "--drop-port", "70000"]),  # range: main()'s check
]


@pytest.mark.parametrize("name,argv", PLAIN)
def test_plain_forms_match_argparse(name, argv):
    check_plain(name, argv)


# Left to argparse: the plain path must decline, and parse() gives argparse's outcome
# (a namespace for abbreviations and negative numbers, exit 0/2 for the rest).
FALLBACK = [
    ("execsnoop", ["-h"]),
    ("execsnoop", ["--help"]),
    ("execsnoop", ["--dur", "5"]),                       # unique prefix: argparse accepts it
    ("execsnoop", ["--print", "--js"]),
    ("execsnoop", ["--p", "5"]),                         # ambiguous: --pid, --print-uid
    ("execsnoop", ["-p", "-5"]),                         # a negative number: argparse takes it
    ("execsnoop", ["--duration", "-1"]),
    ("execsnoop", ["-p-5"]),                             # checked types: argparse's error
    ("execsnoop", ["--pid=0", "--json"]),
    ("execsnoop", ["-p", "4194305"]),
    ("execsnoop", ["-d", "nan"]),
    ("execsnoop", ["--duration=inf"]),
    ("execsnoop", ["-d0"]),
    ("readlat", ["--pid", "99999999999"]),
    ("execsnoop", ["-p=5"]),
    ("execsnoop", ["-Uj"]),
    ("execsnoop", ["-U", "-Ud"]),
    ("execsnoop", ["--json=yes"]),
    ("execsnoop", ["--pid", "x"]),
    ("execsnoop", ["--pid", "5", "--pid", "x"]),        # every occurrence is converted
    ("execsnoop", ["--pid"]),
    ("execsnoop", ["-p", "--json"]),
    ("execsnoop", ["--attach", "nope"]),
    ("execsnoop", ["--bogus"]),
    ("execsnoop", ["extra"]),
    ("execsnoop", ["--"]),
    ("execsnoop", ["--json", "--", "--json"]),
    ("execsnoop", ["-"]),
    ("opensnoop", ["--path", "-x"]),
    ("opensnoop", ["--path", "-1"]),
    ("xdpcount", []),                                    # -i is required
    ("xdpcount", ["--json"]),
    ("xdpcount", ["-i", "lo", "--mode", "skb"]),
    ("xdpcount", ["-i", "lo", "--drop-port", "1.5"]),
    ("xdpcount", ["-ilo=x"]),
]


@pytest.mark.parametrize("name,argv", FALLBACK)
def test_other_forms_are_argparses(name, argv):
    options = TOOLS[name].options()
    assert options.parse_plain(argv) is None
    assert outcome(options, argv) == reference(options, argv)


def test_fallbacks_cover_help_abbreviations_and_errors():
    """The table above has all three kinds of argparse outcome, so it tests something."""
    results = [reference(TOOLS[n].options(), a) for n, a in FALLBACK]
    kinds = {r[0] if r[0] == "ok" else r[:2] for r in results}
    assert kinds == {"ok", ("exit", 0), ("exit", 2)}


# Hypothesis: command lines generated from each tool's declarations.

def _value(option) -> st.SearchStrategy[str]:
    if option.choices is not None:
        return st.sampled_from([str(c) for c in option.choices])
    if option.type is int:
        return st.integers(-10**20, 10**20).map(str)
    if option.type is float:
        return st.floats(allow_nan=False).map(repr) | st.integers().map(str)
    if option.type is common.process_id:
        return st.integers(1, common.PID_MAX_LIMIT).map(str)
    if option.type is common.positive_float:
        return st.floats(min_value=0, exclude_min=True, allow_infinity=False).map(repr) | \
            st.integers(1, 10**9).map(str)
    return st.text(max_size=12)


@st.composite
def plain_argv(draw, options: common.Options) -> list[str]:
    """A valid command line in the forms the plain path reads."""
    chosen = draw(st.lists(st.sampled_from(options._options), max_size=6))
    chosen += [o for o in options._options if o.required]
    argv: list[str] = []
    for option in draw(st.permutations(chosen)):
        longs = [n for n in option.names if n.startswith("--")]
        shorts = [n for n in option.names if not n.startswith("--")]
        name = draw(st.sampled_from(option.names))
        if option.flag:
            argv.append(name)
            continue
        value = draw(_value(option))
        forms = ["long="] if longs else []
        if not value.startswith("-"):
            forms += ["long"] * bool(longs) + ["short"] * bool(shorts)
        if shorts and value and "=" not in value:
            forms.append("short+")
        form = draw(st.sampled_from(forms))      # every tool option has a --long name
        if form == "long=":
            argv.append(f"{longs[0]}={value}")
        elif form == "long":
            argv += [longs[0], value]
        elif form == "short":
            argv += [shorts[0], value]
        else:
            argv.append(shorts[0] + value)
    return argv


def _junk(options: common.Options) -> st.SearchStrategy[str]:
    names = [n for o in options._options for n in o.names]
    prefixes = [n[:k] for n in names if n.startswith("--") for k in range(2, len(n))]
    return st.one_of(
        st.sampled_from(names + prefixes + ["-h", "--help", "--", "-", "-Uj", "-p=1", "--json=1",
                                            "-1", "-x", "x", "", " ", "-1e3", "inf", "nan"]),
        st.sampled_from(names).map(lambda n: n + "="),
        st.text(max_size=6),
        st.text(max_size=4).map(lambda t: "-" + t),
    )


@st.composite
def mixed_argv(draw, options: common.Options) -> list[str]:
    """A valid command line with junk tokens inserted anywhere."""
    argv = draw(plain_argv(options))
    for _ in range(draw(st.integers(0, 3))):
        argv.insert(draw(st.integers(0, len(argv))), draw(_junk(options)))
    return argv


@pytest.mark.parametrize("name", sorted(TOOLS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_generated_plain_command_lines(name, data):
    options = TOOLS[name].options()
    argv = data.draw(plain_argv(options))
    plain = options.parse_plain(argv)
    assert plain is not None, argv
    assert reference(options, argv) == ("ok", tidy(plain)), argv


@pytest.mark.parametrize("name", sorted(TOOLS))
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_generated_junk_is_never_misread(name, data):
    """Whatever the command line, parse() does what argparse does (same exit, same text)."""
    options = TOOLS[name].options()
    argv = data.draw(mixed_argv(options))
    plain = options.parse_plain(argv)
    ref = reference(options, argv)
    if plain is not None:
        assert ref == ("ok", tidy(plain)), argv
    assert outcome(options, argv) == ref


# Declarations and the helpers' options.

def test_common_options_and_attach():
    p = common.parser("x", "d")
    common.add_attach_option(p)
    assert vars(p.parse([])) == {"pid": None, "json": False, "duration": None, "attach": "auto"}
    q = common.parser("x", "d", pid=False)
    assert vars(q.parse(["--json"])) == {"json": True, "duration": None}
    assert "--pid" not in q.argparser().format_help()


def test_string_defaults_are_converted_like_argparse():
    p = common.Options("x")
    p.add("--n", type=int, default="7")
    p.add("--f", type=float, default="0.5")
    assert vars(p.parse_plain([])) == {"n": 7, "f": 0.5} == vars(p.argparser().parse_args([]))


@pytest.mark.parametrize("names,kwargs,words", [
    (("pid",), {}, "positional"),
    (("-pid",), {}, "single-dash"),
    (("-p",), {"action": "append"}, "'append'"),
    (("-p",), {"type": hex}, "type"),
    (("-h",), {}, "-h/--help"),
    (("--json",), {"action": "store_true", "type": int}, "store_true"),
])
def test_unsupported_declarations_are_refused(names, kwargs, words):
    p = common.Options("x")
    with pytest.raises(ValueError, match=words):
        p.add(*names, **kwargs)


def test_duplicate_declaration_is_refused():
    p = common.parser("x", "d")
    with pytest.raises(ValueError, match="'-p' is declared twice"):
        p.add("-p", "--port", type=int)


def test_plain_path_does_not_import_argparse():
    code = ("import sys\n"
            "before = set(sys.modules)\n"
            "from pybpf.tools import execsnoop, xdpcount, cli\n"
            "args = execsnoop.options().parse(['--json', '-p', '42', '--duration=1', '-U'])\n"
            "assert args.pid == 42 and args.print_uid, args\n"
            "xdpcount.options().parse(['-i', 'lo', '--drop-port', '80'])\n"
            "assert cli.parse_plain(['execsnoop', '--json']).args == ['--json']\n"
            "new = set(sys.modules) - before\n"
            "print(sorted(m for m in ('argparse', 'gettext', 'locale', 'shutil', 'typing') "
            "if m in new))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_parse_errors_come_before_the_root_check(monkeypatch):
    """Each tool parses first: a bad option exits 2 without reaching require_root."""
    def not_here(name):
        raise AssertionError(f"{name}: require_root called before the options were checked")
    monkeypatch.setattr(common, "require_root", not_here)
    for name, module in TOOLS.items():
        argv = ["--bogus"] + (["-i", "lo"] if name == "xdpcount" else [])
        with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit) as exc:
            module.main(argv)
        assert exc.value.code == 2, name
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as exc:
        xdpcount.main(["-i", "lo", "--drop-port", "70000"])
    assert exc.value.code == 2
    assert "error: --drop-port 70000: not a port number (0-65535)" in err.getvalue()


# Through the real entry points, in subprocesses.

def run_tool(name: str, *argv: str, via_cli: bool = False) -> subprocess.CompletedProcess:
    """``python -m pybpf.tools.NAME ARGV``, or ``python -m pybpf tool NAME ARGV``."""
    entry = ["pybpf", "tool", name] if via_cli else [f"pybpf.tools.{name}"]
    return subprocess.run([sys.executable, "-m", *entry, *argv], capture_output=True, text=True,
                          timeout=60, env=ENV)


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_help_is_argparses(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = run_tool(name, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout == TOOLS[name].options().argparser().format_help()
    assert res.stdout.startswith(f"usage: pybpf tool {name} [-h]")


@pytest.mark.parametrize("argv,message", [
    (["--pid", "x"], "error: argument -p/--pid: invalid int value: 'x'"),
    (["--attach", "nope"], "error: argument --attach: invalid choice: 'nope' "
                           "(choose from 'auto', 'kprobe', 'tracepoint')"),
    (["--bogus"], "error: unrecognized arguments: --bogus"),
    (["-Uj"], "error: argument -U/--print-uid: ignored explicit argument 'j'"),
])
@pytest.mark.parametrize("via_cli", [False, True])
def test_errors_are_argparses(argv, message, via_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = run_tool("execsnoop", *argv, via_cli=via_cli)
    assert res.returncode == 2
    expected = reference(execsnoop.options(), argv)
    assert expected[:2] == ("exit", 2)
    assert res.stderr == expected[3]
    assert res.stderr.startswith("usage: pybpf tool execsnoop")
    assert res.stderr.rstrip().endswith(f"pybpf tool execsnoop: {message}")
    assert "root" not in res.stderr


def _drop_capabilities() -> None:
    """In the child before exec: empty the bounding set, so even root execs with no capability."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        if libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap}")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping capabilities needs root")
def test_errors_without_privileges_are_still_argparses():
    """Without CAP_BPF etc. a bad option still gets argparse's error, not the root message."""
    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pybpf.tools.execsnoop", *argv],
                              capture_output=True, text=True, timeout=60, env=ENV,
                              preexec_fn=_drop_capabilities)
    control = run("--json", "--duration", "1")      # valid options: the root check refuses
    assert control.returncode == 1 and "must be run as root" in control.stderr, control.stderr
    res = run("--pid", "x")
    assert res.returncode == 2, res.stderr
    assert "invalid int value: 'x'" in res.stderr and "root" not in res.stderr


# pybpf tool NAME ARGS: the dispatcher's plain path agrees with its argparse parser.

def _tool_reference(argv: list[str]):
    parser = argparse.ArgumentParser(prog="pybpf tool")
    cli.add_arguments(parser)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return vars(parser.parse_args(argv))
        except SystemExit as exc:
            return exc.code


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(sorted(cli.TOOLS) + ["exec", "-h", "--help", "--", "-", "--json",
                                                      "-p", "5", "-5", "x"]), max_size=5))
def test_dispatcher_plain_path_matches_argparse(argv):
    plain = cli.parse_plain(argv)
    if plain is not None:
        assert _tool_reference(argv) == vars(plain), argv


@pytest.mark.parametrize("argv", [["execsnoop"], ["execsnoop", "--json", "-p", "5"],
                                  ["xdpcount", "-h"], ["opensnoop", "x", "-"]])
def test_dispatcher_plain_path_is_taken(argv):
    assert vars(cli.parse_plain(argv)) == _tool_reference(argv) == {"name": argv[0],
                                                                     "args": argv[1:]}


# Values the shared options refuse: usage errors (exit 2) before anything is loaded.

@pytest.mark.parametrize("argv,message", [
    (["--pid", "99999999999"], "argument -p/--pid: '99999999999' is not a process id "
                               "(1 to 4194304, the kernel's PID_MAX_LIMIT)"),
    (["--pid=-5"], "argument -p/--pid: '-5' is not a process id"),
    (["-p", "3000000000"], "argument -p/--pid: '3000000000' is not a process id"),
    (["-p0"], "argument -p/--pid: '0' is not a process id"),
    (["--duration", "-1"], "argument -d/--duration: '-1' is not a finite number greater than 0"),
    (["-d", "0"], "argument -d/--duration: '0' is not a finite number greater than 0"),
    (["-d", "nan"], "argument -d/--duration: 'nan' is not a finite number greater than 0"),
    (["--duration=inf"], "argument -d/--duration: 'inf' is not a finite number greater than 0"),
    (["-d", "x"], "argument -d/--duration: invalid float value: 'x'"),
])
def test_bad_pid_and_duration_are_usage_errors(argv, message):
    res = run_tool("execsnoop", *argv)
    assert res.returncode == 2, res.stderr
    assert f"pybpf tool execsnoop: error: {message}" in res.stderr, res.stderr
    assert "Tracing" not in res.stderr and res.stdout == ""


@pytest.mark.parametrize("name", ["hello", "execsnoop", "readlat", "tcpconnect"])
@pytest.mark.parametrize("argv", [["-p", "0"], ["--pid", "4194305"], ["-d", "-0.5"],
                                  ["--duration", "NaN"]])
def test_every_tool_checks_pid_and_duration(name, argv):
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as exc:
        TOOLS[name].options().parse(argv)
    assert exc.value.code == 2
    assert "is not a process id" in err.getvalue() or "greater than 0" in err.getvalue()


def test_checked_types_accept_their_range():
    assert common.process_id("1") == 1 and common.process_id(" 4194304 ") == 4194304
    assert common.positive_float("5e-324") == 5e-324 and common.positive_float("1e300") == 1e300
    for bad in ("0", "-1", "4194305", "1.5", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            common.process_id(bad)
    for bad in ("0", "-0.0", "-1", "nan", "inf", "-inf", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            common.positive_float(bad)


def test_json_help_says_what_is_printed():
    def json_help(options):
        return next(a.help for a in options.argparser()._actions if "--json" in a.option_strings)
    assert json_help(execsnoop.options()) == "print one JSON object per event"
    assert json_help(readlat.options()) == "print the histogram as one JSON object when tracing ends"
    p = common.parser("x", "d", json_help="one object per interval")
    assert json_help(p) == "one object per interval"


def test_pybpf_tool_without_a_name_asks_only_for_the_name():
    res = subprocess.run([sys.executable, "-m", "pybpf", "tool"], capture_output=True, text=True,
                         timeout=60, env=ENV)
    assert res.returncode == 2
    assert res.stderr.rstrip().endswith("error: the following arguments are required: NAME")
    assert _tool_reference(["execsnoop"]) == {"name": "execsnoop", "args": []}
