"""Run a command as root inside another Linux kernel, booted under QEMU.

The host here runs a kernel without kprobes and with fentry forbidden, so the
kernel-facing code is also tested inside Debian's 6.1 and 6.12 kernels. The
guest sees the host's ``/`` read-only over 9p and the checkout read-write at
the same path, so the guest runs the host's own Python and the working tree
without copying anything; writes outside the checkout go to tmpfs overlays
and vanish with the guest.

Facts this design rests on (measured on this machine, see
/work/shared/reference/vm/README.md):

* KVM does not work (PVM host; stock guests die on ``cmpxchg16b``), so QEMU
  runs under TCG. Booting a bzImage spends ~4.5 s decompressing itself under
  TCG, so the ELF vmlinux is unpacked once into the cache and booted through
  its PVH entry note.
* A pyenv shim costs ~8 s per call in the guest: the guest PATH starts with
  the real interpreter's directory.
* Debian's ``-cloud-`` kernels have no 9p; the generic ``-amd64`` flavour does.

Kernel packages are fetched with ``apt-get download`` (never installed) and
unpacked into the cache (``PYBPF_VM_CACHE``, default /var/tmp/pybpf-vm), as
are the vmlinux and the initramfs, so reruns only pay for the boot.

Use ``run_in_vm(cmd, kernel="6.12")`` from Python, or from a shell::

    python tests/kernels/vm.py --kernel 6.1 -- python3 -c 'import os; print(os.uname())'

Exit status: the command's; 124 when ``timeout`` expired; 125 when the guest
reported no status (boot failure; the console tail is in stderr). Failures to
install QEMU or to fetch a kernel raise :class:`HarnessError` (exit 2 from the
command line): a matrix that cannot boot must fail, never skip.
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple, Sequence

from vm_images import CACHE, HarnessError, Kernel, build_initramfs, ensure_host_tools, prepare_kernel

__all__ = ["CACHE", "HarnessError", "Kernel", "VMResult", "KERNELS", "prepare_kernel", "run_in_vm",
           "ensure_host_tools", "main"]

CHECKOUT = Path(__file__).resolve().parents[2]
TMP_PREFIX = "pybpf-vm-"
KERNELS = ("6.1", "6.12")  # the matrix; "6.1" and "6.12" are resolved to Debian packages
RC_TIMEOUT, RC_NO_STATUS = 124, 125


class VMResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str


def _log(msg: str) -> None:
    if os.environ.get("PYBPF_VM_VERBOSE"):
        print(f"pybpf-vm: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ running

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while a guest ran; raised so ``finally`` blocks clean up."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


class _RaiseOnTerm:
    """Turn SIGTERM/SIGHUP into :class:`Terminated` (main thread only) while a guest runs.

    Python's default SIGTERM action kills the interpreter without running
    ``finally``: qemu and the temporary directory would be left behind.
    """

    def __enter__(self):
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self.saved[sig] = signal.signal(sig, self._raise)

    @staticmethod
    def _raise(signum, frame):
        raise Terminated(signum)

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _sweep_stale_tmp() -> None:
    """Remove temporary directories of runs whose process died without cleaning up (SIGKILL)."""
    for d in Path(tempfile.gettempdir()).glob(TMP_PREFIX + "*"):
        m = re.match(re.escape(TMP_PREFIX) + r"(\d+)-", d.name)
        if m and d.is_dir() and not _alive(int(m[1])):
            shutil.rmtree(d, ignore_errors=True)


def _child_setup(parent: int) -> None:
    # qemu dies with us even when we are SIGKILLed and no cleanup runs
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _guest_env(extra: dict[str, str] | None) -> dict[str, str]:
    # The interpreter running this harness, first in PATH: not a pyenv shim (~8 s per call).
    dirs = [os.path.dirname(sys.executable)]
    dirs += [d for d in os.environ.get("PATH", "").split(":") if d and "/.pyenv/shims" not in d]
    dirs += ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    env = {"PATH": ":".join(dict.fromkeys(dirs)), "HOME": "/root", "LANG": "C.UTF-8",
           "TERM": "dumb", "PYTHONUNBUFFERED": "1", "PYBPF_IN_VM": "1"}
    env.update(extra or {})
    return env


def _accel(accel: str) -> list[str]:
    if accel == "auto":
        kvm_ok = os.access("/dev/kvm", os.R_OK | os.W_OK) and \
            re.search(r"\b(vmx|svm)\b", Path("/proc/cpuinfo").read_text()) is not None
        accel = "kvm" if kvm_ok else "tcg"
    return ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg,thread=multi", "-cpu", "max"]


def _tail(path: Path, limit: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").replace("\r", "").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-limit:])


def run_in_vm(cmd: str | Sequence[str], kernel: str = "6.1", *, timeout: float = 600,
              boot_timeout: float = 240, cwd: str | os.PathLike | None = None,
              env: dict[str, str] | None = None, rw_cwd: bool = True, mem: int = 1024,
              cpus: int = 2, accel: str = "auto", stream: bool = False) -> VMResult:
    """Boot ``kernel`` under QEMU and run ``cmd`` as root in ``cwd`` (default: the checkout).

    ``cmd`` is an argv list or a shell command string. ``timeout`` counts from
    the moment the command starts; ``boot_timeout`` bounds the time until then.
    ``stream`` copies the guest's output to this process's stdout/stderr as it
    arrives. Returns ``(rc, stdout, stderr)``; see the module docstring for rc.
    """
    busybox = ensure_host_tools()
    k = prepare_kernel(kernel)
    initrd = build_initramfs(k, busybox)
    cwd = Path(cwd or CHECKOUT).resolve()
    _sweep_stale_tmp()
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
    proc: subprocess.Popen | None = None
    try:
        ctl = tmp / "ctl"
        ctl.mkdir()
        for name in ("stdout", "stderr"):
            (ctl / name).touch()
        (ctl / "vmconf").write_text(
            f"KVER={shlex.quote(k.release)}\n"
            f"CWD={shlex.quote(str(cwd)) if str(cwd) != '/' else ''}\n"
            f"CWD_OPT={'' if rw_cwd else ',ro'}\n")
        if k.config.exists():
            shutil.copy(k.config, ctl / "kconfig")
        script = "".join(f"export {n}={shlex.quote(v)}\n" for n, v in _guest_env(env).items())
        script += f"cd {shlex.quote(str(cwd))} || exit 125\n"
        script += (cmd + "\n") if isinstance(cmd, str) else f"exec {shlex.join(cmd)}\n"
        (ctl / "cmd.sh").write_text(script)

        cwd_sec = "passthrough" if os.getuid() == 0 else "none"
        qemu = ["qemu-system-x86_64", "-name", "pybpf-vm", "-machine", "pc", *_accel(accel),
                "-smp", str(cpus), "-m", str(mem), "-nodefaults", "-no-user-config",
                "-display", "none", "-vga", "none", "-no-reboot",
                "-serial", f"file:{tmp / 'console.log'}",
                "-kernel", str(k.vmlinux), "-initrd", str(initrd),
                "-append", "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init",
                "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
                "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
                "-fsdev", f"local,id=ctl,path={ctl},security_model=none",
                "-device", "virtio-9p-pci,fsdev=ctl,mount_tag=ctl",
                "-fsdev", f"local,id=modules,path={k.modules},security_model=none,readonly=on",
                "-device", "virtio-9p-pci,fsdev=modules,mount_tag=modules"]
        if str(cwd) != "/":
            ro = "" if rw_cwd else ",readonly=on"
            qemu += ["-fsdev", f"local,id=cwd,path={cwd},security_model={cwd_sec},multidevs=remap{ro}",
                     "-device", "virtio-9p-pci,fsdev=cwd,mount_tag=cwd"]
        _log(f"kernel {k.release} ({k.package}), {k.vmlinux}; {shlex.join(qemu)}")
        with _RaiseOnTerm(), open(tmp / "qemu.out", "wb") as qout:
            parent = os.getpid()
            proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=qout, stderr=qout,
                                    start_new_session=True, preexec_fn=lambda: _child_setup(parent))
            rc = _wait(proc, ctl, timeout, boot_timeout, stream)
        out = (ctl / "stdout").read_text(errors="replace")
        err = (ctl / "stderr").read_text(errors="replace")
        if rc is None:
            if (ctl / "rc").exists() and (ctl / "rc").read_text().strip():
                rc = int((ctl / "rc").read_text())
            else:
                rc = RC_NO_STATUS
                err += (f"\npybpf-vm: the guest ({k.release}) reported no exit status "
                        f"(qemu exit status {proc.returncode}). qemu output:\n{_tail(tmp / 'qemu.out', 20)}"
                        f"\npybpf-vm: guest console (last 40 lines):\n{_tail(tmp / 'console.log')}\n")
        return VMResult(rc, out, err)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _wait(proc: subprocess.Popen, ctl: Path, timeout: float, boot_timeout: float,
          stream: bool) -> int | None:
    """Wait for qemu to exit; returns 124 on timeout, otherwise None (read the guest's rc)."""
    deadline = time.monotonic() + boot_timeout
    started = False
    offsets = {"stdout": 0, "stderr": 0}

    def forward():
        for name, dest in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            with open(ctl / name, "rb") as f:
                f.seek(offsets[name])
                data = f.read()
            if data:
                offsets[name] += len(data)
                dest.buffer.write(data)
                dest.flush()

    while proc.poll() is None:
        now = time.monotonic()
        if not started and (ctl / "started").exists():
            started, deadline = True, now + timeout
        if now > deadline:
            proc.kill()
            proc.wait()
            if stream:
                forward()
            if started:
                print(f"pybpf-vm: timed out after {timeout:g}s", file=sys.stderr, flush=True)
                return RC_TIMEOUT
            print(f"pybpf-vm: the command had not started after {boot_timeout:g}s (boot timeout)",
                  file=sys.stderr, flush=True)
            return None
        if stream:
            forward()
        time.sleep(0.1)
    if stream:
        forward()
    return None


# ------------------------------------------------------------------ command line

def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="vm.py", description=__doc__.split("\n\n")[0],
                                usage="%(prog)s [options] -- CMD [ARG...]")
    p.add_argument("--kernel", default="6.1", help="6.1, 6.12 or a Debian linux-image-* package (default 6.1)")
    p.add_argument("--timeout", type=float, default=600, help="seconds the command may run (exit 124)")
    p.add_argument("--boot-timeout", type=float, default=240, help="seconds until the command starts")
    p.add_argument("--cwd", help="directory shared read-write and used as cwd (default: the checkout)")
    p.add_argument("--ro-cwd", action="store_true", help="share the cwd read-only")
    p.add_argument("--mem", type=int, default=1024, help="guest memory in MiB")
    p.add_argument("--cpus", type=int, default=2, help="guest vCPUs")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    p.add_argument("--prepare", action="store_true", help="install QEMU, fetch the kernel, build the initramfs; no boot")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the harness does")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.verbose:
        os.environ["PYBPF_VM_VERBOSE"] = "1"
    signal.signal(signal.SIGTERM, _RaiseOnTerm._raise)
    signal.signal(signal.SIGHUP, _RaiseOnTerm._raise)
    try:
        if args.prepare:
            k = prepare_kernel(args.kernel)
            print(f"{k.release} {k.package} {build_initramfs(k, ensure_host_tools())}")
            return 0
        if not cmd:
            p.error("no command given (it goes after --)")
        return run_in_vm(cmd, args.kernel, timeout=args.timeout, boot_timeout=args.boot_timeout,
                         cwd=args.cwd or os.getcwd(), rw_cwd=not args.ro_cwd, mem=args.mem,
                         cpus=args.cpus, accel=args.accel, stream=True).rc
    except HarnessError as e:
        print(f"pybpf-vm: ERROR: {e}", file=sys.stderr)
        return 2
    except Terminated as e:
        return 128 + e.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
