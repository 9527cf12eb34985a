"""The running kernel's BTF: ``/sys/kernel/btf/vmlinux`` and modules' split BTF.

Results are cached per process: the kernel's types cannot change while it
runs, and parsing vmlinux is the expensive part of most tools' start-up.
"""

from __future__ import annotations

import functools
import os

from .errors import BTFError
from .spec import Spec

__all__ = ["SYSFS_BTF", "load_kernel_btf", "load_module_btf", "module_btf_names"]

SYSFS_BTF = "/sys/kernel/btf"


@functools.cache
def load_kernel_btf() -> Spec:
    """vmlinux BTF, parsed once per process."""
    path = os.path.join(SYSFS_BTF, "vmlinux")
    try:
        return Spec.from_file(path)
    except FileNotFoundError:
        raise BTFError(f"{path} not found: kernel built without CONFIG_DEBUG_INFO_BTF") from None


def module_btf_names() -> list[str]:
    """Loaded modules that carry BTF (``/sys/kernel/btf/*`` except vmlinux)."""
    try:
        names = os.listdir(SYSFS_BTF)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n != "vmlinux")


@functools.cache
def load_module_btf(module: str) -> Spec:
    """Split BTF of a loaded module, based on vmlinux (ids continue after it)."""
    if "/" in module or module in ("", ".", "..", "vmlinux"):
        raise BTFError(f"invalid module name {module!r}")
    path = os.path.join(SYSFS_BTF, module)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BTFError(f"{path} not found: module {module!r} not loaded or has no BTF") from None
    return Spec(data, load_kernel_btf(), name=path)
