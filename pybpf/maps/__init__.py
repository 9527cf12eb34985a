"""BPF maps: :class:`MapSpec` (a description, no kernel) and :class:`Map` (a kernel object).

>>> spec = MapSpec.hash("I", "Q", 1024, name="counts")
>>> with spec.create() as m:          # doctest: +SKIP
...     m[1] = 10
...     dict(m.items())
{1: 10}
"""

from .batch import DEFAULT_CHUNK
from .cpus import possible_cpus
from .iterate import MapIterationAborted
from .layout import CtypesLayout, FdValueLayout, LayoutError, RawLayout, StructLayout
from .lpm import LpmKey, lpm_key
from .map import Map
from .mmap import ArrayView
from .spec import MapSpec, MapSpecError
from .types import (BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapFlags, MapType, UpdateFlags)

__all__ = [
    "Map", "MapSpec", "MapSpecError", "MapType", "MapFlags", "UpdateFlags", "BPF_ANY",
    "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK", "LpmKey", "lpm_key", "ArrayView",
    "MapIterationAborted", "possible_cpus", "RawLayout", "StructLayout", "CtypesLayout",
    "FdValueLayout", "LayoutError", "DEFAULT_CHUNK",
]
