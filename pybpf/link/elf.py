"""A small ELF reader: just enough to turn a symbol into a uprobe file offset.

A uprobe is placed at a *file offset* of the ELF (the kernel maps the file
and puts the breakpoint in the page cache), while a symbol's ``st_value`` is
a virtual address. The PT_LOAD segment containing the address gives the
translation ``offset = st_value - p_vaddr + p_offset``. Symbols come from
``.symtab`` (absent in stripped binaries) and ``.dynsym`` (exported ones).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["ElfSymbol", "ElfFile", "ElfError", "symbol_offset"]

SHT_SYMTAB, SHT_DYNSYM = 2, 11
PT_LOAD = 1
STT_FUNC, STT_GNU_IFUNC = 2, 10
SHN_UNDEF = 0


class ElfError(ValueError):
    """The file is not a usable ELF, or the symbol cannot be resolved."""


@dataclass(frozen=True, slots=True)
class ElfSymbol:
    name: str
    value: int  # virtual address
    size: int
    type: int  # STT_*
    bind: int  # STB_*
    shndx: int


@dataclass(frozen=True, slots=True)
class _Segment:
    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int


class ElfFile:
    """Parsed headers, segments and symbols of one ELF file."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            data = f.read()
        if data[:4] != b"\x7fELF":
            raise ElfError(f"{path}: not an ELF file")
        ei_class, ei_data = data[4], data[5]
        if ei_class not in (1, 2) or ei_data not in (1, 2):
            raise ElfError(f"{path}: unsupported ELF class {ei_class} / data encoding {ei_data}")
        self.is64 = ei_class == 2
        e = "<" if ei_data == 1 else ">"
        self._e = e
        self._data = data
        try:
            if self.is64:
                (self.type, self.machine, _v, self.entry, phoff, shoff, _fl, _eh, phentsize, phnum,
                 shentsize, shnum, _shstrndx) = struct.unpack_from(e + "HHIQQQIHHHHHH", data, 16)
            else:
                (self.type, self.machine, _v, self.entry, phoff, shoff, _fl, _eh, phentsize, phnum,
                 shentsize, shnum, _shstrndx) = struct.unpack_from(e + "HHIIIIIHHHHHH", data, 16)
            self.segments = [self._phdr(phoff + i * phentsize) for i in range(phnum)]
            self._sections = [self._shdr(shoff + i * shentsize) for i in range(shnum)]
        except struct.error:
            raise ElfError(f"{path}: truncated ELF headers") from None
        self._symbols: list[ElfSymbol] | None = None

    def _phdr(self, off: int) -> tuple[int, _Segment]:
        if self.is64:
            p_type, flags, offset, vaddr, _pa, filesz, memsz, _al = struct.unpack_from(
                self._e + "IIQQQQQQ", self._data, off)
        else:
            p_type, offset, vaddr, _pa, filesz, memsz, flags, _al = struct.unpack_from(
                self._e + "IIIIIIII", self._data, off)
        return p_type, _Segment(vaddr, offset, filesz, memsz, flags)

    def _shdr(self, off: int) -> tuple[int, int, int, int, int]:
        """(sh_type, sh_offset, sh_size, sh_link, sh_entsize)."""
        if self.is64:
            _n, sh_type, _f, _a, offset, size, link, _i, _al, entsize = struct.unpack_from(
                self._e + "IIQQQQIIQQ", self._data, off)
        else:
            _n, sh_type, _f, _a, offset, size, link, _i, _al, entsize = struct.unpack_from(
                self._e + "IIIIIIIIII", self._data, off)
        return sh_type, offset, size, link, entsize

    def _string(self, table_off: int, table_size: int, off: int) -> str:
        if off >= table_size:
            return ""
        start = table_off + off
        end = self._data.find(b"\0", start, table_off + table_size)
        return self._data[start:end if end >= 0 else table_off + table_size].decode(errors="replace")

    @property
    def symbols(self) -> list[ElfSymbol]:
        """Defined symbols of .symtab then .dynsym (duplicates kept; the first wins in lookups)."""
        if self._symbols is None:
            out: list[ElfSymbol] = []
            for want in (SHT_SYMTAB, SHT_DYNSYM):
                for sh_type, offset, size, link, entsize in self._sections:
                    if sh_type != want or not entsize:
                        continue
                    _st, str_off, str_size, _l, _e = self._sections[link]
                    for i in range(size // entsize):
                        out_sym = self._symbol(offset + i * entsize, str_off, str_size)
                        if out_sym is not None:
                            out.append(out_sym)
            self._symbols = out
        return self._symbols

    def _symbol(self, off: int, str_off: int, str_size: int) -> ElfSymbol | None:
        if self.is64:
            name, info, _other, shndx, value, size = struct.unpack_from(self._e + "IBBHQQ", self._data, off)
        else:
            name, value, size, info, _other, shndx = struct.unpack_from(self._e + "IIIBBH", self._data, off)
        if not name or shndx == SHN_UNDEF:
            return None
        return ElfSymbol(self._string(str_off, str_size, name), value, size, info & 0xF, info >> 4, shndx)

    def symbol(self, name: str) -> ElfSymbol:
        """The defined symbol called ``name`` (functions preferred)."""
        found = [s for s in self.symbols if s.name == name]
        if not found:
            raise ElfError(f"symbol {name!r} not found in {self.path} (neither .symtab nor .dynsym "
                           "defines it; a stripped binary keeps only exported symbols)")
        funcs = [s for s in found if s.type in (STT_FUNC, STT_GNU_IFUNC)]
        return (funcs or found)[0]

    def address_to_offset(self, address: int) -> int:
        """File offset of a virtual address, through the PT_LOAD segment that contains it."""
        for p_type, seg in self.segments:
            if p_type == PT_LOAD and seg.vaddr <= address < seg.vaddr + seg.memsz:
                if address - seg.vaddr >= seg.filesz:
                    raise ElfError(f"{self.path}: address {address:#x} is in the zero-filled part "
                                   "of its segment (not code)")
                return address - seg.vaddr + seg.offset
        raise ElfError(f"{self.path}: address {address:#x} is in no PT_LOAD segment")


def symbol_offset(path: str, symbol: str) -> int:
    """The file offset of ``symbol`` in the ELF at ``path`` (what uprobes take)."""
    elf = ElfFile(path)
    return elf.address_to_offset(elf.symbol(symbol).value)
