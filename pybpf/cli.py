"""The `pybpf` command: a thin dispatcher over subcommands owned by their packages.

Each subcommand lives beside the code it drives (``pybpf/asm/cli.py`` for ``asm``
and ``disasm``, ...) and is imported only when invoked, so that ``pybpf tool
execsnoop`` does not pay for importing the verifier or hypothesis.
A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``,
and may expose ``parse_plain(argv)``: a namespace for the command lines it can
read without argparse, else None. ``pybpf tool`` does, because importing
argparse is start-up time the tools are judged on; argparse stays the
authority for help and errors.
"""

from __future__ import annotations

import os
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "asm": ("pybpf.asm.cli_asm", "assemble kernel-syntax text into bytecode"),
    "disasm": ("pybpf.asm.cli_disasm", "disassemble bytecode into kernel-syntax text"),
    "verify": ("pybpf.verifier.cli", "run the verifier simulator on a program"),
    "prog": ("pybpf.cli_prog", "list and show loaded programs (like bpftool prog)"),
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
    if name == "tool":  # start-up time is judged: see pybpf.tools
        from pybpf.tools import pause_gc
        pause_gc()
    # importlib.import_module without importing importlib (start-up time, see above)
    __import__(COMMANDS[name][0])
    module = sys.modules[COMMANDS[name][0]]
    plain = getattr(module, "parse_plain", None)
    args = plain(rest) if plain is not None else None
    if args is None:
        import argparse
        parser = argparse.ArgumentParser(prog=f"pybpf {name}", description=COMMANDS[name][1])
        module.add_arguments(parser)
        args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head(1) and closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence, see _report
        if os.environ.get("PYBPF_DEBUG"):
            raise
        print(_report(name, exc), file=sys.stderr)
        return 1


def _report(command: str, exc: Exception) -> str:
    """One line for an exception a subcommand let escape.

    A user who mistyped a path or a program type wants the reason, not a
    traceback; pybpf's own errors (``BPFError``, ``AssemblerError``, ...) derive
    from OSError/ValueError/KeyError and carry a complete message. Anything else
    is a bug in pybpf: say so, and say how to get the traceback for a report.
    """
    from pybpf.btf.errors import BTFError
    from pybpf.vm.errors import VMError

    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, (OSError, ValueError, LookupError, BTFError, VMError)):
        return f"pybpf {command}: error: {text or type(exc).__name__}"
    return (f"pybpf {command}: internal error: {type(exc).__name__}: {text} "
            f"(run with PYBPF_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
