"""What the running kernel supports, found by loading and creating minimal objects.

    from pybpf import features
    features.map_type(MapType.RINGBUF)         # Probe(..., SUPPORTED)
    features.helper(ProgType.XDP, "ktime_get_ns")
    features.isa(4)

Answers are cached in-process (and optionally on disk, keyed by kernel
release); ``explain_load_failure`` turns a failed load into a sentence.
"""

from .cache import cache_path, load_disk_cache, probe_all, save_disk_cache
from .explain import explain_load_failure, explain_map_failure
from .probes import (ISA_FEATURES, Probe, Status, clear_cache, helper, isa, isa_feature, map_type,
                     prog_type)

__all__ = [
    "Probe", "Status", "prog_type", "map_type", "helper", "isa", "isa_feature", "ISA_FEATURES",
    "clear_cache", "probe_all", "cache_path", "load_disk_cache", "save_disk_cache",
    "explain_load_failure", "explain_map_failure",
]
