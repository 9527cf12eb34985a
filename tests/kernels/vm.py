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
import fcntl
import gzip
import hashlib
import io
import lzma
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import NamedTuple, Sequence

__all__ = ["HarnessError", "Kernel", "VMResult", "KERNELS", "prepare_kernel", "run_in_vm",
           "ensure_host_tools", "main"]

CACHE = Path(os.environ.get("PYBPF_VM_CACHE", "/var/tmp/pybpf-vm"))
CHECKOUT = Path(__file__).resolve().parents[2]
TMP_PREFIX = "pybpf-vm-"
KERNELS = ("6.1", "6.12")  # the matrix; "6.1" and "6.12" are resolved to Debian packages
RC_TIMEOUT, RC_NO_STATUS = 124, 125
# modules the initramfs needs to reach the 9p shares (plus their dependencies)
INITRD_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
BUSYBOX_APPLETS = ("sh", "mount", "insmod", "mkdir", "chroot", "reboot", "cat", "cp", "echo",
                   "tr", "ln", "sync", "hostname", "ip", "sleep")


class HarnessError(RuntimeError):
    """The harness itself could not do its job (install, download, unpack)."""


class VMResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str


class Kernel(NamedTuple):
    """A kernel ready to boot: its release string and the files the guest needs."""

    release: str      # e.g. "6.1.0-56-amd64" (uname -r inside the guest)
    package: str      # Debian package it came from
    vmlinux: Path     # ELF vmlinux with a PVH note, or a bzImage
    modules: Path     # /lib/modules/<release> tree of that package (with modules.dep)
    config: Path      # the kernel's .config


