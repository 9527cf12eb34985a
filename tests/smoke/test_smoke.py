"""Smoke tests: what a new user runs first, run the way they run it.

Each example script runs as a subprocess; the test causes the event the
script watches for (an exec, an open, a TCP connect, reads, UDP packets) until
the script prints it, then presses Ctrl-C (SIGINT) and expects a clean exit.
Each CLI subcommand gets ``--help``, one real invocation and a few bad inputs:
a bad input must fail with one clear line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loads programs into the kernel)")


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "internal error" not in stderr, stderr


def pybpf(*args: str, input: bytes | None = None, prefix: list[str] | None = None,
          timeout: float = 30) -> subprocess.CompletedProcess:
    """``python -m pybpf ARGS``: the same dispatcher as the ``pybpf`` script."""
    proc = subprocess.run([*(prefix or []), sys.executable, "-m", "pybpf", *args], input=input,
                          capture_output=True, timeout=timeout, cwd=ROOT)
    assert_clean(proc.stderr.decode(errors="replace"))
    return proc


def fails_clearly(proc: subprocess.CompletedProcess, *words: str) -> str:
    """A non-zero exit with one line on stderr naming what is wrong."""
    err = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode != 0, (proc.stdout, err)
    lines = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert len(lines) == 1, err  # argparse's usage lines, then one line saying what is wrong
    for word in words:
        assert word in err, (word, err)
    return err


# -- examples ------------------------------------------------------------------------
class Example:
    """``python -u examples/NAME ARGS`` with its output collected by a thread."""

    def __init__(self, script: str, *args: str, prefix: list[str] | None = None):
        self.proc = subprocess.Popen([*(prefix or []), sys.executable, "-u", str(EXAMPLES / script), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=ROOT)
        self.out: list[str] = []
        self.err = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.out.append(line)

    @property
    def text(self) -> str:
        return "".join(self.out)

    def wait_for(self, found, cause=lambda: None, timeout: float = 15.0) -> str:
        """Cause the event until ``found(output)`` is true (the program may still be loading)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            cause()
            time.sleep(0.2)
            if found(self.text):
                return self.text
        self.stop()
        pytest.fail(f"expected output never came; rc={self.proc.returncode}\n"
                    f"stdout:\n{self.text}\nstderr:\n{self.err}")

    def stop(self) -> int:
        """Ctrl-C, as the scripts say; they must detach and exit 0 without a traceback."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, self.err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.err = self.proc.communicate()
            pytest.fail("example did not exit on SIGINT")
        assert_clean(self.err)
        return self.proc.returncode


@pytest.fixture
def program_named(tmp_path):
    """A copy of true(1) with a unique name, so its exec is ours to find (comm is 15 chars)."""
    name = "qa" + uuid.uuid4().hex[:10]
    path = tmp_path / name
    shutil.copy("/bin/true", path)
    return name, str(path)


@root_only
@pytest.mark.kernel
def test_example_execsnoop(program_named):
    name, path = program_named
    ex = Example("execsnoop.py")
    pids: list[int] = []

    def cause():
        p = subprocess.Popen([path])
        pids.append(p.pid)
        p.wait()

    out = ex.wait_for(lambda text: name in text, cause)
    assert ex.stop() == 0
    assert out.startswith("PID     COMM\n")
    assert any(f"{pid:<7} {name}\n" in out for pid in pids), out


@root_only
@pytest.mark.kernel
def test_example_hello(program_named):
    _, path = program_named
    ex = Example("hello.py")
    pids: list[int] = []

    def cause():
        p = subprocess.Popen([path])
        pids.append(p.pid)
        p.wait()

    # trace_pipe lines read "TASK-PID: MESSAGE"; PID is the process that called execve.
    out = ex.wait_for(lambda text: any(f"-{pid}: Hello from the kernel!" in text for pid in pids), cause)
    assert ex.stop() == 0
    assert "Hello from the kernel!" in out


@root_only
@pytest.mark.kernel
def test_example_opensnoop(tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    prefix = str(watched) + "/"
    ex = Example("opensnoop.py", prefix)
    target = watched / "file.txt"
    target.write_text("x")
    other = tmp_path / "other.txt"
    other.write_text("x")

    def cause():
        other.read_text()  # outside the prefix: filtered in the kernel
        target.read_text()

    out = ex.wait_for(lambda text: str(target) in text, cause)
    assert ex.stop() == 0
    assert f"{os.getpid():<7} " in out and str(target) in out, out
    assert str(other) not in out
    assert "0: (bf) r6 = r1" in out  # the first instructions, in the verifier's layout


@root_only
@pytest.mark.kernel
def test_example_tcpconnect():
    # A connect to a closed port on a listening-free loopback still passes SYN_SENT.
    port = 1 + uuid.uuid4().int % 1000 + 40000
    ex = Example("tcpconnect.py")

    def cause():
        with socket.socket() as s:
            s.settimeout(0.5)
            s.connect_ex(("127.0.0.1", port))

    out = ex.wait_for(lambda text: f"127.0.0.1        {port}" in text, cause)
    assert ex.stop() == 0
    line = next(line for line in out.splitlines() if line.endswith(f" {port}"))
    pid, _comm, ip, saddr, daddr, dport = line.split()
    assert (pid, ip, saddr, daddr, dport) == (str(os.getpid()), "4", "127.0.0.1", "127.0.0.1", str(port))


@root_only
@pytest.mark.kernel
def test_example_readlat():
    proc = subprocess.Popen([sys.executable, "-u", str(EXAMPLES / "readlat.py"), "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    r, w = os.pipe()
    try:
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:  # our own reads
            os.write(w, b"x")
            os.read(r, 1)
            time.sleep(0.001)
    finally:
        os.close(r)
        os.close(w)
    out, err = proc.communicate(timeout=10)
    assert_clean(err)
    assert proc.returncode == 0, err
    assert out.startswith("Tracing read() for 1 s...")
    assert "usecs               : count     distribution" in out
    counts = [int(line.split(":")[1].split("|")[0]) for line in out.splitlines() if " -> " in line]
    assert sum(counts) >= 100, out  # we alone did hundreds of reads


@root_only
@pytest.mark.kernel
def test_example_xdpcount():
    ns = "qa-smoke-" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        in_ns = ["ip", "netns", "exec", ns]
        subprocess.run([*in_ns, "ip", "link", "set", "lo", "up"], check=True)
        ex = Example("xdpcount.py", "lo", "9999", prefix=in_ns)
        sender = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  "for port in (9999, 9999, 9998): s.sendto(b'x' * 10, ('127.0.0.1', port))")

        def cause():
            subprocess.run([*in_ns, sys.executable, "-c", sender], check=True)

        def udp(text):
            rows = [line.split() for line in text.splitlines() if line.startswith("UDP")]
            return rows and int(rows[-1][5]) >= 2 and int(rows[-1][1]) > int(rows[-1][5])

        out = ex.wait_for(udp, cause)
        assert ex.stop() == 0
        # The XDP link went with the process: nothing left on the interface.
        show = subprocess.run([*in_ns, "ip", "link", "show", "lo"], capture_output=True, text=True)
        assert "xdp" not in show.stdout, show.stdout
        assert "packets" in out and "dropped" in out
    finally:
        subprocess.run(["ip", "netns", "del", ns])


# -- the CLI -------------------------------------------------------------------------
SUBCOMMANDS = ["asm", "disasm", "verify", "prog", "map", "feature", "tool", "fuzz"]
TOOLS = ["hello", "execsnoop", "opensnoop", "tcpconnect", "readlat", "xdpcount"]
PROGRAM = "r0 = 0\nr1 = 5\nr0 += r1\nexit\n"


def test_top_level_help():
    proc = pybpf("--help")
    assert proc.returncode == 0
    text = proc.stdout.decode()
    for name in SUBCOMMANDS:
        assert f"  {name} " in text
    proc = pybpf("nosuch")  # the error line, then the list of commands to choose from
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[0] == "pybpf: unknown command 'nosuch'"


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(name):
    proc = pybpf(name, "--help")
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith(f"usage: pybpf {name}")


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_help(tool):
    proc = pybpf("tool", tool, "--help")
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith(f"usage: pybpf tool {tool}")
    assert "--duration" in proc.stdout.decode()


def test_asm_disasm_round_trip(tmp_path):
    src = tmp_path / "prog.s"
    src.write_text(PROGRAM)
    out = tmp_path / "prog.bin"
    assert pybpf("asm", str(src), "-o", str(out)).returncode == 0
    assert out.read_bytes()[:8] == bytes.fromhex("b700000000000000") and len(out.read_bytes()) == 32
    proc = pybpf("disasm", str(out))
    assert proc.returncode == 0
    assert proc.stdout.decode() == "0: (b7) r0 = 0\n1: (b7) r1 = 5\n2: (0f) r0 += r1\n3: (95) exit\n"
    hexed = pybpf("asm", "-", input=PROGRAM.encode())
    assert pybpf("disasm", "--plain", "-", input=hexed.stdout).stdout.decode() == PROGRAM


def test_asm_disasm_bad_input(tmp_path):
    fails_clearly(pybpf("asm", str(tmp_path / "missing.s")), "missing.s")
    (tmp_path / "bad.s").write_text("r0 = 0\nhello world\nexit\n")
    fails_clearly(pybpf("asm", str(tmp_path / "bad.s")), "bad.s:2")
    (tmp_path / "junk.bin").write_bytes(os.urandom(13))
    fails_clearly(pybpf("disasm", str(tmp_path / "junk.bin")), "not a multiple of 8")
    fails_clearly(pybpf("disasm", str(tmp_path / "missing.bin")), "missing.bin")


def test_verify(tmp_path):
    good = tmp_path / "good.s"
    good.write_text(PROGRAM)
    proc = pybpf("verify", str(good), "--prog-type", "socket_filter")
    assert proc.returncode == 0 and proc.stdout.decode().startswith("accepted")
    bad = tmp_path / "bad.s"
    bad.write_text("r0 = *(u64 *)(r1 +0)\nexit\n")
    proc = pybpf("verify", str(bad), "--prog-type", "socket_filter")
    assert proc.returncode == 1
    assert "invalid bpf_context access off=0 size=8" in proc.stdout.decode() + proc.stderr.decode()


def test_verify_bad_input(tmp_path):
    good = tmp_path / "good.s"
    good.write_text(PROGRAM)
    fails_clearly(pybpf("verify", str(tmp_path / "missing.s"), "--prog-type", "xdp"), "missing.s")
    fails_clearly(pybpf("verify", str(good), "--prog-type", "nosuch"), "unknown program type 'nosuch'")
    fails_clearly(pybpf("verify", str(good)), "--prog-type")
    (tmp_path / "junk.s").write_text("hello world\n")
    fails_clearly(pybpf("verify", str(tmp_path / "junk.s"), "--prog-type", "xdp"), "junk.s:1")
    (tmp_path / "junk.bin").write_bytes(bytes(range(200, 213)))
    fails_clearly(pybpf("verify", str(tmp_path / "junk.bin"), "--prog-type", "xdp"), "multiple of 8")


@root_only
@pytest.mark.kernel
def test_verify_against_kernel(tmp_path):
    good = tmp_path / "good.s"
    good.write_text(PROGRAM)
    proc = pybpf("verify", str(good), "--prog-type", "socket_filter", "--against-kernel")
    assert proc.returncode == 0
    assert "kernel: accepted -- agrees" in proc.stdout.decode()


HOLDER = """
import sys
from pybpf.asm import Builder, r0
from pybpf.maps import MapSpec
from pybpf.program import ProgramSpec
m = MapSpec.hash("I", "Q", 16, name="qa_smoke").create()
m[7] = 0x1122
b = Builder(); b.mov(r0, 0); b.ret(0)
p = ProgramSpec(b, "socket_filter", name="qa_smoke").load()
print(m.info().id, p.info().id, flush=True)
sys.stdin.read()
"""


@root_only
@pytest.mark.kernel
def test_prog_and_map_commands():
    import json

    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        map_id, prog_id = map(int, holder.stdout.readline().split())
        progs = json.loads(pybpf("prog", "list", "--json").stdout)
        assert {"id": prog_id, "name": "qa_smoke", "type": "socket_filter"}.items() <= \
            next(p for p in progs if p["id"] == prog_id).items()
        assert f"{prog_id}: socket_filter  name qa_smoke" in pybpf("prog", "list").stdout.decode()
        assert f"{map_id}: hash  name qa_smoke" in pybpf("map", "list").stdout.decode()
        dump = pybpf("map", "dump", str(map_id)).stdout.decode()
        assert "key: 07 00 00 00  value: 22 11 00 00 00 00 00 00" in dump
        assert dump.rstrip().endswith("Found 1 element")
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    fails_clearly(pybpf("map", "dump", "4294967295"), "no map with id 4294967295")
    fails_clearly(pybpf("map", "dump", "/sys/fs/bpf/qa-smoke-nosuch"), "ENOENT")
    fails_clearly(pybpf("map", "dump", "/etc/passwd"), "/etc/passwd: not a pinned map")
    fails_clearly(pybpf("prog", "show", "4294967295"), "no program with id 4294967295")
    fails_clearly(pybpf("map", "dump"), "MAP")


@root_only
@pytest.mark.kernel
def test_feature_probe():
    import json

    doc = json.loads(pybpf("feature", "probe", "--json", "--no-helpers").stdout)
    assert doc["kernel"] == os.uname().release
    assert doc["program_types"]["socket_filter"]["status"] == "supported"
    text = pybpf("feature", "probe", "--no-helpers").stdout.decode()
    assert "eBPF program_type socket_filter is available" in text


@root_only
@pytest.mark.kernel
def test_fuzz(tmp_path):
    proc = pybpf("fuzz", "--count", "20", "--seed", "1", "-q", "--out", str(tmp_path))
    out = proc.stdout.decode()
    assert out.startswith("20 programs in"), out
    assert proc.returncode == 0 and "no disagreements" in out, out


@root_only
@pytest.mark.kernel
def test_tool_runs_and_bad_input(program_named):
    name, path = program_named
    proc = subprocess.Popen([sys.executable, "-m", "pybpf", "tool", "execsnoop", "--json", "-d", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    ready = proc.stderr.readline()  # printed once attached
    assert ready.startswith("Tracing execve via") and ready.rstrip().endswith("Hit Ctrl-C to end."), ready
    for _ in range(3):
        subprocess.run([path])
    out, err = proc.communicate(timeout=20)
    assert_clean(err)
    assert proc.returncode == 0, err
    assert f'"comm": "{name}"' in out, out
    fails_clearly(pybpf("tool", "nosuch"), "invalid choice: 'nosuch'")
    fails_clearly(pybpf("tool", "xdpcount", "-i", "qa-nosuch0", "-d", "1"), "qa-nosuch0")


@root_only
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv(1)")
def test_tool_as_nobody_says_why():
    # nobody cannot read this interpreter's installation under /root: use one it can.
    python = "/usr/bin/python3.11"
    if not os.path.exists(python):
        pytest.skip("no system python3.11 for the unprivileged user")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([*NOBODY, python, "-m", "pybpf", "tool", "execsnoop", "-d", "1"],
                          capture_output=True, text=True, timeout=30, env=env)
    if "No module named" in proc.stderr:
        pytest.skip(f"system python cannot import pybpf: {proc.stderr.strip()}")
    assert_clean(proc.stderr)
    assert proc.returncode != 0
    assert "must be run as root" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_installed_pybpf_command_is_the_script_file():
    # pip installs scripts/pybpf beside the interpreter (not an entry-point wrapper, which
    # would import re first), with its "#!python" line pointing at that interpreter.
    script = os.path.join(os.path.dirname(sys.executable), "pybpf")
    with open(script) as f:
        first = f.readline().strip()
        rest = f.read()
    assert first.startswith("#!") and os.path.basename(first[2:].split()[0]).startswith("python")
    assert "from pybpf.cli import main" in rest and "import re" not in rest
    proc = subprocess.run([script, "tool", "--help"], capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.decode().startswith("usage: pybpf tool")
