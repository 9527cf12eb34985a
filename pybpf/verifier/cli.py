"""``pybpf verify FILE --prog-type T``: the simulator's verdict on a program, before loading it.

FILE is kernel-syntax assembly text (as ``pybpf asm`` reads) or bytecode in any
form ``pybpf asm`` writes: raw, hex text or a C array (autodetected, by the
reader ``pybpf disasm`` uses; '-' for stdin). Maps referenced by the program are described
with ``--map TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS]``, one per map in
order of first use. Fuzzer output files (pybpf.testing.report) carry their
own ``# prog_type: T`` and ``# map NAME: type=... key_size=...`` headers, so
they need neither. ``--against-kernel`` also loads the program (root) and
prints whether the kernel agrees; ``--unprivileged`` models a loader without
CAP_PERFMON.
"""

from __future__ import annotations

import argparse
import sys

from .api import MapView, verify
from .context import PROG_TYPES

MAP_TYPES = {"hash": 1, "array": 2, "prog_array": 3, "perf_event_array": 4, "percpu_hash": 5,
             "percpu_array": 6, "stack_trace": 7, "lru_hash": 9, "queue": 22, "stack": 23,
             "ringbuf": 27}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="assembly text, or bytecode (raw, hex or C array, as "
                                     "`pybpf asm` writes it); '-' for stdin")
    parser.add_argument("--prog-type", default=None,
                        help=f"program type: {', '.join(PROG_TYPES)} (or its number); optional for "
                             "fuzzer output files, which name it in a '# prog_type:' header")
    parser.add_argument("--attach-type", type=int, default=0, help="expected_attach_type number")
    parser.add_argument("--log-level", type=int, default=0, choices=(0, 1, 2))
    parser.add_argument("--unprivileged", action="store_true",
                        help="model a loader with CAP_BPF + CAP_NET_ADMIN but not CAP_PERFMON")
    parser.add_argument("--map", action="append", default=[], metavar="TYPE:KS:VS:MAX[:FLAGS]",
                        help="a map the program uses, in order of first use")
    parser.add_argument("--against-kernel", action="store_true",
                        help="also load it into the running kernel and compare (root); the exit "
                             "status is then 0 when both agree, 4 when they disagree")


def _parse_map(text: str, i: int) -> MapView:
    parts = text.split(":")
    if len(parts) not in (4, 5):
        raise SystemExit(f"pybpf verify: --map {text!r}: expected TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS]")
    t = MAP_TYPES.get(parts[0].lower())
    try:
        t = int(parts[0], 0) if t is None else t
        nums = [int(p, 0) for p in parts[1:]]
    except ValueError:
        raise SystemExit(f"pybpf verify: --map {text!r}: unknown map type or bad number") from None
    return MapView(t, *nums, name=f"map{i}")


def _read_program(path: str):
    """(program, map names): assembly text parsed, or bytecode in any form ``pybpf asm`` writes.

    The same reader as ``pybpf disasm`` (raw, hex text, C array, autodetected),
    so ``pybpf asm x.s | pybpf verify -`` takes asm's default hex output.
    """
    from pybpf.asm.cli_disasm import read_program_input
    inp = read_program_input(path)
    if inp.is_bytecode:
        return inp.code, []
    from pybpf.asm.text import parse
    asm = parse(inp.text, name=inp.name)
    return asm.resolved(), asm.maps


def _map_loads(code: bytes) -> int:
    """How many ld_imm64 in ``code`` take a map (BPF_PSEUDO_MAP_FD/VALUE/IDX/IDX_VALUE)."""
    from pybpf.asm import opcodes as op
    from pybpf.asm.instruction import decode
    try:
        return sum(1 for i in decode(code) if i.opcode == op.LD_IMM64 and i.src in (1, 2, 5, 6))
    except ValueError:  # malformed bytecode: the simulator names the instruction
        return 0


def _fuzzer_case(path: str):
    """A fuzzer output file (``# prog_type:`` and ``# map NAME: type=...`` headers), else None."""
    if path == "-":
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if b"# prog_type:" not in head:
        return None
    from pybpf.testing.report import load_case
    return load_case(path)


