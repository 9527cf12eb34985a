"""The tools' start-up path stays lean: what it must not import, and the paused collector.

Time to first event is what the tools are judged on (bench/startup.py); these
tests keep the cheap path from silently growing back, without timing anything.
"""

import os
import subprocess
import sys
import textwrap

import pytest

import pybpf

# Without site (-S): the environment's .pth files (editable-install finders, certifi
# hooks) import re, typing and more before any code runs, which would hide a regression.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pybpf.__file__)))

# Modules whose import costs milliseconds here and which the start-up path does not need.
# The C modules behind some of them (_collections, _operator, _signal, _weakref) are
# what the path uses instead. (types stays: ctypes imports it.)
HEAVY = ("dataclasses", "inspect", "ast", "typing", "argparse", "gettext", "shutil", "threading",
         "re", "socket", "json", "hypothesis", "pyroute2",
         "contextlib", "functools", "collections", "keyword", "reprlib", "operator", "weakref",
         "_weakrefset", "signal", "importlib", "warnings", "enum", "fcntl")

# The `pybpf` command (scripts/pybpf, installed by pip in place of an entry-point wrapper,
# which would import re).
SCRIPT = os.path.join(ROOT, "scripts", "pybpf")

# What a tool imports up to its attach: the `pybpf` command's own module, the layers
# execsnoop and opensnoop drive, the
# perf reader they open and the tracepoint link they attach, parsing a command line, and
# the tracepoint format opensnoop reads its field offset from. (hello's trace_pipe parser
# and tcpconnect's address formatting are not on a benchmarked path.)
TOOL_PATH = """
exec(compile(open(SCRIPT).read(), SCRIPT, "exec"), {"__name__": "imported"})
import pybpf.tools.execsnoop as e, pybpf.tools.opensnoop as o, pybpf.tools.readlat
import pybpf.tools.runtime, pybpf.perf, pybpf.ringbuf, pybpf.link.tracepoint, pybpf.tools.cli
from pybpf.tracefs.events import parse_format
parse_format("ID: 1\\n\\tfield:__data_loc char[] filename;\\toffset:24;\\tsize:4;\\tsigned:0;\\n")
e.options().parse(["--json", "-p", "1", "--duration", "2", "--attach=tracepoint"])
o.options().parse(["--path", "/etc/"])
pybpf.tools.cli.parse_plain(["execsnoop", "-d", "1"])
"""


def new_imports(code: str) -> set[str]:
    """Modules ``code`` imports in a fresh interpreter beyond what start-up (site) loaded."""
    probe = textwrap.dedent("""
        import sys
        before = set(sys.modules)
        exec(compile(CODE, "<tool path>", "exec"), {"SCRIPT": SCRIPT_PATH})
        print("\\n".join(sorted(set(sys.modules) - before)))
    """).replace("SCRIPT_PATH", repr(SCRIPT)).replace("CODE", repr(code))
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                         cwd="/", env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_tool_path_imports_none_of_the_heavy_modules():
    loaded = new_imports(TOOL_PATH)
    assert "pybpf.perf.reader" in loaded and "pybpf.link.tracepoint" in loaded  # it did run
    assert sorted(m for m in HEAVY if m in loaded) == []


@pytest.mark.kernel
def test_a_tool_run_to_its_events_imports_none_of_the_heavy_modules():
    # Beyond the imports: loading, attaching, the perf reader's poll and the printing of
    # the first events (a Sample namedtuple built there would bring collections back).
    code = textwrap.dedent("""
        import pybpf.tools, sys
        pybpf.tools.pause_gc()
        import pybpf.tools.execsnoop as e
        rc = e.main(["--duration", "1"])
        print("IMPORTED", *sorted(sys.modules), file=sys.stderr)
        sys.exit(rc)
    """)
    execs = subprocess.Popen(["sh", "-c", "while :; do /bin/true; sleep 0.02; done"])
    try:
        out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                             cwd="/", env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    finally:
        execs.kill()
        execs.wait()
    assert out.returncode == 0, out.stderr
    assert " true\n" in out.stdout  # events were read and printed
    loaded = set(out.stderr.split("IMPORTED", 1)[1].split())
    assert "pybpf.perf.reader" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_library_paths_still_import_what_they_need():
    # The check above can fail: importing the text assembler does bring re in.
    assert "re" in new_imports("import pybpf.asm; pybpf.asm.assemble('r0 = 0\\nexit')")


def test_pause_and_resume_gc_in_a_fresh_interpreter():
    code = textwrap.dedent("""
        import gc, pybpf.tools as t
        assert gc.isenabled()            # importing the package as a library pauses nothing
        t.pause_gc(); assert not gc.isenabled()
        t.resume_gc(); assert gc.isenabled() and gc.get_freeze_count() > 0
        gc.disable(); t.pause_gc(); t.resume_gc()
        assert not gc.isenabled()        # a collector the program disabled stays disabled
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("orig_argv, expected", [
    (["python", "-m", "pybpf.tools.execsnoop", "-d", "1"], True),
    (["python", "-X", "importtime", "-m", "pybpf.tools.opensnoop"], True),
    (["python", "-m", "pytest", "tests/tools"], False),
    (["python", "-c", "import pybpf.tools"], False),
    (["python", "-m"], False),
])
def test_run_as_module_recognises_only_tool_modules(monkeypatch, orig_argv, expected):
    import pybpf.tools as tools
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    assert tools._run_as_module() is expected
