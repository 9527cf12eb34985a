"""Programs: specs (no kernel), loading, test runs and the kernel's info.

    spec = ProgramSpec(insns, ProgType.XDP, name="pass")
    with spec.load() as prog:
        print(prog.test_run(data_in=bytes(64)).retval)

The info reader, log parser, test runner and privilege hints are imported on
first use (PEP 562 ``__getattr__``): loading a program needs none of them,
and a tracing tool's start-up time is judged.
"""

from pybpf._lazy import lazy_exports
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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, _LAZY_MODULES)
