"""Structured blocks for :class:`~pybpf.asm.builder.Builder`: ``if_``/``else_``,
``while_``/``for_range`` with ``break_``/``continue_``.

They are thin layers over labels and jumps (each block is a ``with`` around
the instructions it guards), kept apart from the instruction methods so that
builder.py stays one concern: one method per instruction. :class:`Blocks` is
Builder's base class and uses only Builder's public instruction methods
(``jump_if``, ``ja``, ``label``, ``mov``, ``add``) and its error reporting.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Callable, Iterator, Union

    from .instruction import Instruction
    from .registers import Reg

    Operand = Union[Reg, int]

__all__ = ["Blocks"]

# The condition that is true exactly when the given one is false (for if-blocks).
_NEGATED = {
    "==": "!=", "!=": "==", ">": "<=", "<=": ">", ">=": "<", "<": ">=",
    "s>": "s<=", "s<=": "s>", "s>=": "s<", "s<": "s>=",
}


class _Block:
    """:func:`contextlib.contextmanager` for the block methods, whose generators yield once
    and handle no exception: the code before the ``yield`` runs on entering the ``with``,
    the rest on leaving it normally. (contextlib, with the functools and collections it
    imports, is start-up time every tool importing this module would pay.)"""

    __slots__ = ("_gen",)

    def __init__(self, gen: Iterator[None]) -> None:
        self._gen = gen

    def __enter__(self) -> None:
        return next(self._gen)

    def __exit__(self, typ: object, value: object, tb: object) -> bool:
        if typ is not None:
            self._gen.close()
        else:
            next(self._gen, None)  # runs to the end: the block methods yield once
        return False


def _block(method: Callable[..., Iterator[None]]) -> Callable[..., _Block]:
    """Decorate a one-``yield`` generator method as a block (see :class:`_Block`)."""
    def block(*args, **kwargs) -> _Block:
        return _Block(method(*args, **kwargs))

    block.__name__, block.__qualname__, block.__doc__ = method.__name__, method.__qualname__, method.__doc__
    block.__wrapped__ = method
    return block


class Blocks:
    """The structured-block methods of :class:`~pybpf.asm.builder.Builder` (see the module
    docstring); Builder's ``__init__`` sets the state they keep (``_last_if``, ``_loops``)."""

    @_block
    def if_(self, a: Reg, cond: str, b: Operand) -> Iterator[None]:
        """Emit the body only when ``a <cond> b`` holds (one inverted jump around it)."""
        end = self.new_label("endif")
        self._unless(a, cond, b, end)
        yield
        self.label(end)
        self._last_if = (end, len(self.insns))

    @_block
    def else_(self) -> Iterator[None]:
        """The alternative of the ``if_`` block that immediately precedes it."""
        if self._last_if is None or self._last_if[1] != len(self.insns):
            raise self._fail("else_() must directly follow an if_() block")
        end_if, pos = self._last_if
        self._last_if = None
        end = self.new_label("endelse")
        self.ja(end)  # the then-branch jumps over the else-branch...
        self.labels[end_if] = pos + 1  # ...and the if's false edge lands after that jump
        yield
        self.label(end)

    @_block
    def while_(self, a: Reg, cond: str, b: Operand) -> Iterator[None]:
        """Loop while ``a <cond> b``; the kernel accepts it when it can prove the loop bounded."""
        top, end = self.new_label("while"), self.new_label("endwhile")
        self.label(top)
        self._unless(a, cond, b, end)
        self._loops.append((top, end))
        yield
        self._loops.pop()
        self.ja(top)
        self.label(end)

    def _unless(self, a: Reg, cond: str, b: Operand, end: str) -> None:
        """Jump to ``end`` unless ``a <cond> b`` (``&`` has no inverse: jset over a goto)."""
        if cond == "&":
            body = self.new_label("then")
            self.jump_if(a, "&", b, body)
            self.ja(end)
            self.label(body)
        else:
            self.jump_if(a, _NEGATED.get(cond, cond) if cond.__class__ is str else cond, b, end)

    @_block
    def for_range(self, counter: Reg, start: int, stop: Operand, step: int = 1) -> Iterator[None]:
        """``for counter in range(start, stop, step)`` as a bounded loop (signed compares,
        as Python's range: the bounds are signed 32-bit immediates or a register)."""
        if step.__class__ is not int or step == 0:
            raise self._fail(f"for_range() step must be a non-zero int, not {step!r}")
        for bound in (start, stop):  # beyond, mov and the compare would sign-extend another value
            if bound.__class__ is int and not -0x80000000 <= bound <= 0x7FFFFFFF:
                raise self._fail(f"for_range() bound {bound:#x} out of signed 32-bit range")
        self.mov(counter, start)
        top, cont, end = self.new_label("for"), self.new_label("next"), self.new_label("endfor")
        self.label(top)
        self.jump_if(counter, "s>=" if step > 0 else "s<=", stop, end)
        self._loops.append((cont, end))
        yield
        self._loops.pop()
        self.label(cont)
        self.add(counter, step)
        self.ja(top)
        self.label(end)

    def break_(self) -> Instruction:
        if not self._loops:
            raise self._fail("break_() outside a loop")
        return self.ja(self._loops[-1][1])

    def continue_(self) -> Instruction:
        if not self._loops:
            raise self._fail("continue_() outside a loop")
        return self.ja(self._loops[-1][0])
