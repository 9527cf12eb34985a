"""Kernel images for the VM harness: host tools, Debian kernel packages, the initramfs.

Everything here is cached under ``CACHE`` (``PYBPF_VM_CACHE``, default
/var/tmp/pybpf-vm) so that only the first run on a machine downloads and
unpacks; see vm.py for why the pieces look the way they do.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import NamedTuple, Sequence

__all__ = ["CACHE", "HarnessError", "Kernel", "ensure_host_tools", "resolve_package",
           "prepare_kernel", "build_initramfs"]

CACHE = Path(os.environ.get("PYBPF_VM_CACHE", "/var/tmp/pybpf-vm"))
# modules the initramfs needs to reach the 9p shares (plus their dependencies)
INITRD_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
BUSYBOX_APPLETS = ("sh", "mount", "insmod", "mkdir", "chroot", "reboot", "cat", "cp", "echo",
                   "tr", "ln", "sync", "hostname", "ip", "sleep")


class HarnessError(RuntimeError):
    """The harness itself could not do its job (install, download, unpack)."""


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
