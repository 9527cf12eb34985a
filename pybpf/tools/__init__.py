"""BCC-style tracing tools, each a module with ``main(argv) -> int``.

Run one with ``pybpf tool NAME`` (see :mod:`pybpf.tools.cli` for the list).
Nothing is imported here: a tool's start-up time is judged, so each tool
module imports only the layers it drives.
"""

__all__: list[str] = []
