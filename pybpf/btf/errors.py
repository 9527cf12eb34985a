"""Exceptions raised by :mod:`pybpf.btf`."""

from __future__ import annotations

__all__ = ["BTFError", "BTFFormatError", "TypeNotFoundError", "MemberNotFoundError"]


class BTFError(Exception):
    """Base class of every BTF error."""


class BTFFormatError(BTFError, ValueError):
    """The blob is not well-formed BTF (bad magic, truncated, unknown kind)."""


class TypeNotFoundError(BTFError, KeyError):
    """No type with that name (and kind) exists in the spec."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class MemberNotFoundError(BTFError, KeyError):
    """A dotted member path names a member that the type does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