def run(args: argparse.Namespace) -> int:
    case = _fuzzer_case(args.file)
    if case is not None:
        from pybpf.asm.instruction import decode, encode
        resolved = decode(encode(list(case.insns), dict(case.labels or {})))  # jumps name labels
        program = [r.replace(source=i.source, map=i.map) for r, i in zip(resolved, case.insns)]
        names = []
        if args.prog_type is None:
            args.prog_type = int(case.prog_type)
    else:
        from pybpf.asm.errors import AssemblerError
        name = "<stdin>" if args.file == "-" else args.file
        try:
            program, names = _read_program(args.file)
        except OSError as exc:
            print(f"pybpf verify: error: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        except AssemblerError as exc:
            where = "" if name in str(exc) else f"{name}: "
            print(f"pybpf verify: error: {where}{exc}", file=sys.stderr)
            return 1
    if args.prog_type is None:
        print("pybpf verify: --prog-type is required (the file has no '# prog_type:' header)",
              file=sys.stderr)
        return 2
    maps = [_parse_map(m, i) for i, m in enumerate(args.map)]
    if names and len(maps) < len(names):
        print(f"pybpf verify: the program uses maps {', '.join(names)}: describe each with --map",
              file=sys.stderr)
        return 2
    if isinstance(program, bytes) and len(maps) < (n := _map_loads(program)):
        print(f"pybpf verify: the program loads {n} map(s) by fd (ld_imm64 src 1/2): describe "
              f"each with --map, in the order of those instructions", file=sys.stderr)
        return 2
    if not isinstance(program, bytes):
        by_name = dict(zip(names, maps))
        program = [ins.replace(map=by_name[ins.map]) if isinstance(ins.map, str) and ins.map in by_name
                   else ins for ins in program]
    try:
        res = verify(program, args.prog_type, maps or None, expected_attach_type=args.attach_type,
                     log_level=args.log_level, privileged=not args.unprivileged)
    except NotImplementedError as exc:
        print(f"pybpf verify: {exc}", file=sys.stderr)
        return 3
    if args.log_level:
        sys.stdout.write(res.log)
    if res.ok:
        print(f"accepted: processed {res.processed_insns} insns, {res.total_states} states")
    else:
        where = f" (insn {res.insn}" + (f", {res.source_line}" if res.source_line else "") + ")"
        print(f"rejected{where}: {res.error}")
    if args.against_kernel:
        return _against_kernel(program, args, maps, res)
    return 0 if res.ok else 1


def _against_kernel(program, args, maps, res) -> int:
    from pybpf.program import Program, ProgramSpec  # the project's loader
    if args.unprivileged:
        print("pybpf verify: --against-kernel loads with this process's capabilities "
              "(privileged); compare without --unprivileged", file=sys.stderr)
        return 2
    if not isinstance(program, bytes) and maps:
        from pybpf.maps import MapSpec
        specs: dict[int, object] = {}
        program = [ins.replace(map=specs.setdefault(id(ins.map), MapSpec(
            ins.map.type, ins.map.key_size, ins.map.value_size, ins.map.max_entries, ins.map.flags)))
            if ins.map is not None else ins for ins in program]
    from pybpf.syscall.errors import BPFPermissionError
    from pybpf.errors import VerifierError
    try:
        spec = ProgramSpec(program, args.prog_type,
                           expected_attach_type=args.attach_type or None)
        Program.load(spec, verify=False).close()
        kernel_ok, reason = True, None
    except VerifierError as exc:
        kernel_ok, reason = False, exc.error
    except BPFPermissionError as exc:  # no verdict: the kernel was never asked
        print(f"pybpf verify: the kernel could not be asked: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - any kernel refusal is a verdict to compare
        kernel_ok = False
        reason = getattr(exc, "error", None) or str(exc).splitlines()[0]
    agree = kernel_ok == res.ok
    print(f"kernel: {'accepted' if kernel_ok else 'rejected: ' + str(reason)} -- "
          f"{'agrees' if agree else 'DISAGREES'}")
    return 0 if agree else 4
