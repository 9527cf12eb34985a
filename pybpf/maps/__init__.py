"""BPF maps: :class:`MapSpec` (a description, no kernel) and :class:`Map` (a kernel object).

>>> spec = MapSpec.hash("I", "Q", 1024, name="counts")
>>> with spec.create() as m:          # doctest: +SKIP
...     m[1] = 10
...     dict(m.items())
{1: 10}

Batch operations, mmapped array views, key iteration and LPM keys are imported on first use (PEP 562
``__getattr__``), so that creating a map costs a tool's start-up no more
than it needs.
"""

from pybpf._lazy import lazy_exports
from .cpus import possible_cpus
from .layout import CtypesLayout, FdValueLayout, LayoutError, RawLayout, StructLayout
from .map import Map
from .spec import MapSpec, MapSpecError, MapSpecTypeError
from .types import (BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapFlags, MapType, UpdateFlags)

__all__ = [
    "Map", "MapSpec", "MapSpecError", "MapSpecTypeError", "MapType", "MapFlags", "UpdateFlags", "BPF_ANY",
    "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK", "LpmKey", "lpm_key", "ArrayView",
    "MapIterationAborted", "possible_cpus", "RawLayout", "StructLayout", "CtypesLayout",
    "FdValueLayout", "LayoutError", "DEFAULT_CHUNK",
]

_LAZY = {"DEFAULT_CHUNK": "batch", "ArrayView": "mmap", "MapIterationAborted": "iterate",
         "LpmKey": "lpm", "lpm_key": "lpm"}
_LAZY_MODULES = ("batch", "mmap", "iterate", "lpm")


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, _LAZY_MODULES)
