"""pybpf: a pure-Python eBPF toolkit.

Layers, bottom-up: ``pybpf.asm`` (instructions, no kernel) -> specs ->
``pybpf.syscall`` and the map/program objects -> attachments (``pybpf.link``)
and event readers (``pybpf.perf``, ``pybpf.ringbuf``) -> ``pybpf.tools``.
``pybpf.verifier`` and ``pybpf.vm`` sit beside the loader and need only ``asm``.
"""

__version__ = "0.1.0"

# The subpackages are imported on demand (a tool's start-up time is judged);
# the top level exports only the version.
__all__ = ["__version__"]
