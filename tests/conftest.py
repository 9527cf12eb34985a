"""Test-suite set-up shared by every folder.

Test modules are imported with ``--import-mode=importlib`` (see pyproject.toml),
so two folders may both have a ``test_cli.py``. Each folder's helper modules
(``mapkit``, ``attachkit``, ...) are imported by plain name, so every test
folder is put on ``sys.path`` here; helper module names must stay unique.
"""

import os
import pathlib
import sys

import pytest

_HERE = pathlib.Path(__file__).parent
for _folder in sorted(p for p in _HERE.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))


def _bpf_works() -> bool:
    """Root, and a two-instruction socket filter loads: what ``kernel``-marked tests need."""
    if os.geteuid() != 0:
        return False
    from pybpf.asm import opcodes as op
    from pybpf.asm.instruction import Instruction
    from pybpf.program import ProgramSpec
    try:
        ProgramSpec([Instruction(op.ALU64 | op.MOV | op.K, 0, 0, 0, 0), Instruction(op.EXIT_OP)],
                    "socket_filter").load(verify=False).close()
    except OSError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    """Skip ``kernel``-marked tests, with the reason, where bpf(2) cannot load programs."""
    if not any("kernel" in item.keywords for item in items) or _bpf_works():
        return
    skip = pytest.mark.skip(reason="needs root and a kernel with bpf(2)")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)
