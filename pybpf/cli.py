"""The `pybpf` command: a thin dispatcher over subcommands owned by their packages.

Each subcommand lives beside the code it drives (``pybpf/asm/cli.py`` for ``asm``
and ``disasm``, ...) and is imported only when invoked, so that ``pybpf tool
execsnoop`` does not pay for importing the verifier or hypothesis.
A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "asm": ("pybpf.asm.cli_asm", "assemble kernel-syntax text into bytecode"),
    "disasm": ("pybpf.asm.cli_disasm", "disassemble bytecode into kernel-syntax text"),
    "verify": ("pybpf.verifier.cli", "run the verifier simulator on a program"),
    "prog": ("pybpf.cli_prog", "list loaded programs (like bpftool prog)"),
    "map": ("pybpf.cli_map", "list and dump maps (like bpftool map)"),
    "feature": ("pybpf.features.cli", "probe what this kernel supports"),
    "tool": ("pybpf.tools.cli", "run a tracing tool (execsnoop, opensnoop, ...)"),
    "fuzz": ("pybpf.testing.fuzz_cli", "differential fuzzing: simulator vs kernel vs interpreter"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = ["usage: pybpf COMMAND [ARGS...]", "", "commands:"]
        lines += [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
        out = sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr
        if argv and argv[0] not in ("-h", "--help"):
            print(f"pybpf: unknown command {argv[0]!r}", file=sys.stderr)
        print("\n".join(lines), file=out)
        return 0 if out is sys.stdout else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"pybpf {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head(1) and closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
