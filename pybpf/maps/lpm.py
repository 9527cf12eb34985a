"""LPM trie keys: ``struct bpf_lpm_trie_key { __u32 prefixlen; __u8 data[]; }``.

``prefixlen`` is in host byte order, ``data`` in network byte order, which is
exactly what :mod:`ipaddress` gives (``.packed``), so networks map directly.
"""

from __future__ import annotations

import struct

from .layout import LayoutError

__all__ = ["LpmKey", "lpm_key"]

# ipaddress is imported where keys are built or read, not here: every map user
# imports this module (MapSpec refers to LpmKey), few of them use LPM tries.


def lpm_key(network, prefixlen: int | None = None, *, addr_size: int | None = None) -> bytes:
    """Build the bytes of an LPM trie key.

    ``network`` may be an :mod:`ipaddress` network (``IPv4Network("10.0.0.0/8")``),
    an address (prefix = all bits unless ``prefixlen`` is given), a string
    (``"10.0.0.0/8"``, ``"fe80::1"``), or raw ``bytes`` data with an explicit ``prefixlen``.
    """
    import ipaddress

    if isinstance(network, str):
        network = ipaddress.ip_network(network, strict=False)
    if isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        data = network.network_address.packed
        plen = network.prefixlen if prefixlen is None else prefixlen
    elif isinstance(network, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        data = network.packed
        plen = len(data) * 8 if prefixlen is None else prefixlen
    elif isinstance(network, (bytes, bytearray)):
        data = bytes(network)
        if prefixlen is None:
            raise LayoutError("an LPM key built from raw bytes needs an explicit prefixlen")
        plen = prefixlen
    else:
        raise LayoutError(f"LPM trie key must be an ip network, address, string or (prefixlen, "
                          f"data) pair, not {type(network).__name__}")
    if addr_size is not None and len(data) != addr_size:
        raise LayoutError(f"LPM trie key data is {len(data)} bytes, the trie's keys hold "
                          f"{addr_size} (key_size {4 + addr_size})")
    if not 0 <= plen <= len(data) * 8:
        raise LayoutError(f"prefixlen {plen} out of range 0..{len(data) * 8}")
    return struct.pack("=I", plen) + data


class LpmKey:
    """Layout of LPM trie keys with ``addr_size`` data bytes (4 for IPv4, 16 for IPv6).

    Encodes networks, addresses, strings and ``(prefixlen, data)`` pairs; decodes
    to an :mod:`ipaddress` network for 4- and 16-byte data, else ``(prefixlen, bytes)``.
    """

    what = "key"

    def __init__(self, addr_size: int):
        self.addr_size = addr_size
        self.size = 4 + addr_size

    def encode(self, obj) -> bytes:
        if isinstance(obj, (bytes, bytearray, memoryview)) and len(obj) == self.size:
            return bytes(obj)
        if isinstance(obj, tuple) and len(obj) == 2:
            import ipaddress

            plen, data = obj
            if isinstance(data, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
                data = ipaddress.ip_address(data).packed
            elif isinstance(data, int):
                data = data.to_bytes(self.addr_size, "big")
            return lpm_key(bytes(data), plen, addr_size=self.addr_size)
        return lpm_key(obj, addr_size=self.addr_size)

    def decode(self, buf):
        plen = struct.unpack_from("=I", buf)[0]
        data = bytes(buf[4:self.size])
        import ipaddress

        if self.addr_size == 4:
            return ipaddress.IPv4Network((ipaddress.IPv4Address(data), plen), strict=False)
        if self.addr_size == 16:
            return ipaddress.IPv6Network((ipaddress.IPv6Address(data), plen), strict=False)
        return plen, data

    def decode_many(self, buf: memoryview, count: int, stride: int) -> list:
        return [self.decode(buf[i * stride:i * stride + self.size]) for i in range(count)]

    def encode_many(self, objs) -> bytes:
        return b"".join(map(self.encode, objs))

    def __eq__(self, other) -> bool:
        return isinstance(other, LpmKey) and other.addr_size == self.addr_size

    def __hash__(self) -> int:
        return hash(("LpmKey", self.addr_size))

    def __repr__(self) -> str:
        return f"LpmKey({self.addr_size})"
