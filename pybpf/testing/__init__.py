"""Testing eBPF programs: program generation, hypothesis strategies and a differential fuzzer.

* :mod:`pybpf.testing.generate` -- structured program generation on a plain
  ``random.Random`` (no hypothesis needed; the fuzzer uses it directly);
* :mod:`pybpf.testing.strategies` -- public hypothesis strategies over it
  (``instructions()``, ``programs()``, ``packets()``); imports hypothesis;
* :mod:`pybpf.testing.fuzz` / ``pybpf fuzz`` -- simulator vs kernel vs interpreter;
* :mod:`pybpf.testing.minimize` -- delta debugging of a disagreement.

Importing this package does not import hypothesis.
"""

from .generate import MUTATIONS, SUPPORTED, generate, random_instruction
from .minimize import ddmin, minimize_program
from .program import GeneratedProgram, symbolize

__all__ = ["GeneratedProgram", "generate", "random_instruction", "MUTATIONS", "SUPPORTED",
           "ddmin", "minimize_program", "symbolize"]
