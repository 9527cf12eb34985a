"""Reading the kernel verifier's log: the reason line and the failing instruction.

The log's last line is not always the reason. ``bpf_check()`` appends a
statistics block after the error (``processed N insns (limit ...)`` and, with
BPF_LOG_STATS, ``verification time N usec`` / ``stack depth N``), libbpf-style
dumps wrap logs in ``-- BEGIN/END PROG LOAD LOG --``, and with a source-level
log there are ``; source`` lines. The reason is the last line that is none of
these. The failing instruction is the last ``N: (op) ...`` line printed before
the reason; errors found before simulation starts (check_cfg: ``jump out of
range from insn 1 to 9``, ``unreachable insn 3``) name it in the reason itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LogSummary", "summarize", "reason_line", "failing_insn", "processed_insns"]

_TRAILER = re.compile(
    r"^(processed \d+ insns|verification time \d+ usec|stack depth( \d+)+|"
    r"-- (BEGIN|END) PROG LOAD LOG --|max_states_per_insn|(cur|old) state: |\s*$)")
_INSN_LINE = re.compile(r"^(\d+): \(([0-9a-f]{2})\)")
_INSN_IN_REASON = re.compile(r"\binsn (?:idx )?(\d+)")
_PROCESSED = re.compile(r"processed (\d+) insns .*?total_states (\d+)")


@dataclass(frozen=True)
class LogSummary:
    """What a failed load's log says: ``error`` (the reason), ``insn`` (slot index or None)."""

    error: str | None
    insn: int | None
    processed_insns: int | None
    total_states: int | None


def _content_lines(log: str) -> list[str]:
    lines = log.splitlines()
    while lines and _TRAILER.match(lines[-1]):
        lines.pop()
    return lines


def reason_line(log: str) -> str | None:
    """The verifier's own reason for rejecting, skipping the summary blocks after it."""
    lines = _content_lines(log)
    return lines[-1].strip() if lines else None


def failing_insn(log: str) -> int | None:
    """The slot index of the instruction the verifier was checking when it gave up."""
    lines = _content_lines(log)
    if not lines:
        return None
    for line in reversed(lines[:-1]):
        m = _INSN_LINE.match(line)
        if m:
            return int(m.group(1))
    m = _INSN_IN_REASON.search(lines[-1])
    return int(m.group(1)) if m else None


def processed_insns(log: str) -> tuple[int | None, int | None]:
    m = _PROCESSED.search(log)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def summarize(log: str) -> LogSummary:
    processed, states = processed_insns(log)
    return LogSummary(reason_line(log), failing_insn(log), processed, states)
