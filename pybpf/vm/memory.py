"""Memory of the interpreter: typed regions at disjoint fake addresses.

eBPF registers are plain 64-bit integers, and programs legitimately spill
pointers to the stack, compare them with each other and with NULL and
subtract them (``data_end - data``). So a pointer here is an integer too, but
one that always decodes to exactly one (region, offset) pair: the high 32 bits
of an address name the region and every region has its own 4 GiB window. Each
load and store resolves the address, checks bounds and write permission, and
reports a bad access (out of bounds, NULL, a scalar used as a pointer, a write
to read-only memory) as a :class:`VMError` instead of touching anything else.

A region is the tuple ``(buf, base, lo, hi, writable, hook, kind)`` because
the generated code indexes it in the hot path: ``buf[addr - base]`` is byte
``addr``; accesses must lie within ``[lo, hi)``; ``hook`` (for the context)
intercepts loads and stores; ``kind`` names the region in messages.
"""

from __future__ import annotations

from .errors import VMError

# High halves of region addresses: fixed regions (map handles) live below
# _RUN_FIRST and survive between runs; per-run regions (stacks, packet, ctx,
# map values seen by this run) are numbered from _RUN_FIRST again at each run.
_FIXED_FIRST = 0x7FFF_0000
_RUN_FIRST = 0x8000_0000
_IN_WINDOW = 0x1000_0000  # where byte 0 of a buffer sits within its window

BUF, BASE, LO, HI, WRITABLE, HOOK, KIND = range(7)


class Memory:
    """The address space of one VM: a dict from an address's high half to its region."""

    def __init__(self) -> None:
        self.regions: dict[int, tuple] = {}
        self._fixed_next = _FIXED_FIRST
        self._run_next = _RUN_FIRST
        self._by_buf: dict[int, tuple[object, int]] = {}

    def reset(self) -> None:
        """Forget the per-run regions (keeps the fixed ones)."""
        regions = self.regions
        for hi in [h for h in regions if h >= _RUN_FIRST]:
            del regions[hi]
        self._run_next = _RUN_FIRST
        self._by_buf.clear()

    def add(self, kind: str, buf: bytearray, *, writable: bool = True, hook=None,
            fixed: bool = False) -> int:
        """Map ``buf`` into a fresh window; return the address of ``buf[0]``."""
        if fixed:
            hi, self._fixed_next = self._fixed_next, self._fixed_next + 1
            if hi >= _RUN_FIRST:
                raise VMError("too many fixed regions (map handles) in one VM")
        else:
            hi, self._run_next = self._run_next, self._run_next + 1
            if hi > 0xFFFF_FFFF:
                raise VMError("address space exhausted: too many regions in one run")
        base = (hi << 32) | _IN_WINDOW
        self.regions[hi] = (buf, base, base, base + len(buf), writable, hook, kind)
        return base

    def set_bounds(self, base: int, lo: int, hi: int) -> None:
        """Change the accessible window of a region (packet after xdp_adjust_head)."""
        t = self.regions[base >> 32]
        self.regions[base >> 32] = (t[0], base, lo, hi, t[4], t[5], t[6])

    def addr_of(self, buf: bytearray, kind: str, *, writable: bool = True) -> int:
        """The address of ``buf`` (a map value), mapping it on first use in this run."""
        hit = self._by_buf.get(id(buf))
        if hit is not None and hit[0] is buf:
            return hit[1]
        addr = self.add(kind, buf, writable=writable)
        self._by_buf[id(buf)] = (buf, addr)
        return addr

    def region(self, addr: int) -> tuple | None:
        return self.regions.get(addr >> 32)

    def check(self, addr: int, size: int, write: bool) -> tuple:
        t = self.regions.get(addr >> 32)
        if t is None or addr < t[LO] or addr + size > t[HI] or (write and not t[WRITABLE]):
            raise fault(addr, size, "write" if write else "read", t)
        return t

    def read(self, addr: int, size: int) -> bytes:
        """Bytes at ``addr`` for a helper argument (context hooks bypassed: raw bytes)."""
        if size == 0:
            return b""
        t = self.check(addr, size, False)
        i = addr - t[BASE]
        return bytes(t[BUF][i:i + size])

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        t = self.check(addr, len(data), True)
        if t[HOOK] is not None:
            raise VMError(f"helper cannot write into {t[KIND]}", address=addr)
        i = addr - t[BASE]
        t[BUF][i:i + len(data)] = data

    def read_str(self, addr: int, limit: int) -> bytes | None:
        """A NUL-terminated string of at most ``limit`` bytes (without the NUL), or None."""
        t = self.regions.get(addr >> 32)
        if t is None or addr < t[LO] or addr >= t[HI]:
            return None
        i = addr - t[BASE]
        end = min(t[HI] - t[BASE], i + limit)
        chunk = bytes(t[BUF][i:end])
        nul = chunk.find(b"\0")
        return chunk if nul < 0 else chunk[:nul]


def fault(addr: int, size: int, what: str, t: tuple | None) -> VMError:
    """The error for a bad access, phrased like the verifier where it has words for it."""
    if t is None:
        kind = "NULL pointer" if addr < 4096 else "scalar"
        return VMError(f"invalid mem access '{kind}': {what} of size {size} at address {addr:#x}",
                       address=addr)
    buf, base, lo, hi, writable, hook, kind = t
    off = addr - (hi if kind == "stack" else lo)  # the stack is addressed down from r10
    if what == "write" and not writable and lo <= addr and addr + size <= hi:
        return VMError(f"write into {kind} disallowed: off={off} size={size}", address=addr)
    return VMError(f"invalid access to {kind}: {what} off={off} size={size}, "
                   f"valid range is "
                   f"{'[-%d, 0)' % (hi - lo) if kind == 'stack' else '[0, %d)' % (hi - lo)}", address=addr)