def _log(msg: str) -> None:
    if os.environ.get("PYBPF_VM_VERBOSE"):
        print(f"pybpf-vm: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ host tools

_APT_UPDATED = False


def _apt(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", *args]
    return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)


def _apt_update() -> None:
    global _APT_UPDATED
    if not _APT_UPDATED:
        _log("apt-get update")
        _apt("update")
        _APT_UPDATED = True


def _apt_install(packages: Sequence[str]) -> None:
    print(f"pybpf-vm: installing {' '.join(packages)} with apt-get", file=sys.stderr, flush=True)
    args = ("install", "-y", "--no-install-recommends", *packages)
    r = _apt(*args)
    if r.returncode != 0:
        _apt_update()
        r = _apt(*args)
    if r.returncode != 0:
        raise HarnessError(f"apt-get install {' '.join(packages)} failed (exit {r.returncode}):\n"
                           f"{r.stdout[-2000:]}{r.stderr[-2000:]}")


def _is_static(path: str) -> bool:
    """True for an ELF executable without a PT_INTERP segment."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def ensure_host_tools() -> str:
    """Install QEMU, a static busybox and kmod when missing; return busybox's path."""
    busybox = os.environ.get("PYBPF_VM_BUSYBOX", "/bin/busybox")
    want = []
    if not shutil.which("qemu-system-x86_64"):
        want.append("qemu-system-x86")
    if not _is_static(busybox):
        want.append("busybox-static")
        busybox = "/bin/busybox"
    if not shutil.which("depmod") and not os.path.exists("/sbin/depmod"):
        want.append("kmod")
    if want:
        _apt_install(want)
    if not shutil.which("qemu-system-x86_64"):
        raise HarnessError("qemu-system-x86_64 is still missing after installing qemu-system-x86")
    if not _is_static(busybox):
        raise HarnessError(f"{busybox} is not a static executable after installing busybox-static")
    return busybox


# ------------------------------------------------------------------ kernels

def _apt_cache(*args: str) -> str:
    r = subprocess.run(["apt-cache", *args], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def _has_candidate(pkg: str) -> bool:
    return "Filename:" in _apt_cache("show", "--no-all-versions", pkg)


def _version_key(name: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", name))


def resolve_package(kernel: str) -> str:
    """Map a matrix name ("6.1", "6.12") to a Debian kernel package name.

    "6.1" is what ``linux-image-amd64`` depends on in bookworm; "6.12" is the
    newest ``linux-image-6.12.*+deb12-amd64-unsigned``. A full package name is
    used as given. Offline, the newest package already in the cache is used.
    """
    if kernel.startswith("linux-image-"):
        return kernel
    for attempt in range(2):
        if kernel == "6.1":
            deps = re.findall(r"Depends: (linux-image-6\.1\.\S+-amd64)\b",
                              _apt_cache("depends", "linux-image-amd64"))
            names = [d for d in deps if _has_candidate(d)]
        else:
            pat = re.compile(rf"linux-image-{re.escape(kernel)}\.\d+\+deb\d+-amd64-unsigned")
            names = sorted((n for n in _apt_cache("pkgnames", f"linux-image-{kernel}.").split()
                            if pat.fullmatch(n)), key=_version_key, reverse=True)
            names = [n for n in names[:4] if _has_candidate(n)]
        if names:
            return names[0]
        if attempt == 0:
            _apt_update()
    cached = sorted((p.name for p in (CACHE / "pkg").glob(f"linux-image-{kernel}.*")
                     if (p / "ready").exists()), key=_version_key, reverse=True)
    if cached:
        return cached[0]
    raise HarnessError(f"no Debian package found for kernel {kernel!r} "
                       "(apt-cache knows none; is the bookworm archive reachable?)")


def _extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF vmlinux inside a bzImage, found by the payload's compression magic."""
    decoders = {
        b"\xfd7zXZ\x00": lambda d: lzma.LZMADecompressor().decompress(d),
        b"\x1f\x8b\x08": lambda d: zlib.decompressobj(31).decompress(d),
        b"\x28\xb5\x2f\xfd": lambda d: subprocess.run(["zstd", "-qdc"], input=d, capture_output=True).stdout,
    }
    for magic, decode in decoders.items():
        start = 0
        for _ in range(3):
            off = bzimage.find(magic, start)
            if off < 0:
                break
            start = off + 1
            try:
                out = decode(bzimage[off:])
            except Exception:
                continue
            if out[:4] == b"\x7fELF":
                return out
    return None


def _has_pvh_note(elf: bytes) -> bool:
    """True when the ELF has a Xen note of type 18 (XEN_ELFNOTE_PHYS32_ENTRY)."""
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            pos += 12 + (namesz + 3 & ~3) + (descsz + 3 & ~3)
    return False


class _Lock:
    """An flock on a file in the cache: two runs must not unpack the same kernel at once."""

    def __init__(self, name: str):
        CACHE.mkdir(parents=True, exist_ok=True)
        self.path = CACHE / f".{name}.lock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self.fd)


def prepare_kernel(kernel: str = "6.1") -> Kernel:
    """Download (once) and unpack a Debian kernel package into the cache."""
    ensure_host_tools()  # depmod (kmod) is needed to unpack
    pkg = resolve_package(kernel)
    pdir = CACHE / "pkg" / pkg
    with _Lock("pkg-" + pkg):
        if not (pdir / "ready").exists():
            shutil.rmtree(pdir, ignore_errors=True)
            (pdir / "root").mkdir(parents=True)
            print(f"pybpf-vm: downloading {pkg} with apt-get download", file=sys.stderr, flush=True)
            try:
                r = subprocess.run(["apt-get", "-q", "download", pkg], cwd=pdir,
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    _apt_update()
                    r = subprocess.run(["apt-get", "-q", "download", pkg], cwd=pdir,
                                       capture_output=True, text=True)
                debs = list(pdir.glob("*.deb"))
                if r.returncode != 0 or not debs:
                    raise HarnessError(f"apt-get download {pkg} failed (exit {r.returncode}):\n"
                                       f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
                r = subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(pdir / "root")],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    raise HarnessError(f"dpkg-deb -x {debs[0].name} failed: {r.stderr.strip()}")
                debs[0].unlink()
                release = next((pdir / "root/lib/modules").iterdir()).name
                depmod = shutil.which("depmod") or "/sbin/depmod"
                r = subprocess.run([depmod, "-b", str(pdir / "root"), release],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    raise HarnessError(f"depmod for {pkg} failed: {r.stderr.strip()}")
                vmlinuz = next((pdir / "root/boot").glob("vmlinuz-*"))
                elf = _extract_vmlinux(vmlinuz.read_bytes())
                if elf is not None and _has_pvh_note(elf):
                    (pdir / "vmlinux").write_bytes(elf)
                (pdir / "ready").write_text(release + "\n")
            except BaseException:
                shutil.rmtree(pdir, ignore_errors=True)
                raise
    release = (pdir / "ready").read_text().strip()
    vmlinux = pdir / "vmlinux"
    if not vmlinux.exists() or os.environ.get("PYBPF_VM_PVH") == "0":
        vmlinux = pdir / "root/boot" / f"vmlinuz-{release}"
    return Kernel(release, pkg, vmlinux, pdir / "root/lib/modules" / release,
                  pdir / "root/boot" / f"config-{release}")


# ------------------------------------------------------------------ initramfs

INIT_SH = r"""#!/bin/sh
# /init of the pybpf-vm initramfs: mount the 9p shares, chroot into the
# host's root and run /run/vmctl/cmd.sh, then report its status and power off.
export PATH=/bin
msg() { echo "pybpf-vm init: $*" > /dev/console; }
fail() { msg "FAILED: $*"; sync; reboot -f; sleep 5; }
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m.ko 2>/dev/null || msg "insmod $m failed"; done
O=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $O ctl /ctl || fail "mount ctl share"
. /ctl/vmconf
R=/newroot
mount -t 9p -o $O,ro,cache=loose hostroot $R || fail "mount host root"
mount -t proc proc $R/proc; mount -t sysfs sys $R/sys; mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm; mount -t devpts -o ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs shm $R/dev/shm
ln -sf /proc/self/fd $R/dev/fd; ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout; ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t tmpfs -o mode=1777 tmp $R/tmp; mount -t tmpfs -o mode=755 run $R/run
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t bpf bpf $R/sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mount -t tmpfs ovl /ovl
ovl() {  # writable, throw-away layer over a host directory
  n=$(echo $1 | tr / _); mkdir -p /ovl/$n/u /ovl/$n/w
  mount -t overlay -o lowerdir=$R$1,upperdir=/ovl/$n/u,workdir=/ovl/$n/w ovl $R$1 || msg "overlay $1 failed"
}
for d in /etc /root /var /home /srv /opt /usr/local /boot; do
  [ -d $R$d ] && ovl $d
done
[ -d $R/lib/modules ] || { ovl /usr/lib; mkdir -p $R/usr/lib/modules; }
mount -t tmpfs mods $R/lib/modules && mkdir -p $R/lib/modules/$KVER &&
  mount -t 9p -o $O,ro,cache=loose modules $R/lib/modules/$KVER || msg "modules share failed"
cp /ctl/kconfig $R/boot/config-$KVER 2>/dev/null
mkdir -p $R/run/vmctl; mount --move /ctl $R/run/vmctl || fail "move ctl"
if [ -n "$CWD" ]; then
  mkdir -p "$R$CWD" 2>/dev/null
  mount -t 9p -o $O$CWD_OPT cwd "$R$CWD" || fail "mount cwd share"
fi
hostname pybpf-vm; ip link set lo up 2>/dev/null
: > $R/run/vmctl/started
chroot $R /bin/sh /run/vmctl/cmd.sh < /dev/null > $R/run/vmctl/stdout 2> $R/run/vmctl/stderr
echo $? > $R/run/vmctl/rc
sync
reboot -f
"""


def _module_order(modules: Path) -> list[str]:
    """Relative paths of INITRD_MODULES and their dependencies, dependencies first."""
    deps: dict[str, list[str]] = {}
    for line in (modules / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
    by_name = {re.sub(r"\.ko(\.\w+)?$", "", os.path.basename(p)).replace("-", "_"): p for p in deps}
    order: list[str] = []
    for name in INITRD_MODULES:
        path = by_name.get(name)
        if path is None:  # built in
            continue
        for p in [*reversed(deps[path]), path]:
            if p not in order:
                order.append(p)
    return order


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (name, mode, data) entries; symlinks carry the target as data."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], 1):
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0")
        out.write(b"\0" * (-out.tell() % 4) + data)
        out.write(b"\0" * (-out.tell() % 4))
    return out.getvalue()


def _decompress_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        return subprocess.run(["zstd", "-qdc", str(path)], capture_output=True, check=True).stdout
    return data


def build_initramfs(kernel: Kernel, busybox: str) -> Path:
    """The cached initramfs for a kernel: static busybox, /init and the 9p modules."""
    order = _module_order(kernel.modules)
    bb = Path(busybox).read_bytes()
    key = hashlib.sha256("\0".join([kernel.release, INIT_SH, *order]).encode() + bb).hexdigest()[:16]
    path = CACHE / f"initrd-{kernel.release}-{key}.cpio.gz"
    if path.exists():
        return path
    entries: list[tuple[str, int, bytes]] = [(d, 0o40755, b"") for d in
                                             ("bin", "mods", "proc", "sys", "dev", "newroot", "ctl", "ovl")]
    entries.append(("bin/busybox", 0o100755, bb))
    entries += [(f"bin/{a}", 0o120777, b"busybox") for a in BUSYBOX_APPLETS]
    entries.append(("init", 0o100755, INIT_SH.encode()))
    names = []
    for rel in order:
        name = re.sub(r"\.ko(\.\w+)?$", "", os.path.basename(rel))
        entries.append((f"mods/{name}.ko", 0o100644, _decompress_module(kernel.modules / rel)))
        names.append(name)
    entries.append(("mods/order", 0o100644, "".join(n + "\n" for n in names).encode()))
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    try:
        tmp.write_bytes(gzip.compress(_cpio(entries), compresslevel=1))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
