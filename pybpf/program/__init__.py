"""Programs: specs (no kernel), loading, test runs and the kernel's info.

    spec = ProgramSpec(insns, ProgType.XDP, name="pass")
    with spec.load() as prog:
        print(prog.test_run(data_in=bytes(64)).retval)
"""

from .info import ProgramInfo
from .load import DEFAULT_LOG_SIZE, Program, SimulatorDisagreement, relocate
from .log import LogSummary, summarize
from .privileges import permission_hint, required_capabilities
from .run import TestRunResult
from .spec import ProgramSpec
from .types import AttachType, LinkType, ProgType, attach_type, prog_type

__all__ = [
    "ProgramSpec", "Program", "ProgramInfo", "TestRunResult", "ProgType", "AttachType",
    "LinkType", "prog_type", "attach_type", "DEFAULT_LOG_SIZE", "SimulatorDisagreement",
    "relocate", "LogSummary", "summarize", "permission_hint", "required_capabilities",
]
