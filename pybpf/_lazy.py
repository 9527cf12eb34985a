"""Lazy package exports (PEP 562), shared by the packages that defer heavy submodules.

A tool that only attaches a tracepoint should not pay for importing netlink,
ELF or disassembler code; packages therefore name their exports here and load
the defining submodule on first attribute access.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Callable, Iterable


def lazy_exports(package: str, namespace: dict, names: dict[str, str],
                 modules: Iterable[str] = ()) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for ``package``.

    ``names`` maps an exported name to the module defining it (relative like
    ``".xdp"`` or ``"batch"``, or absolute); ``modules`` are submodules
    reachable as attributes. Loaded values are cached in ``namespace``.
    """
    modules = tuple(modules)

    def load(module: str):
        # importlib.import_module for an absolute name, without importing importlib
        # (and warnings): start-up time the tools are judged on.
        __import__(module)
        return sys.modules[module]

    def resolve(module: str) -> str:
        if module.startswith("."):
            return package + module
        return module if "." in module else f"{package}.{module}"

    def __getattr__(name: str):
        if name in names:
            value = getattr(load(resolve(names[name])), name)
            namespace[name] = value
            return value
        if name in modules:
            return load(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names) | set(modules))

    return __getattr__, __dir__
