"""Programs: specs (no kernel), loading, test runs and the kernel's info.

    spec = ProgramSpec(insns, ProgType.XDP, name="pass")
    with spec.load() as prog:
        print(prog.test_run(data_in=bytes(64)).retval)

The info reader, log parser, test runner and privilege hints are imported on
first use (PEP 562 ``__getattr__``): loading a program needs none of them,
and a tracing tool's start-up time is judged.
"""

from .load import DEFAULT_LOG_SIZE, Program, SimulatorDisagreement, relocate
from .spec import ProgramSpec
from .types import AttachType, LinkType, ProgType, attach_type, prog_type

__all__ = [
    "ProgramSpec", "Program", "ProgramInfo", "TestRunResult", "ProgType", "AttachType",
    "LinkType", "prog_type", "attach_type", "DEFAULT_LOG_SIZE", "SimulatorDisagreement",
    "relocate", "LogSummary", "summarize", "permission_hint", "required_capabilities",
]

_LAZY = {"ProgramInfo": "info", "LogSummary": "log", "summarize": "log",
         "permission_hint": "privileges", "required_capabilities": "privileges",
         "TestRunResult": "run"}
_LAZY_MODULES = ("info", "log", "privileges", "run", "simulate")


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))
